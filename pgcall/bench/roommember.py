"""One room of the bench as its members see it: the plan, the room's shared state, and each
member's reading of what the server sends.

Owns: ``RoomPlan``; the video payload of a room frame (``room_frame``: the send time as the
call bench writes it, then the time the frame was due); ``Room`` (its members, who is who, the
fence, the ``RoomLog`` everything is recorded into); ``Member`` (one WebSocket: requests and
their replies, ``room_layers`` it must obey, the ``room_speaker`` messages that start a new
speaker epoch, the fence, and every frame it receives). Does not own: what members send or
the order of the room's steps (``roomclient``), or the arithmetic (``roomstats``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import attrs
import trio

from ..wire.encode import encode_control
from .client import (
    SNAPSHOT_TABLES,
    BenchSocket,
    client_url,
    decode_server_message,
    read_stamp,
    url_tuple,
    video_payload,
)
from .roomreport import RoomRecorder
from .roomstats import RoomLog
from .wsclient import ClientWebSocket, ConnectionClosed


@attrs.frozen
class RoomPlan:
    """What every room of a run does."""

    urls: tuple[str, ...] = attrs.field(converter=url_tuple)  # members spread over them
    duration_s: float
    room_size: int
    fps: float  # the full layer; the thumbnail goes at half this
    frame_bytes: int
    thumb_bytes: int
    turn_s: float
    settle_s: float
    record: bool = False  # every member says hello (recording), the creator records the room


def member_url(plan: RoomPlan, room: int, member: int) -> str:
    """The URL member ``member`` of room ``room`` connects to: the run's clients are numbered
    room by room and take the URLs round-robin, so with several URLs a room spans relays."""
    return client_url(plan.urls, room * plan.room_size + member)


MIN_FRAME_BYTES = 20  # FF D8, the send time, the due time, FF D9


def room_frame(sent_ns: int, due_ns: int, seq: int, size: int) -> bytes:
    """A JPEG-looking frame of ``size`` bytes (at least 20): the send time as in
    ``video_payload``, then the due time."""
    frame = video_payload(sent_ns, seq, size)
    return frame[:10] + due_ns.to_bytes(8, "big") + frame[18:]


def read_due(payload: bytes | memoryview) -> int:
    return int.from_bytes(payload[10:18], "big")


class Member(BenchSocket):
    """One member: reads everything the server sends, records it, obeys ``room_layers``."""

    def __init__(self, ws: ClientWebSocket, room: Room, index: int) -> None:
        self.ws, self.room, self.index = ws, room, index
        self.identity: str | None = None
        self.ready = trio.Event()  # identity and every snapshot table received
        self.layers = trio.Event()  # a room_layers message received
        self.fenced = trio.Event()  # the room's fence message received
        self.full = self.thumb = False
        self.epoch = 0  # room_speaker messages received
        self.replies: dict[str, dict[str, Any]] = {}
        self._waiting: dict[str, trio.Event] = {}
        self._snapshots: set[str] = set()
        self.closing = False
        self._closed = False

    def _closed_by_server(self, detail: str) -> None:
        self.room.recorder.error(f"connection closed: {detail}")
        self.room.failed.set()

    async def request(self, obj: dict[str, Any]) -> bool:
        """Send a request and wait for its reply; True if it was acked (an error reply is
        recorded when it arrives)."""
        done = self._waiting[obj["type"]] = trio.Event()
        if not await self.send(encode_control(obj)):
            return False
        await done.wait()
        return self.replies[obj["type"]].get("type") == "ack"

    async def receive_loop(self) -> None:
        while True:
            try:
                data = await self.ws.get_message()
            except ConnectionClosed as exc:
                self.on_closed(exc)
                return
            now = time.monotonic_ns()
            if isinstance(data, str):
                self.room.recorder.error("text frame from server")
                continue
            self.room.log.on_bytes(self.index, len(data), now)
            try:
                kind, obj, payload = decode_server_message(data)
            except ValueError as exc:
                self.room.recorder.error(f"undecodable server message: {exc}")
                continue
            if kind == "control":
                self._on_control(obj)
            else:
                self._on_media(kind, obj, payload, now)

    def _on_control(self, msg: dict[str, Any]) -> None:
        mtype = msg.get("type")
        if mtype == "identity":
            self.identity = msg.get("identity")
        elif mtype == "snapshot":
            self._snapshots.add(str(msg.get("table")))
        elif mtype in ("ack", "error"):
            req_type = str(msg.get("req_type"))
            if mtype == "error":
                self.room.recorder.error(f"{req_type}: {msg.get('message')}")
            self.replies[req_type] = msg
            if req_type in self._waiting:
                self._waiting.pop(req_type).set()
        elif mtype == "room_layers":  # may come before the create_room ack: one room each
            self.full, self.thumb = msg.get("full") is True, msg.get("thumb") is True
            self.layers.set()
        elif mtype == "room_speaker":
            self.epoch += 1
        elif (mtype == "insert" and msg.get("table") == "room_messages"
              and (msg.get("row") or {}).get("text") == self.room.fence):
            self.fenced.set()
        if self.identity and SNAPSHOT_TABLES <= self._snapshots:
            self.ready.set()

    def _on_media(self, kind: str, header: dict[str, Any], payload: memoryview,
                  now: int) -> None:
        sender = self.room.index_of.get(str(header.get("from")))
        seq = header.get("seq")
        stream = "audio" if kind == "audio" else header.get("layer")
        if sender is None or not isinstance(seq, int) or stream not in ("full", "thumb",
                                                                         "audio"):
            # A fixed text: errors are counted by text, and the header differs every frame.
            self.room.recorder.error(f"{kind} frame from an unexpected sender or without a seq")
            return
        if sender == self.index:
            self.room.recorder.error(f"{kind} frame of a member's own sent back to it")
            return
        if len(payload) < (8 if kind == "audio" else MIN_FRAME_BYTES):
            self.room.recorder.error(f"{kind} frame shorter than the bench sends")
            return
        sent_ns = read_stamp(kind, payload)
        due_ns = sent_ns if kind == "audio" else read_due(payload)
        self.room.log.on_received((self.index, sender, str(stream)), seq, due_ns, sent_ns, now,
                                  self.epoch)
        self.room.recorder.received(None if kind == "audio" else (now - sent_ns) // 1000)
        if self.room.draining and self.room.log.complete():
            self.room.drained.set()


class Room:
    """What a room's members share: who is who, the fence, the log, whether it failed."""

    def __init__(self, plan: RoomPlan, index: int, recorder: RoomRecorder) -> None:
        self.plan, self.index, self.recorder = plan, index, recorder
        self.log = RoomLog(plan.room_size)
        self.members: list[Member] = []
        self.index_of: dict[str, int] = {}
        self.room_id: str | None = None
        self.fence = f"bench fence {uuid.uuid4()}"
        self.failed = trio.Event()  # a request refused or a socket closed
        self.draining = False
        self.drained = trio.Event()
