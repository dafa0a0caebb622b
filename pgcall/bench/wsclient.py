"""The load generator's WebSocket client: wsproto driven directly on the socket, as pgcall's
own server side is (``web/websocket.py``).

Owns: opening a client WebSocket to a ``ws://`` or ``wss://`` URL (RFC 6455 §4 handshake),
sending whole binary or text messages, receiving whole messages (answering pings, answering and
reporting the server's close), and the closing handshake on leaving ``open_ws``; the errors
the bench reports (``ConnectionRejected``, ``ConnectionTimeout``, ``DisconnectionTimeout``,
``ConnectionClosed``). Does not own: what the messages mean (``client``, ``roommember``).

Why not trio-websocket, which the bench used until 2026-11-30: a load generator's own work is
counted in every latency it measures and competes for the cores with the server it measures.
trio-websocket hands each received message from a reader task to the receiving task through a
memory channel (two task switches per message) and sends through trio's socket stream (two
schedule points per write). At 10 calls the generator spent more CPU per relayed frame than
the relay it measured (about 810 µs against 630). Here the task that wants a message reads it
from the socket itself, and a write that the kernel takes at once makes no task switch
(``web/sockio.py``); wsproto still does the framing and its checks, and the frames are masked
in C (``web/masking.py``).

One task receives at a time (the socket's reader); any number of tasks may send: a frame is
written whole before the next one starts.
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..web import masking
from ..web.sockio import for_stream

masking.install()

RECEIVE_BYTES = 1 << 16
CLOSE_ABNORMAL = 1006  # RFC 6455 §7.4.1: the connection was lost without a close frame
CLOSE_TOO_BIG = 1009


@attrs.frozen
class CloseReason:
    code: int
    reason: str | None


class HandshakeError(Exception):
    """Opening or closing the WebSocket failed."""


class ConnectionRejected(HandshakeError):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"rejected with HTTP {status_code}")
        self.status_code = status_code


class ConnectionTimeout(HandshakeError):
    """No handshake within the connect timeout."""


class DisconnectionTimeout(HandshakeError):
    """The server did not finish the closing handshake within the disconnect timeout."""


class ConnectionClosed(Exception):
    def __init__(self, reason: CloseReason) -> None:
        super().__init__(f"{reason.code} {reason.reason or ''}".strip())
        self.reason = reason


class ClientWebSocket:
    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, max_message: int) -> None:
        self._stream = stream
        self._io = for_stream(stream)
        self._ws = ws
        self._max_message = max_message
        self._messages: deque[bytes | bytearray | str] = deque()
        self._parts: list[Any] = []  # the pieces of a message that came in several events
        self._size = 0
        self._send_lock = trio.Lock()
        self.closed: CloseReason | None = None  # set once the connection is over
        self._dropped = False  # the socket ended or failed
        # What came in the read that ended the handshake (a server may greet at once) waits
        # in wsproto, and the socket may stay quiet: taken before the first read.
        self._handshake_rest = True

    # -- sending -------------------------------------------------------------------------

    async def send_message(self, message: bytes | str) -> None:
        """Send one whole message; ``ConnectionClosed`` once the connection is over."""
        if self.closed is not None:
            raise ConnectionClosed(self.closed)
        event = TextMessage(data=message) if isinstance(message, str) else \
            BytesMessage(data=message)
        await self._write(self._ws.send(event))

    async def _write(self, data: bytes) -> None:
        try:  # taken without a schedule point when free (the usual case)
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            await self._io.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._lost()
            raise ConnectionClosed(self.closed or CloseReason(CLOSE_ABNORMAL, None)) from None
        finally:
            self._send_lock.release()

    # -- receiving -----------------------------------------------------------------------

    async def get_message(self) -> bytes | bytearray | str:
        """The next whole message; ``ConnectionClosed`` once none is left and the connection
        is over (messages that arrived before the server's close are delivered first)."""
        while not self._messages:
            if self.closed is not None:
                raise ConnectionClosed(self.closed)
            await self._receive()
        return self._messages.popleft()

    async def _receive(self) -> None:
        if self._handshake_rest:
            self._handshake_rest = False
            await self._take_events()
            if self._messages or self.closed is not None:
                return
        try:
            data = await self._io.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._lost()
            return
        self._ws.receive_data(data)  # type: ignore[arg-type]  # any buffer does
        await self._take_events()

    async def _take_events(self) -> None:
        try:
            for event in self._ws.events():
                await self._handle(event)
        except RemoteProtocolError as exc:
            await self._close_after_error(exc.event_hint)

    async def _handle(self, event: Event) -> None:
        if isinstance(event, BytesMessage | TextMessage):
            self._size += len(event.data)
            if self._size > self._max_message:
                await self._close_after_error(CloseConnection(CLOSE_TOO_BIG, "message too big"))
                return
            if event.message_finished and not self._parts:
                self._messages.append(event.data)  # the usual case: one event, no joining
            else:
                self._parts.append(event.data)
                if event.message_finished:
                    parts, self._parts = self._parts, []
                    self._messages.append(b"".join(parts) if isinstance(event, BytesMessage)
                                          else "".join(parts))
            if event.message_finished:
                self._size = 0
        elif isinstance(event, Ping):
            with contextlib.suppress(ConnectionClosed, LocalProtocolError):
                await self._write(self._ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.closed = CloseReason(event.code, event.reason or None)
            if self._ws.state == ConnectionState.REMOTE_CLOSING:
                with contextlib.suppress(ConnectionClosed):
                    await self._write(self._ws.send(event.response()))

    async def _close_after_error(self, event: Event | None) -> None:
        """A frame the client cannot take: close with the code wsproto proposes."""
        code = event.code if isinstance(event, CloseConnection) else 1002
        reason = event.reason if isinstance(event, CloseConnection) else None
        self.closed = CloseReason(code, reason)
        if self._ws.state == ConnectionState.OPEN:
            with contextlib.suppress(ConnectionClosed, LocalProtocolError):
                await self._write(self._ws.send(CloseConnection(code, reason)))

    def _lost(self) -> None:
        self._dropped = True
        if self.closed is None:
            self.closed = CloseReason(CLOSE_ABNORMAL, None)

    # -- closing -------------------------------------------------------------------------

    async def aclose(self, timeout_s: float) -> None:
        """The closing handshake (when still open), then the socket closed. Raises
        ``DisconnectionTimeout`` if the server's close frame did not come in time."""
        try:
            if self._ws.state == ConnectionState.OPEN:
                with trio.move_on_after(timeout_s) as scope:
                    with contextlib.suppress(ConnectionClosed):
                        await self._write(self._ws.send(CloseConnection(1000)))
                    # Until the server's close frame (wsproto: CLOSED) or the socket's end.
                    while self._ws.state == ConnectionState.LOCAL_CLOSING and not self._dropped:
                        await self._receive()
                if scope.cancelled_caught:
                    raise DisconnectionTimeout("no close frame from the server")
        finally:
            await trio.aclose_forcefully(self._stream)


def _endpoint(url: str) -> tuple[str, int, bool, str, str]:
    """(host, port, TLS, the Host header, the request target) of a ws:// or wss:// URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    host_header = parts.netloc.rsplit("@", 1)[-1]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, secure, host_header, target


async def _handshake(stream: trio.abc.Stream, ws: WSConnection, host: str,
                     target: str) -> None:
    io = for_stream(stream)
    await io.send_all(ws.send(Request(host=host, target=target)))
    status: int | None = None
    while True:
        data = await io.receive_some(RECEIVE_BYTES)
        if not data:
            raise HandshakeError("the server closed the connection during the handshake")
        ws.receive_data(data)  # type: ignore[arg-type]  # any buffer does
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return
            if isinstance(event, RejectConnection):
                status = event.status_code
                if not event.has_body:
                    raise ConnectionRejected(status)
            elif isinstance(event, RejectData) and event.body_finished and status is not None:
                raise ConnectionRejected(status)


@contextlib.asynccontextmanager
async def open_ws(url: str, *, connect_timeout: float, disconnect_timeout: float,
                  max_message: int) -> AsyncIterator[ClientWebSocket]:
    """A client WebSocket to ``url``, closed (with the closing handshake) on leaving."""
    host, port, secure, host_header, target = _endpoint(url)
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        with trio.fail_after(connect_timeout):
            stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
            try:
                if secure:
                    stream = trio.SSLStream(stream, ssl.create_default_context(),
                                            server_hostname=host)
                await _handshake(stream, ws, host_header, target)
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
    except trio.TooSlowError:
        raise ConnectionTimeout(f"no handshake within {connect_timeout:g} s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, RemoteProtocolError) as exc:
        raise HandshakeError(str(exc) or type(exc).__name__) from None
    client = ClientWebSocket(stream, ws, max_message)
    try:
        yield client
    except BaseException:
        with trio.CancelScope(shield=True), contextlib.suppress(DisconnectionTimeout):
            await client.aclose(disconnect_timeout)
        raise
    with trio.CancelScope(shield=True):
        await client.aclose(disconnect_timeout)
