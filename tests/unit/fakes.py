"""Test doubles for the hub and session tests: rows as the stream decodes them, a fake store,
a WebSocket client on an in-memory connection and a bare hub subscriber.

Owns: building ``Change``/``Snapshot`` values with the real column type OIDs of
``sql/0001_initial.sql`` (the stream's decoders hand the hub Python values: ``uuid.UUID``,
aware ``datetime``, ``int``, float4 rounded ``float``, ``memoryview`` bytea), decoding server
messages (protocol.md §2) and the doubles. Does not own any assertion: tests make those.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
import uuid
from collections.abc import Callable
from typing import Any

import trio
import wsproto
import wsproto.connection
from wsproto import events as wsevents

from pgcall.pg.changes import Change, Columns, Snapshot, TableRows, Transaction
from pgcall.pg.walproto import Lsn
from pgcall.relay.outbox import Outbox, OutboxLimits

TEXT, INT8, INT4, INT2, BOOL, BYTEA = 25, 20, 23, 21, 16, 17
FLOAT4, TIMESTAMPTZ, UUID, TEXT_ARRAY = 700, 1184, 2950, 1009

# Column order and types as created by the migration (table order is JSON key order, §4.4).
COLUMNS: dict[str, Columns] = {
    "users": (("identity", TEXT), ("nickname", TEXT), ("connected_at", TIMESTAMPTZ),
              ("is_ai", BOOL)),
    "chat_messages": (("id", INT8), ("sender", TEXT), ("sent_at", TIMESTAMPTZ), ("text", TEXT)),
    "call_sessions": (("session_id", UUID), ("call_type", TEXT), ("state", TEXT),
                      ("caller", TEXT), ("callee", TEXT), ("created_at", TIMESTAMPTZ),
                      ("answered_at", TIMESTAMPTZ)),
    "media_settings": (("id", INT4), ("audio_target_sample_rate", INT4),
                       ("audio_frame_ms", INT2), ("audio_max_frame_bytes", INT4),
                       ("audio_talking_rms_threshold", FLOAT4), ("video_width", INT2),
                       ("video_height", INT2), ("video_fps", INT2),
                       ("video_jpeg_quality", FLOAT4), ("video_max_frame_bytes", INT4)),
    "ai_transcripts": (("id", INT8), ("session_id", UUID), ("role", TEXT), ("text", TEXT),
                       ("created_at", TIMESTAMPTZ)),
    "audio_frames": (("id", INT8), ("session_id", UUID), ("from_id", TEXT), ("to_id", TEXT),
                     ("seq", INT4), ("sample_rate", INT4), ("channels", INT2),
                     ("rms", FLOAT4), ("pcm16le", BYTEA), ("inserted_at", TIMESTAMPTZ)),
    "video_frames": (("id", INT8), ("session_id", UUID), ("from_id", TEXT), ("to_id", TEXT),
                     ("seq", INT4), ("width", INT2), ("height", INT2), ("jpeg", BYTEA),
                     ("inserted_at", TIMESTAMPTZ)),
    # sql/0002_rooms.sql
    "rooms": (("room_id", UUID), ("name", TEXT), ("creator", TEXT), ("call_type", TEXT),
              ("max_members", INT2), ("private", BOOL), ("created_at", TIMESTAMPTZ)),
    "room_members": (("room_id", UUID), ("identity", TEXT), ("joined_at", TIMESTAMPTZ),
                     ("mic", BOOL), ("camera", BOOL), ("screen", BOOL), ("hand", BOOL),
                     ("pinned", TEXT)),
    "room_invites": (("room_id", UUID), ("invitee", TEXT), ("inviter", TEXT),
                     ("created_at", TIMESTAMPTZ)),
    "room_messages": (("id", INT8), ("room_id", UUID), ("sender", TEXT),
                      ("sent_at", TIMESTAMPTZ), ("text", TEXT)),
    "room_video_frames": (("id", INT8), ("room_id", UUID), ("from_id", TEXT), ("seq", INT4),
                          ("layer", TEXT), ("width", INT2), ("height", INT2), ("jpeg", BYTEA),
                          ("inserted_at", TIMESTAMPTZ)),
    "room_audio_frames": (("id", INT8), ("room_id", UUID), ("from_id", TEXT), ("seq", INT4),
                          ("sample_rate", INT4), ("channels", INT2), ("rms", FLOAT4),
                          ("pcm16le", BYTEA), ("inserted_at", TIMESTAMPTZ)),
    # sql/0004_recordings.sql
    "recordings": (("recording_id", UUID), ("session_id", UUID), ("room_id", UUID),
                   ("started_by", TEXT), ("started_at", TIMESTAMPTZ),
                   ("stopped_at", TIMESTAMPTZ), ("participants", TEXT_ARRAY)),
}
STATE_TABLES = ("users", "chat_messages", "call_sessions", "media_settings", "ai_transcripts")

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
T0 = dt.datetime(2026, 11, 25, 18, 0, 47, 333_456, tzinfo=dt.UTC)


def f32(x: float) -> float:
    """``x`` as a float4 column decodes: the nearest single, widened to a double."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def user(identity: str, nickname: str | None = None, at: dt.datetime = T0) -> dict[str, Any]:
    return {"identity": identity, "nickname": nickname or f"user-{identity[:8]}",
            "connected_at": at, "is_ai": False}


def chat(msg_id: int, sender: str = A, text: str = "hi") -> dict[str, Any]:
    return {"id": msg_id, "sender": sender, "sent_at": T0 + dt.timedelta(seconds=msg_id),
            "text": text}


def call(sid: uuid.UUID, caller: str, callee: str, state: str = "Active",
         call_type: str = "Video") -> dict[str, Any]:
    answered = T0 + dt.timedelta(seconds=2) if state == "Active" else None
    return {"session_id": sid, "call_type": call_type, "state": state, "caller": caller,
            "callee": callee, "created_at": T0, "answered_at": answered}


def settings(**over: Any) -> dict[str, Any]:
    row = {"id": 1, "audio_target_sample_rate": 16000, "audio_frame_ms": 50,
           "audio_max_frame_bytes": 64000, "audio_talking_rms_threshold": f32(0.02),
           "video_width": 640, "video_height": 360, "video_fps": 15,
           "video_jpeg_quality": f32(0.65), "video_max_frame_bytes": 512000}
    return row | over


def transcript(tid: int, sid: uuid.UUID, text: str = "hello") -> dict[str, Any]:
    return {"id": tid, "session_id": sid, "role": "human", "text": text, "created_at": T0}


def snapshot(**tables: list[dict[str, Any]]) -> Snapshot:
    """A stream snapshot; state tables not named are empty."""
    return Snapshot({t: TableRows(COLUMNS[t], tuple(tables.get(t, ()))) for t in STATE_TABLES})


def insert(table: str, row: dict[str, Any]) -> Change:
    return Change(table, "insert", COLUMNS[table], row, None)


def update(table: str, row: dict[str, Any], old: dict[str, Any] | None) -> Change:
    return Change(table, "update", COLUMNS[table], row, old)


def delete(table: str, old: dict[str, Any]) -> Change:
    return Change(table, "delete", COLUMNS[table], None, old)


def video(sid: uuid.UUID, from_id: str, to_id: str, seq: int, jpeg: bytes,
          width: int = 640, height: int = 360) -> Change:
    row = {"id": 1000 + seq, "session_id": sid, "from_id": from_id, "to_id": to_id, "seq": seq,
           "width": width, "height": height, "jpeg": memoryview(jpeg), "inserted_at": T0}
    return insert("video_frames", row)


def audio(sid: uuid.UUID, from_id: str, to_id: str, seq: int, pcm: bytes,
          rms: float = 0.25, sample_rate: int = 16000, channels: int = 1) -> Change:
    row = {"id": 5000 + seq, "session_id": sid, "from_id": from_id, "to_id": to_id,
           "seq": seq, "sample_rate": sample_rate, "channels": channels, "rms": f32(rms),
           "pcm16le": memoryview(pcm), "inserted_at": T0}
    return insert("audio_frames", row)


_lsn = 0


def txn(*changes: Change, at_us: int = 0) -> Transaction:
    """A committed transaction; ``at_us`` is its commit time (µs), the clock rooms use."""
    global _lsn
    _lsn += 16
    return Transaction(Lsn(_lsn), at_us, changes)


def room(rid: uuid.UUID, creator: str, call_type: str = "Video",
         name: str = "room") -> dict[str, Any]:
    return {"room_id": rid, "name": name, "creator": creator, "call_type": call_type,
            "max_members": 16, "private": False, "created_at": T0}


def member(rid: uuid.UUID, identity: str, joined_s: int = 0,
           pinned: str | None = None) -> dict[str, Any]:
    return {"room_id": rid, "identity": identity,
            "joined_at": T0 + dt.timedelta(seconds=joined_s), "mic": True, "camera": True,
            "screen": False, "hand": False, "pinned": pinned}


def room_video(rid: uuid.UUID, from_id: str, seq: int, layer: str = "full") -> Change:
    row = {"id": 9000 + seq, "room_id": rid, "from_id": from_id, "seq": seq, "layer": layer,
           "width": 640, "height": 360, "jpeg": memoryview(jpeg(seq, 100)), "inserted_at": T0}
    return insert("room_video_frames", row)


def room_audio(rid: uuid.UUID, from_id: str, seq: int, rms: float = 0.3) -> Change:
    row = {"id": 7000 + seq, "room_id": rid, "from_id": from_id, "seq": seq,
           "sample_rate": 16000, "channels": 1, "rms": f32(rms),
           "pcm16le": memoryview(b"\0\0" * 10), "inserted_at": T0}
    return insert("room_audio_frames", row)


def jpeg(seq: int, size: int = 2000) -> bytes:
    """A distinct JPEG-looking payload (starts with SOI) per ``seq``."""
    body = seq.to_bytes(4, "big") * (size // 4)
    return b"\xff\xd8" + body[: size - 2]


def decode(message: bytes) -> tuple[str, Any, bytes]:
    """A server message as (kind, JSON object, payload): ("control", obj, b"") or
    ("audio"/"video", header, payload); JSON objects keep their key order."""
    if message[0] == 0:
        return "control", json.loads(message[1:]), b""
    kind = {1: "audio", 2: "video"}[message[0]]
    hlen = int.from_bytes(message[1:5], "big")
    return kind, json.loads(message[5 : 5 + hlen]), bytes(message[5 + hlen :])


def control(obj: dict[str, Any]) -> bytes:
    return b"\x00" + json.dumps(obj).encode()


def media_message(kind: str, header: dict[str, Any], payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return bytes([1 if kind == "audio" else 2]) + len(head).to_bytes(4, "big") + head + payload


def drops(outbox: Outbox) -> tuple[int, int]:
    """(video, audio) frames an outbox dropped because its client was too slow."""
    return (outbox.dropped.get("slow_client_video", 0),
            outbox.dropped.get("slow_client_audio", 0))


class Sub:
    """A bare hub subscriber: an outbox nobody drains unless the test does."""

    def __init__(self, identity: str, limits: OutboxLimits | None = None) -> None:
        self.identity = identity
        self.outbox = Outbox(limits)
        self.overflows = 0

    def overflowed(self) -> None:
        self.overflows += 1

    def drain(self) -> list[tuple[str, Any, bytes]]:
        out = []
        while (data := self.outbox.get_nowait()) is not None:
            out.append(decode(data))
        return out


class FakeStore:
    """The ``Store`` interface with no database. Every call is recorded in ``calls`` as
    ``(method, *args)``; ``results[method]`` is what a control method returns (an error
    string or None), or an exception it raises. ``on_connect(identity, connected_at)`` and
    ``on_frame(media, from_id)`` let a test play what the replication stream would carry."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.results: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}
        self.connected_at = now
        self.on_connect: Callable[[str, dt.datetime], None] | None = None
        self.on_frame: Callable[[Any, str], None] | None = None
        self.minted = 0

    def _result(self, method: str, *args: Any) -> Any:
        self.calls.append((method, *args))
        result = self.results.get(method)
        if isinstance(result, BaseException):
            raise result
        return result

    def called(self, method: str) -> list[tuple[Any, ...]]:
        return [c[1:] for c in self.calls if c[0] == method]

    async def resolve_identity(self, token: str | None) -> tuple[str, str]:
        self._result("resolve_identity", token)
        if token in self.tokens:
            return self.tokens[token], token  # type: ignore[index]
        self.minted += 1
        identity = f"{self.minted:064x}"
        token = str(uuid.UUID(int=self.minted))
        self.tokens[token] = identity
        return identity, token

    async def connect_user(self, identity: str) -> dt.datetime:
        self._result("connect_user", identity)
        if self.on_connect is not None:
            self.on_connect(identity, self.connected_at)
        return self.connected_at

    async def disconnect_user(self, identity: str) -> None:
        self._result("disconnect_user", identity)

    async def set_nickname(self, identity: str, nickname: str) -> str | None:
        return self._result("set_nickname", identity, nickname)

    async def send_message(self, identity: str, text: str) -> str | None:
        return self._result("send_message", identity, text)

    async def request_call(self, identity: str, target: str, call_type: str) -> str | None:
        return self._result("request_call", identity, target, call_type)

    async def accept_call(self, identity: str, session_id: str) -> str | None:
        return self._result("accept_call", identity, session_id)

    async def decline_call(self, identity: str, session_id: str) -> str | None:
        return self._result("decline_call", identity, session_id)

    async def end_call(self, identity: str, session_id: str) -> str | None:
        return self._result("end_call", identity, session_id)

    def submit(self, media: Any, from_id: str, on_failed: Callable[[Any], None],
               route: Any = None) -> None:
        """The frame writer's interface: recorded as ``insert_frame``; a result set for
        ``insert_frame`` that is an exception is handed to ``on_failed``, as the writer
        does when its statement fails."""
        # The payload is a view into the received message: copy it, as the writer's row does.
        try:
            self._result("insert_frame", media.kind, getattr(media, "session_id", None),
                         getattr(media, "to", None), media.seq, from_id, bytes(media.payload))
        except Exception as exc:
            on_failed(exc)
            return
        if self.on_frame is not None:
            self.on_frame(media, from_id)


class _ServerEnd(trio.abc.Stream):
    """The server's end of a ``FakePeer``'s in-memory connection."""

    def __init__(self, peer: FakePeer) -> None:
        self.peer = peer
        self.closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.closed:
            raise trio.ClosedResourceError
        return await self.peer._up_recv.receive()  # b"" once the client closed TCP

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise trio.ClosedResourceError
        self.peer._down_send.send_nowait(bytes(data))
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.peer._down_send.send_nowait(b"")  # EOF
        await trio.lowlevel.checkpoint()


class FakePeer:
    """A WebSocket client (wsproto) talking to pgcall's real front door, WebSocket layer and
    session over an in-memory connection. ``serve(ctx)`` runs the server side; the rest is
    the client's side, played by the test. What the server sends is read by ``pump`` (which
    answers pings, as browsers do) and handed to the test as ASGI-like events:
    ``websocket.accept``, ``websocket.send`` (with ``bytes``), ``websocket.close`` (with
    ``code`` and ``reason``)."""

    def __init__(self, query: bytes = b"") -> None:
        self.target = "/" + (f"?{query.decode()}" if query else "")
        self._up_send, self._up_recv = trio.open_memory_channel[bytes](math.inf)
        self._down_send, self._down_recv = trio.open_memory_channel[bytes](math.inf)
        self._events_send, self._events_recv = trio.open_memory_channel[dict[str, Any]](
            math.inf)
        # Reads what the server sends (the handshake response, then frames).
        self.client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        # Frames what the client sends; a raw client may send frames before the 101 arrives.
        self.frames = wsproto.connection.Connection(wsproto.ConnectionType.CLIENT)
        self.server_end = _ServerEnd(self)

    async def serve(self, ctx: Any) -> None:
        """The server side of this connection: the front door, the upgrade, the session."""
        from pgcall.relay.session import run_session
        from pgcall.web.frontdoor import FrontDoor
        from pgcall.web.upgrade import Admission, Upgraded

        async def on_websocket(up: Upgraded) -> None:
            await run_session(ctx, up.ws, up.token)

        door = FrontDoor(None, on_websocket, admission=Admission())  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.pump)
            await door.handle(self.server_end)
            nursery.cancel_scope.cancel()

    async def pump(self) -> None:
        async for data in self._down_recv:
            if not data:
                break
            self.client.receive_data(data)
            for ev in self.client.events():
                if isinstance(ev, wsevents.AcceptConnection):
                    self._events_send.send_nowait({"type": "websocket.accept"})
                elif isinstance(ev, wsevents.BytesMessage):
                    self._events_send.send_nowait({"type": "websocket.send",
                                                   "bytes": bytes(ev.data)})
                elif isinstance(ev, wsevents.Ping):
                    self._send(ev.response())
                elif isinstance(ev, wsevents.CloseConnection):
                    self._events_send.send_nowait({"type": "websocket.close",
                                                   "code": ev.code, "reason": ev.reason})
                    self._send(ev.response())

    def _send(self, event: wsevents.Event) -> None:
        if self.frames.state is wsproto.connection.ConnectionState.OPEN:
            self._up_send.send_nowait(self.frames.send(event))

    # client half
    def connect(self) -> None:
        self._up_send.send_nowait(self.client.send(
            wsevents.Request(host="localhost", target=self.target)))

    def send_bytes(self, data: bytes) -> None:
        self._send(wsevents.BytesMessage(data=data))

    def send_control(self, obj: dict[str, Any]) -> None:
        self.send_bytes(control(obj))

    def disconnect(self, code: int = 1000) -> None:
        self._send(wsevents.CloseConnection(code=code))

    async def event(self) -> dict[str, Any]:
        return await self._events_recv.receive()

    async def message(self) -> tuple[str, Any, bytes]:
        """The next data message, decoded; fails on anything else (accept, close)."""
        event = await self.event()
        assert event["type"] == "websocket.send", event
        return decode(event["bytes"])

    def pending(self) -> list[dict[str, Any]]:
        """Every event the server has sent and the client not yet read."""
        out = []
        while True:
            try:
                out.append(self._events_recv.receive_nowait())
            except trio.WouldBlock:
                return out
