"""The bench's WebSocket side: two pg-relay clients that set up one video call and stream.

Owns: the call flow of protocol.md §4.1 and §6 as a client sees it (identity, snapshot,
``request_call``, ``accept_call``, the ``Active`` update, ``end_call``), the send schedule,
the time stamp inside each payload, decoding what the server sends (§2, §4.6), and which URL
each client connects to (``client_url``: round-robin, shared with the rooms). Does not own:
the arithmetic (``stats``), how calls are spread over processes (``runner``), or the command
line (``cli``).

Latency is measured with one clock: the sender writes ``time.monotonic_ns()`` into the payload
(video: the 8 bytes after the JPEG start marker FF D8; audio: the first 8 bytes of the PCM)
and the receiver, which is in the same process, subtracts it from its own reading.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio

from ..wire.encode import encode_control, encode_media
from .stats import Recorder, StreamKey
from .wsclient import (
    ClientWebSocket,
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
)
from .wsclient import open_ws as _open_ws

AUDIO_FPS = 20  # 50 ms frames of 16 kHz mono PCM16LE, the demo's audio (protocol.md intro)
AUDIO_BYTES = 1600
VIDEO_SIZE = {"width": 640, "height": 360}
AUDIO_FORMAT = {"sample_rate": 16000, "channels": 1, "rms": 0.1}
SNAPSHOT_TABLES = frozenset({"users", "chat_messages", "call_sessions", "media_settings"})
SETUP_TIMEOUT_S = 15.0
DRAIN_S = 2.0  # how long frames still in flight may take once sending stops
LATE_TOLERANCE_S = 0.002  # a send this much past its slot counts as late
_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_NOISE = os.urandom(1 << 20)  # "random-ish" payload bytes; each frame takes another slice
_TAGS = {1: "audio", 2: "video"}


def url_tuple(urls: Iterable[str]) -> tuple[str, ...]:
    """The URLs a plan's clients connect to, as a tuple (a worker's plan arrives as JSON)."""
    urls = tuple(urls)
    if not urls:
        raise ValueError("a bench needs at least one URL")
    return urls


def client_url(urls: tuple[str, ...], client: int) -> str:
    """The URL of the run's ``client``-th client: round-robin over ``urls``, so consecutive
    clients (a call's two ends, a room's members) connect to different URLs whenever there
    are several."""
    return urls[client % len(urls)]


def call_urls(urls: tuple[str, ...], call: int) -> tuple[str, str]:
    """(caller's URL, callee's URL) of call number ``call``: clients 2 * call and 2 * call + 1.
    With two or more URLs the ends differ, so every frame crosses from one relay to another."""
    return client_url(urls, 2 * call), client_url(urls, 2 * call + 1)


@attrs.frozen
class CallPlan:
    """What every call of a run does."""

    urls: tuple[str, ...] = attrs.field(converter=url_tuple)  # clients spread over them
    duration_s: float
    fps: float
    frame_bytes: int
    audio: bool
    record: bool = False  # both say hello (recording), the caller records the call


def stream_phase(call: int, role: str, kind: str, rate: float) -> float:
    """When a stream's first frame is due, in seconds after its call starts streaming: a fixed
    pseudo-random point of its first frame interval, one per call, sender and kind. Two
    people's cameras and microphones are not in step; a load generator whose four streams of
    a call (and audio and video, every 200 ms) fired in the same instant sent each frame
    beside three others, and measured their queueing behind each other at every stage as
    latency (the video p50 at 10 calls fell from 6.6 to 3.4 ms on the same server when the
    phases were spread)."""
    return random.Random(f"{call} {role} {kind}").random() / rate


def _noise(seq: int, size: int) -> bytes:
    start = (seq * 7919) % (len(_NOISE) - size) if size < len(_NOISE) else 0
    return _NOISE[start:start + size]


def video_payload(stamp_ns: int, seq: int, size: int) -> bytes:
    """A JPEG-looking frame of ``size`` bytes (at least 12) carrying the send time."""
    return b"".join((_JPEG_SOI, stamp_ns.to_bytes(8, "big"), _noise(seq, size - 12), _JPEG_EOI))


def audio_payload(stamp_ns: int, seq: int) -> bytes:
    return stamp_ns.to_bytes(8, "big") + _noise(seq, AUDIO_BYTES - 8)


def read_stamp(kind: str, payload: bytes | memoryview) -> int:
    """The send time written by ``video_payload``/``audio_payload``."""
    at = 2 if kind == "video" else 0
    return int.from_bytes(payload[at:at + 8], "big")


def decode_server_message(data: bytes | bytearray) -> tuple[str, dict[str, Any], memoryview]:
    """(``control``/``audio``/``video``, JSON object, payload) of one server message (§2).

    Raises ValueError for anything that is not a well-formed pg-relay message.
    """
    view = memoryview(data)
    if not view:
        raise ValueError("empty message")
    if view[0] == 0:
        obj, payload = json.loads(bytes(view[1:])), view[:0]
    elif view[0] in _TAGS and len(view) >= 5:
        hlen = int.from_bytes(view[1:5], "big")
        if 5 + hlen > len(view):
            raise ValueError("header length past the end")
        obj, payload = json.loads(bytes(view[5:5 + hlen])), view[5 + hlen:]
    else:
        raise ValueError(f"unknown tag {view[0]}")
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return ("control" if view[0] == 0 else _TAGS[view[0]]), obj, payload


class BenchSocket:
    """What a call's client and a room's member share: sends that notice a closed socket, and
    a close we did not ask for recorded once, whichever task noticed it first."""

    ws: ClientWebSocket
    closing: bool
    _closed: bool

    def _closed_by_server(self, detail: str) -> None:
        raise NotImplementedError

    def on_closed(self, exc: ConnectionClosed) -> None:
        if self.closing or self._closed:
            return
        self._closed = True
        reason = exc.reason
        self._closed_by_server(f"{reason.code} {reason.reason or ''}".strip() if reason else "?")

    async def send(self, message: bytes) -> bool:
        """Send one message; False (and the close recorded) if the socket is closed."""
        try:
            await self.ws.send_message(message)
        except ConnectionClosed as exc:
            self.on_closed(exc)
            return False
        return True


class Peer(BenchSocket):
    """One client of a call: reads everything the server sends and records it."""

    def __init__(self, ws: ClientWebSocket, recorder: Recorder, call: int, role: str) -> None:
        self.ws, self.recorder, self.call, self.role = ws, recorder, call, role
        self.identity: str | None = None
        self.peer_identity: str | None = None
        self.session_id: str | None = None
        self.ready = trio.Event()  # identity and every snapshot table received
        self.ringing = trio.Event()  # the insert of this pair's call_sessions row
        self.active = trio.Event()
        self.failed = trio.Event()  # the server refused a call request or closed the socket
        self.acks: dict[str, trio.Event] = {}
        self.closing = False
        self._closed = False
        self.drain: _Drain | None = None  # set once this call has stopped sending
        self._snapshots: set[str] = set()
        self._incoming = "b>a" if role == "a" else "a>b"

    def _closed_by_server(self, detail: str) -> None:
        self.recorder.error(f"connection closed: {detail}")
        self.failed.set()

    async def send_control(self, obj: dict[str, Any]) -> bool:
        self.acks[obj["type"]] = trio.Event()
        return await self.send(encode_control(obj))

    async def receive_loop(self) -> None:
        while True:
            try:
                data = await self.ws.get_message()
            except ConnectionClosed as exc:
                self.on_closed(exc)
                return
            now = time.monotonic_ns()
            if isinstance(data, str):
                self.recorder.error("text frame from server")  # §2: binary frames only
                continue
            try:
                kind, obj, payload = decode_server_message(data)
            except ValueError as exc:
                self.recorder.error(f"undecodable server message: {exc}")
                continue
            if kind == "control":
                self._on_control(obj)
            else:
                self._on_media(kind, obj, payload, now)

    def _on_control(self, msg: dict[str, Any]) -> None:
        mtype, table = msg.get("type"), msg.get("table")
        row = msg.get("row")
        row = row if isinstance(row, dict) else {}
        if mtype == "identity":
            self.identity = msg.get("identity")
        elif mtype == "snapshot":
            self._snapshots.add(str(table))
        elif mtype == "error":
            req_type = msg.get("req_type")
            self.recorder.error(f"{req_type}: {msg.get('message')}")
            if req_type in ("request_call", "accept_call"):
                self.failed.set()
        elif mtype == "ack" and msg.get("req_type") in self.acks:
            self.acks[msg["req_type"]].set()
        elif table == "call_sessions" and mtype == "insert":
            # §4.3: each participant sees the insert; pair it by (caller, callee).
            if {row.get("caller"), row.get("callee")} == {self.identity, self.peer_identity}:
                self.session_id = row.get("session_id")
                self.ringing.set()
        elif table == "call_sessions" and mtype == "update":
            if row.get("session_id") == self.session_id and row.get("state") == "Active":
                self.active.set()
        if self.identity and SNAPSHOT_TABLES <= self._snapshots:
            self.ready.set()

    def _on_media(self, kind: str, header: dict[str, Any], payload: memoryview, now: int) -> None:
        seq = header.get("seq")
        if header.get("from") != self.peer_identity or not isinstance(seq, int):
            # A fixed text: errors are counted by text, and the header differs every frame.
            self.recorder.error(f"{kind} frame from an unexpected sender or without a seq")
            return
        key = StreamKey(self.call, self._incoming, kind)
        self.recorder.received(key, seq, (now - read_stamp(kind, payload)) // 1000)
        if self.drain is not None:
            self.drain.check()


async def _send_stream(peer: Peer, kind: str, rate: float, start: float, stop: float,
                       plan: CallPlan) -> None:
    """Send one kind of media on a fixed schedule: frame n is due at start + n/rate, so a late
    frame does not shift the ones after it; a frame already overdue is sent at once."""
    key = StreamKey(peer.call, "a>b" if peer.role == "a" else "b>a", kind)
    base: dict[str, Any] = {"session_id": peer.session_id, "to": peer.peer_identity}
    extra = VIDEO_SIZE if kind == "video" else AUDIO_FORMAT
    seq = 0
    while (due := start + seq / rate) < stop:
        late = trio.current_time() - due > LATE_TOLERANCE_S
        if not late:
            await trio.sleep_until(due)
        stamp = time.monotonic_ns()
        payload = (video_payload(stamp, seq, plan.frame_bytes) if kind == "video"
                   else audio_payload(stamp, seq))
        if not await peer.send(encode_media(kind, {**base, "seq": seq, **extra}, payload)):
            return
        peer.recorder.sent(key, late=late)
        seq += 1


async def _set_up(a: Peer, b: Peer, record: bool = False) -> str | None:
    """Run §6's Ringing -> Active (and, with ``record``, start recording the call). None on
    success, else the step that did not finish; stops waiting as soon as the server refuses a
    request or closes a socket (already recorded)."""
    step = ["identity and snapshot"]

    async def steps() -> None:
        await a.ready.wait()
        await b.ready.wait()
        a.peer_identity, b.peer_identity = b.identity, a.identity
        step[0] = "call_sessions insert"
        if not await a.send_control({"type": "request_call", "target": b.identity,
                                     "call_type": "Video"}):
            return
        await b.ringing.wait()
        # The caller needs the session id too; it may not have seen the insert yet.
        a.session_id = a.session_id or b.session_id
        step[0] = "Active update"
        if not await b.send_control({"type": "accept_call", "session_id": b.session_id}):
            return
        await a.active.wait()
        await b.active.wait()
        if record and not await _start_recording(a, b, step):
            return
        step[0] = ""

    with trio.move_on_after(SETUP_TIMEOUT_S) as timer:
        async with trio.open_nursery() as nursery:
            for peer in (a, b):
                nursery.start_soon(_cancel_on, peer.failed, nursery.cancel_scope)
            await steps()
            nursery.cancel_scope.cancel()
    if not step[0]:
        return None
    if timer.cancelled_caught and not (a.failed.is_set() or b.failed.is_set()):
        a.recorder.error(f"call setup: no {step[0]} within {SETUP_TIMEOUT_S:g} s")
    return step[0]


async def _start_recording(a: Peer, b: Peer, step: list[str]) -> bool:
    """Both say they show the recording indicator, then the caller starts recording."""
    step[0] = "hello acks"
    for peer in (a, b):
        if not await peer.send_control({"type": "hello", "features": ["recording"]}):
            return False
    for peer in (a, b):
        await peer.acks["hello"].wait()
    step[0] = "start_recording ack"
    if not await a.send_control({"type": "start_recording", "session_id": a.session_id}):
        return False
    await a.acks["start_recording"].wait()
    return True


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _stream(plan: CallPlan, a: Peer, b: Peer) -> None:
    """Both directions, video and (unless disabled) audio, for plan.duration_s; then drain."""
    start = trio.current_time()
    stop = start + plan.duration_s
    kinds = [("video", plan.fps)] + ([("audio", float(AUDIO_FPS))] if plan.audio else [])
    keys = [StreamKey(a.call, d, k) for d in ("a>b", "b>a") for k, _ in kinds]
    for key in keys:
        # Registered up front, so a stream that never gets going still shows as 0 fps.
        a.recorder.stream(key)
    async with trio.open_nursery() as nursery:
        for peer in (a, b):
            for kind, rate in kinds:
                phase = stream_phase(a.call, peer.role, kind, rate)
                nursery.start_soon(_send_stream, peer, kind, rate, start + phase, stop, plan)
    # Frames still in flight get DRAIN_S to arrive; a lost frame never does.
    a.drain = b.drain = drain = _Drain(a.recorder, keys)
    drain.check()
    with trio.move_on_after(DRAIN_S):
        await drain.done.wait()


class _Drain:
    """Set ``done`` once every frame sent on ``keys`` has arrived."""

    def __init__(self, recorder: Recorder, keys: list[StreamKey]) -> None:
        self.recorder, self.keys, self.done = recorder, keys, trio.Event()

    def check(self) -> None:
        if all(self.recorder.stream(k).complete() for k in self.keys):
            self.done.set()


def open_ws(url: str) -> AbstractAsyncContextManager[ClientWebSocket]:
    """A client WebSocket with the bench's limits and timeouts."""
    return _open_ws(url, connect_timeout=SETUP_TIMEOUT_S, disconnect_timeout=5,
                    max_message=4 << 20)


async def run_call(plan: CallPlan, call: int, start_at: float, recorder: Recorder) -> None:
    """One call between two fresh clients, from connect to ``end_call``. What the server does
    wrong is recorded, never raised."""
    await trio.sleep_until(start_at)
    try:
        url_a, url_b = call_urls(plan.urls, call)
        async with open_ws(url_a) as wa, open_ws(url_b) as wb:
            a, b = Peer(wa, recorder, call, "a"), Peer(wb, recorder, call, "b")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.receive_loop)
                nursery.start_soon(b.receive_loop)
                if await _set_up(a, b, plan.record) is None:
                    await _stream(plan, a, b)
                    with trio.move_on_after(DRAIN_S):
                        # Waiting for the ack means an error reply is seen before we close.
                        if await a.send_control({"type": "end_call",
                                                 "session_id": a.session_id}):
                            await a.acks["end_call"].wait()
                a.closing = b.closing = True
                nursery.cancel_scope.cancel()
    except (HandshakeError, OSError) as exc:
        recorder.error(describe_ws_error(exc))


def describe_ws_error(exc: BaseException) -> str:
    """A short text for a failed WebSocket open or close (errors are counted by their text)."""
    if isinstance(exc, ConnectionRejected):
        return f"connect: rejected with HTTP {exc.status_code}"
    if isinstance(exc, ConnectionTimeout):
        return f"connect: no handshake within {SETUP_TIMEOUT_S:g} s"
    if isinstance(exc, DisconnectionTimeout):
        return "close: the server did not finish the closing handshake"
    cause = exc.__cause__ or exc
    return f"connect: {type(cause).__name__}: {cause}"
