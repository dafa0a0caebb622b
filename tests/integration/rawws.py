"""A raw WebSocket client for hostile tests: it opens the socket like a browser (wsproto's
handshake), then sends whatever bytes a test gives it (``tests.wsframes`` builds them), and
reads what the server sends back with wsproto, noting when the server's close frame came and
when the server closed TCP.

Owns: the TCP connection, answering pings and the server's close frame (each can be turned
off: a client that does not answer is one of the hostile cases), and the times. Does not own
any assertion.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from tests.wsframes import binary

SEND_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


async def tcp(base: str) -> trio.SocketStream:
    parts = urlsplit(base)
    return await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)


class RawWs:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.status: int | None = None  # of the handshake answer
        self.identity = ""  # a pg-relay session's, once a test has read it
        self.messages: list[bytes] = []
        self.close: tuple[int, str] | None = None
        self.close_at: float | None = None  # trio time the server's close frame arrived
        self.eof_at: float | None = None  # trio time the server closed TCP
        self.answer_pings = True
        self.answer_close = True
        self.pings = 0
        self.changed = trio.Event()

    @property
    def ended(self) -> bool:
        return self.eof_at is not None

    async def handshake(self, host: str, path: str, after_head: bytes) -> None:
        await self.stream.send_all(self.ws.send(Request(host=host, target=path)) + after_head)
        while self.status is None and not self.ended:
            await self._receive_once()

    async def send(self, data: bytes) -> bool:
        """False once the server no longer takes data."""
        try:
            await self.stream.send_all(data)
        except SEND_ERRORS:
            return False
        return True

    async def send_message(self, data: bytes) -> bool:
        """One binary message, framed and masked as a browser sends it."""
        return await self.send(binary(data))

    async def _receive_once(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except SEND_ERRORS:
            data = b""
        if not data:
            self.eof_at = trio.current_time()
        else:
            try:
                self.ws.receive_data(data)
                events = list(self.ws.events())
            except RemoteProtocolError:
                events = []
                self.status = self.status or 0
            for event in events:
                await self._on(event)
        self.changed.set()
        self.changed = trio.Event()

    async def _on(self, event: object) -> None:
        if isinstance(event, AcceptConnection):
            self.status = 101
        elif isinstance(event, RejectConnection):
            self.status = event.status_code
        elif isinstance(event, BytesMessage | TextMessage):
            data = event.data
            self.messages.append(data.encode() if isinstance(data, str) else bytes(data))
        elif isinstance(event, Ping):
            self.pings += 1
            if self.answer_pings and self.ws.state is ConnectionState.OPEN:
                await self.send(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.close, self.close_at = (event.code, event.reason), trio.current_time()
            if self.answer_close and self.ws.state is ConnectionState.REMOTE_CLOSING:
                await self.send(self.ws.send(event.response()))

    async def read(self) -> None:
        """Read until the server closes TCP (run it in a task, or under a deadline)."""
        while not self.ended:
            await self._receive_once()

    async def read_for(self, seconds: float) -> None:
        with trio.move_on_after(seconds):
            await self.read()

    async def until(self, predicate: Callable[[list[bytes]], bool]) -> None:
        """Until ``predicate(messages)`` holds, while another task runs ``read``."""
        while not predicate(self.messages):
            assert not self.ended, "the server closed the connection"
            await self.changed.wait()

    async def wait_messages(self, n: int, seconds: float) -> bool:
        """Read until ``n`` messages have come in all; False at the deadline or at EOF."""
        with trio.move_on_after(seconds):
            while len(self.messages) < n and not self.ended:
                await self._receive_once()
        return len(self.messages) >= n


@contextlib.asynccontextmanager
async def open_raw(base: str, *, path: str = "/", after_head: bytes = b"",
                   timeout_s: float = 10.0) -> AsyncIterator[RawWs]:
    """A raw client whose handshake has been answered (``status`` 101, or the refusal)."""
    stream = await tcp(base)
    client = RawWs(stream)
    try:
        with trio.fail_after(timeout_s):
            await client.handshake(urlsplit(base).netloc, path, after_head)
        yield client
    finally:
        await trio.aclose_forcefully(stream)
