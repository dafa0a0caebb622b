"""The bounded queue between the hub and one client's sender task, and how it sheds load.

Owns: the per-receiver policy, which is a media server's: video goes before audio, the oldest
first, thumbnails before the full picture; state is never dropped.

* Video (``video`` and room thumbnails, ``thumb``): at most ``max_video`` frames and
  ``max_video_bytes`` wait; beyond that the oldest thumbnail goes, else the oldest video frame.
* Audio: at most ``max_audio`` frames wait; beyond that the oldest goes.
* Late media: a video frame that has spent ``video_max_age_s`` inside pgcall by the time its
  turn to be sent comes is dropped instead of sent (``audio_max_age_s`` for audio) when newer
  media of its sort waits behind it. Under overload this keeps what is sent fresh (latency
  stays low, video frame rate degrades) and spares the work of sending what nobody can use
  any more; the newest frame always goes.
* State events, replies and chat are never dropped: when more than ``max_state`` of them (or
  ``max_bytes`` in all) wait, the outbox overflows and the session closes the client (close
  code 4008, "Too far behind").

Every drop is reported through ``on_drop(reason)`` (counted for /metrics). Nothing in here
ever blocks the hub. Does not own: sending (``session``; ``direct`` is the session's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

import attrs
import trio

Kind = Literal["state", "audio", "video", "thumb"]
VIDEO_KINDS: tuple[Kind, ...] = ("thumb", "video")  # in the order they are shed

CLOSE_TOO_SLOW = 4008  # the client did not read fast enough: state events would be lost


@attrs.frozen
class OutboxLimits:
    max_video: int = 64  # a room of 16 sends a receiver about 130 video frames a second
    max_video_bytes: int = 1536 * 1024  # about 50 full frames of 30 KB
    max_audio: int = 40  # two seconds at 20 frames/s
    video_max_age_s: float = 0.5
    audio_max_age_s: float = 1.0
    max_state: int = 2000
    max_bytes: int = 16 * 1024 * 1024


class Outbox:
    def __init__(self, limits: OutboxLimits | None = None,
                 on_drop: Callable[[str], None] | None = None) -> None:
        self.limits = limits or OutboxLimits()
        self.on_drop = on_drop
        # (kind, message, stamp): the stamp is the trio time the media entered pgcall (or the
        # hub, for frames from elsewhere), None for state; the sender measures latency from it.
        self._items: deque[tuple[Kind, bytes, float | None]] = deque()
        self.last_stamp: float | None = None
        self._counts: dict[str, int] = {"state": 0, "audio": 0, "video": 0, "thumb": 0}
        self._bytes = 0
        self._video_bytes = 0
        self._lot = trio.lowlevel.ParkingLot()
        self.overflowed = False
        self.dropped: dict[str, int] = {}  # by reason, as reported to on_drop
        self.close_request: tuple[int, str] | None = None
        self._flush = False  # send what is queued before the close (see request_close)
        self._woken = False
        # Sends a message at once, from the task that puts it, when the sender is idle: True
        # if it went (``ServerWebSocket.send_now``). Saves the sender's wake-up and a task
        # switch per relayed frame; what the socket cannot take at once is queued as before.
        self.direct: Callable[[bytes, float | None], bool] | None = None
        self._idle = False  # the sender waits in get() with nothing queued

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def _dropped(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        if self.on_drop is not None:
            self.on_drop(reason)

    def _take_out(self, i: int, kind: Kind, size: int) -> None:
        del self._items[i]
        self._forget(kind, size)

    def _forget(self, kind: Kind, size: int) -> None:
        self._counts[kind] -= 1
        self._bytes -= size
        if kind in VIDEO_KINDS:
            self._video_bytes -= size

    def _drop_oldest(self, kinds: tuple[Kind, ...], reason: str) -> bool:
        """Drop the oldest item of the first of ``kinds`` that has one."""
        for kind in kinds:
            if not self._counts[kind]:
                continue
            for i, (k, data, _) in enumerate(self._items):
                if k == kind:
                    self._take_out(i, k, len(data))
                    self._dropped(f"{reason}_{'audio' if kind == 'audio' else 'video'}")
                    return True
        return False

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
        if self._idle and not self._items and not self._woken and self.direct is not None \
                and self.direct(data, stamp):
            return True
        size = len(data)
        self._items.append((kind, data, stamp))
        self._counts[kind] += 1
        self._bytes += size
        limits = self.limits
        if kind in VIDEO_KINDS:
            self._video_bytes += size
            while (self._counts["video"] + self._counts["thumb"] > limits.max_video
                   or self._video_bytes > limits.max_video_bytes):
                if not self._drop_oldest(VIDEO_KINDS, "slow_client"):
                    break
        elif kind == "audio" and self._counts["audio"] > limits.max_audio:
            self._drop_oldest(("audio",), "slow_client")
        while self._bytes > limits.max_bytes and self._drop_oldest(
                (*VIDEO_KINDS, "audio"), "slow_client"):
            pass
        if self._counts["state"] > limits.max_state or self._bytes > limits.max_bytes:
            self.overflowed = True
            self.request_close(CLOSE_TOO_SLOW, "Too far behind")
            return False
        self._lot.unpark()
        return True

    def wake(self) -> None:
        """Make a waiting ``get`` return None (the sender has something else to send)."""
        self._woken = True
        self._lot.unpark_all()

    def _newer_queued(self, kind: Kind) -> bool:
        """Is more media of ``kind``'s sort (audio, or video of either layer) waiting behind
        the item just taken out? Only then is a late one skipped: the newest picture or sound
        is still worth sending, however late."""
        if kind == "audio":
            return self._counts["audio"] > 0
        return self._counts["video"] + self._counts["thumb"] > 0

    def get_nowait(self) -> bytes | None:
        """The next message to send, skipping (and counting) media too late to be worth it."""
        limits = self.limits
        while self._items:
            kind, data, stamp = self._items.popleft()
            self._forget(kind, len(data))
            if stamp is not None and kind != "state" and self._newer_queued(kind):
                late = limits.audio_max_age_s if kind == "audio" else limits.video_max_age_s
                if trio.current_time() - stamp > late:
                    self._dropped("late_audio" if kind == "audio" else "late_video")
                    continue
            self.last_stamp = stamp
            return data
        return None

    async def get(self) -> bytes | None:
        """The next message, or None after ``wake``; raises ``CloseRequested`` once a close
        was requested."""
        parked = False  # a wait in the lot was this call's schedule point: no second one
        while True:
            if self.close_request is not None and not (self._flush and self._items):
                raise CloseRequested(*self.close_request)
            if self._woken:
                self._woken = False
                # Always a schedule point here: a session ending meanwhile cancels the sender
                # before it takes the control frames owed (close() then sends them).
                await trio.lowlevel.checkpoint()
                return None
            data = self.get_nowait()
            if data is not None:
                if not parked:
                    await trio.lowlevel.checkpoint()
                return data
            self._idle = True
            try:
                await self._lot.park()
            finally:
                self._idle = False
            parked = True


class CloseRequested(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason
