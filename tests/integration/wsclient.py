"""A small pg-relay test client for the integration tests (protocol.md §2-§4).

Owns: connecting with trio-websocket, encoding client messages and decoding server frames with
its own code (so a framing bug in the server cannot be hidden by sharing the server's encoder),
waiting for the message a test expects while keeping every other message in a buffer, and the
steps most tests share: connect N clients, set up an Active call between two.
Does not own: any assertion about what the server should send; the tests make those.

Every server message must be a binary frame (§2: the original frontend ignores text frames), so
reading fails the test on a text frame, as on any frame that breaks §2's layout.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

DEFAULT_TIMEOUT_S = 10.0  # generous: the machine is shared; a healthy server answers in ms
SNAPSHOT_TABLES = ("users", "chat_messages", "call_sessions", "media_settings",
                   "ai_transcripts")
TAG_CONTROL, TAG_AUDIO, TAG_VIDEO = 0, 1, 2
MEDIA_TAGS = {"audio": TAG_AUDIO, "video": TAG_VIDEO}


@attrs.frozen
class Frame:
    """One decoded server message: tag 0 carries ``obj`` (JSON); tags 1/2 carry ``obj`` (the
    JSON header) and ``payload``. ``raw`` keeps the bytes as received."""

    tag: int
    obj: Any
    payload: bytes = attrs.field(default=b"", repr=lambda p: f"<{len(p)} bytes>")
    raw: bytes = attrs.field(default=b"", repr=False)

    @property
    def kind(self) -> str:
        return {TAG_CONTROL: "control", TAG_AUDIO: "audio", TAG_VIDEO: "video"}[self.tag]

    @property
    def is_media(self) -> bool:
        return self.tag in (TAG_AUDIO, TAG_VIDEO)

    @property
    def type(self) -> str | None:
        return self.obj.get("type") if self.tag == TAG_CONTROL else None


def decode_frame(data: bytes) -> Frame:
    """Decode one server message per §2; AssertionError if it is not well formed."""
    assert isinstance(data, bytes | bytearray), f"text frame from the server: {data!r}"
    assert len(data) >= 1, "empty message from the server"
    tag = data[0]
    if tag == TAG_CONTROL:
        obj = json.loads(data[1:].decode("utf-8"))  # no length prefix, no terminator
        assert isinstance(obj, dict), obj
        return Frame(TAG_CONTROL, obj, raw=bytes(data))
    assert tag in (TAG_AUDIO, TAG_VIDEO), f"unknown tag {tag}"
    assert len(data) >= 5, "media frame shorter than 5 bytes"
    hlen = int.from_bytes(data[1:5], "big")
    assert 5 + hlen <= len(data), "media header runs past the end"
    header = json.loads(data[5:5 + hlen].decode("utf-8"))
    assert isinstance(header, dict), header
    return Frame(tag, header, bytes(data[5 + hlen:]), bytes(data))


def encode_control(obj: Any) -> bytes:
    return b"\x00" + json.dumps(obj, separators=(",", ":")).encode()


def encode_media(kind: str, header: dict[str, Any], payload: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return bytes([MEDIA_TAGS[kind]]) + len(head).to_bytes(4, "big") + head + payload


# -- predicates ---------------------------------------------------------------------------------


def reply_to(req_type: str) -> Callable[[Frame], bool]:
    """The ack or error answering ``req_type``."""
    return lambda f: f.type in ("ack", "error") and f.obj.get("req_type") == req_type


def event(op: str, table: str, **match: Any) -> Callable[[Frame], bool]:
    """An insert/update/delete event of ``table`` whose row (``old`` for a delete) has the
    given values."""

    def pred(f: Frame) -> bool:
        if f.type != op or f.obj.get("table") != table:
            return False
        row = f.obj.get("old" if op == "delete" else "row") or {}
        return all(row.get(k) == v for k, v in match.items())

    return pred


def media(kind: str, **match: Any) -> Callable[[Frame], bool]:
    return lambda f: f.kind == kind and all(f.obj.get(k) == v for k, v in match.items())


# -- the client -----------------------------------------------------------------------------------


class Client:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.identity = ""
        self.token = ""
        self.snapshots: dict[str, list[dict[str, Any]]] = {}
        self.buffer: deque[Frame] = deque()  # received, not yet taken by a test
        self.received: list[Frame] = []  # everything, in arrival order
        self.close_code: int | None = None
        self.close_reason: str | None = None

    # sending

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send_message(data)

    async def send_control(self, obj: Any) -> None:
        await self.ws.send_message(encode_control(obj))

    async def send_media(self, kind: str, header: dict[str, Any], payload: bytes) -> None:
        await self.ws.send_message(encode_media(kind, header, payload))

    # receiving

    async def _read(self) -> Frame:
        try:
            data = await self.ws.get_message()
        except ConnectionClosed as exc:
            self.close_code, self.close_reason = exc.reason.code, exc.reason.reason
            raise
        frame = decode_frame(data)  # type: ignore[arg-type]
        self.received.append(frame)
        return frame

    async def recv(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Frame:
        """The next message not yet taken (the buffer first)."""
        if self.buffer:
            return self.buffer.popleft()
        with trio.fail_after(timeout_s):
            return await self._read()

    async def expect(self, predicate: Callable[[Frame], bool],
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> Frame:
        """The first message (buffered or new) that matches; others stay buffered, in order."""
        for i, frame in enumerate(self.buffer):
            if predicate(frame):
                del self.buffer[i]
                return frame
        with trio.fail_after(timeout_s):
            while True:
                frame = await self._read()
                if predicate(frame):
                    return frame
                self.buffer.append(frame)

    async def until(self, predicate: Callable[[Frame], bool],
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Frame]:
        """Take every message up to and including the first match (buffer first), in order."""
        taken: list[Frame] = []
        while self.buffer:
            frame = self.buffer.popleft()
            taken.append(frame)
            if predicate(frame):
                return taken
        with trio.fail_after(timeout_s):
            while True:
                frame = await self._read()
                taken.append(frame)
                if predicate(frame):
                    return taken

    async def reply(self, req_type: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The ack/error object answering ``req_type``."""
        return (await self.expect(reply_to(req_type), timeout_s)).obj

    async def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Send a control message and return its ack/error object."""
        await self.send_control(obj)
        return await self.reply(str(obj.get("type", "")))

    async def expect_closed(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, str | None]:
        """Read (buffering messages) until the server closes; (code, reason)."""
        with trio.fail_after(timeout_s):
            while self.close_code is None:
                try:
                    self.buffer.append(await self._read())
                except ConnectionClosed:
                    break
        assert self.close_code is not None
        return self.close_code, self.close_reason

    async def read_identity(self) -> None:
        first = await self.recv()
        assert first.type == "identity", f"first message is not identity: {first}"
        self.identity, self.token = first.obj["identity"], first.obj["token"]

    async def read_snapshots(self) -> None:
        for table in SNAPSHOT_TABLES:
            frame = await self.expect(
                lambda f, t=table: f.type == "snapshot" and f.obj.get("table") == t)
            self.snapshots[table] = frame.obj.get("rows") or []


def ws_url(base: str, path: str = "/", token: str | None = None) -> str:
    """``base`` is ``ws://host:port``; ``token`` None adds no query, a string adds ``?token=``."""
    url = base.rstrip("/") + path
    return url if token is None else f"{url}?token={token}"


@contextlib.asynccontextmanager
async def open_client(base: str, *, token: str | None = None, path: str = "/",
                      snapshot: bool = True, max_message_size: int = 1 << 20,
                      early: Sequence[bytes] = (), buffered: bool = True
                      ) -> AsyncIterator[Client]:
    """A connected client that has read its identity (and, by default, its snapshots).

    ``early`` messages are sent as soon as the WebSocket is open, before anything is read.
    ``buffered`` (the default): like a browser, the client takes in whatever arrives (close
    frames included) even while the test is busy sending; unbuffered, it reads the socket
    only as fast as the test takes messages (a client that stops reading stalls TCP).
    """
    queue = math.inf if buffered else 1
    async with open_websocket_url(ws_url(base, path, token), connect_timeout=DEFAULT_TIMEOUT_S,
                                  disconnect_timeout=2.0, max_message_size=max_message_size,
                                  receive_buffer_size=None,
                                  message_queue_size=queue) as ws:  # type: ignore[arg-type]
        try:
            client = Client(ws)
            for data in early:
                await client.send_raw(data)
            await client.read_identity()
            if snapshot:
                await client.read_snapshots()
            yield client
        finally:
            # trio-websocket 0.12 leaves the TCP stream open when the server started the close
            # (it waits for the server's TCP close, then never closes its own socket), which
            # pytest reports as an unclosed socket. Closing an already closed stream is a no-op.
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                await ws.aclose()
                await ws._stream.aclose()


@contextlib.asynccontextmanager
async def open_clients(base: str, n: int, *,
                       buffered: bool = True) -> AsyncIterator[list[Client]]:
    """``n`` clients, connected one after another, each having read its snapshot. Each one
    has also seen the users insert of every later one, so all are known to each other."""
    async with contextlib.AsyncExitStack() as stack:
        clients: list[Client] = []
        for _ in range(n):
            new = await stack.enter_async_context(open_client(base, buffered=buffered))
            for old in clients:
                await old.expect(event("insert", "users", identity=new.identity))
            clients.append(new)
        yield clients


async def ring(caller: Client, callee: Client, call_type: str | None = "Video") -> str:
    """Place a call; returns its session_id once both have seen the Ringing row."""
    msg: dict[str, Any] = {"type": "request_call", "target": callee.identity}
    if call_type is not None:
        msg["call_type"] = call_type
    assert await caller.request(msg) == {"type": "ack", "req_type": "request_call"}
    row = (await caller.expect(event("insert", "call_sessions", callee=callee.identity))).obj
    session_id = row["row"]["session_id"]
    await callee.expect(event("insert", "call_sessions", session_id=session_id))
    return str(session_id)


async def setup_call(caller: Client, callee: Client, call_type: str | None = "Video") -> str:
    """An Active call between the two; returns its session_id once both have seen it Active."""
    session_id = await ring(caller, callee, call_type)
    reply = await callee.request({"type": "accept_call", "session_id": session_id})
    assert reply == {"type": "ack", "req_type": "accept_call"}, reply
    for c in (caller, callee):
        await c.expect(event("update", "call_sessions", session_id=session_id, state="Active"))
    return session_id


def audio_header(session_id: str, to: str, seq: int, rms: float = 0.25) -> dict[str, Any]:
    return {"session_id": session_id, "to": to, "seq": seq, "sample_rate": 16000,
            "channels": 1, "rms": rms}


def video_header(session_id: str, to: str, seq: int) -> dict[str, Any]:
    return {"session_id": session_id, "to": to, "seq": seq, "width": 640, "height": 360}


def random_identity() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


async def fence(pool: Any, *clients: Client) -> list[list[Frame]]:
    """Commit a chat row by SQL and wait until every client has its insert event; returns, per
    client, the messages that came before it (taken from the buffer).

    The hub delivers in commit order and an outbox keeps state events in order, so anything
    caused before the fence (a relayed frame, a reply, an event) reaches a client before the
    fence does: a message absent from the list was never sent to that client.
    """
    text = f"fence-{uuid.uuid4().hex}"
    await pool.execute("INSERT INTO chat_messages (sender, text) VALUES ($1, $2)",
                       ["fence", text])
    return [(await c.until(event("insert", "chat_messages", text=text)))[:-1] for c in clients]
