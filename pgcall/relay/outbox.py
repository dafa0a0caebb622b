"""The bounded queue between the hub and one client's sender task.

Owns: the slow-client policy. Video frames are dropped oldest first when more than
``max_video`` wait; audio likewise beyond ``max_audio``; state events, replies and chat are
never dropped: when more than ``max_state`` of them (or ``max_bytes`` in all) wait, the outbox
overflows and the session closes the client (close code 4008, "Too far behind"). Nothing in
here ever blocks the hub. Does not own: sending (``session``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

import attrs
import trio

Kind = Literal["state", "audio", "video"]

CLOSE_TOO_SLOW = 4008  # the client did not read fast enough: state events would be lost


@attrs.frozen
class OutboxLimits:
    max_video: int = 15  # one second at 15 fps
    max_audio: int = 40  # two seconds at 20 frames/s
    max_state: int = 2000
    max_bytes: int = 16 * 1024 * 1024


class Outbox:
    def __init__(self, limits: OutboxLimits | None = None,
                 on_drop: Callable[[Kind], None] | None = None) -> None:
        self.limits = limits or OutboxLimits()
        self.on_drop = on_drop
        # (kind, message, stamp): the stamp (trio time the frame entered pgcall, or None) lets
        # the sender measure pgcall's own latency once the message is on the wire.
        self._items: deque[tuple[Kind, bytes, float | None]] = deque()
        self.last_stamp: float | None = None
        self._counts = {"state": 0, "audio": 0, "video": 0}
        self._bytes = 0
        self._lot = trio.lowlevel.ParkingLot()
        self.overflowed = False
        self.dropped = {"audio": 0, "video": 0}
        self.close_request: tuple[int, str] | None = None
        self._flush = False  # send what is queued before the close (see request_close)
        self._woken = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def _drop_oldest(self, kind: Kind) -> None:
        for i, (k, data, _) in enumerate(self._items):
            if k == kind:
                del self._items[i]
                self._counts[kind] -= 1
                self._bytes -= len(data)
                self.dropped[kind] += 1
                if self.on_drop is not None:
                    self.on_drop(kind)
                return

    def request_close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Ask the sender to close the WebSocket: at once, or with ``flush`` after the messages
        already queued (nothing more is queued once a close is requested, so that is bounded)."""
        if self.close_request is None:
            self.close_request = (code, reason)
            self._flush = flush
        self._lot.unpark_all()

    def put(self, kind: Kind, data: bytes, stamp: float | None = None) -> bool:
        """Queue ``data``; False once the outbox has overflowed (the client must go)."""
        if self.overflowed or self.close_request is not None:
            return False
        self._items.append((kind, data, stamp))
        self._counts[kind] += 1
        self._bytes += len(data)
        if kind == "video" and self._counts["video"] > self.limits.max_video:
            self._drop_oldest("video")
        elif kind == "audio" and self._counts["audio"] > self.limits.max_audio:
            self._drop_oldest("audio")
        while self._bytes > self.limits.max_bytes and (self._counts["video"]
                                                       or self._counts["audio"]):
            self._drop_oldest("video" if self._counts["video"] else "audio")
        if self._counts["state"] > self.limits.max_state or self._bytes > self.limits.max_bytes:
            self.overflowed = True
            self.request_close(CLOSE_TOO_SLOW, "Too far behind")
            return False
        self._lot.unpark()
        return True

    def wake(self) -> None:
        """Make a waiting ``get`` return None (the sender has something else to send)."""
        self._woken = True
        self._lot.unpark_all()

    def get_nowait(self) -> bytes | None:
        if not self._items:
            return None
        kind, data, self.last_stamp = self._items.popleft()
        self._counts[kind] -= 1
        self._bytes -= len(data)
        return data

    async def get(self) -> bytes | None:
        """The next message, or None after ``wake``; raises ``CloseRequested`` once a close
        was requested."""
        while True:
            if self.close_request is not None and not (self._flush and self._items):
                raise CloseRequested(*self.close_request)
            if self._woken:
                self._woken = False
                await trio.lowlevel.checkpoint()
                return None
            data = self.get_nowait()
            if data is not None:
                await trio.lowlevel.checkpoint()
                return data
            await self._lot.park()


class CloseRequested(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason
