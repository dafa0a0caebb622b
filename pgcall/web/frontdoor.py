"""The front door: pgcall's one listening port, and an error boundary around every connection.

Owns: the listening socket and its options, TLS, the connection limit, reading the head of a
connection's first request (within a size and a time limit), handing the connection to the
WebSocket side or to hypercorn's HTTP server, and containing whatever a connection raises:
it is logged once with its cause, counted for /metrics, and the connection closes. Nothing a
client does can reach the server's nursery.
Does not own: the WebSocket protocol (``websocket``, ``upgrade``), HTTP (``httpserver``), or
sessions (the ``on_websocket`` callable).

Socket options: ``TCP_USER_TIMEOUT`` (inherited by accepted sockets) makes a send to a peer that
stopped reading, or vanished, fail after that timeout instead of blocking until it leaves;
``TCP_NODELAY`` keeps small control messages from waiting behind Nagle's algorithm.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import trio

from ..config import WsLimits
from .httphead import MAX_HEAD, HeadTooLarge, split_head, wants_websocket
from .httpserver import HttpServer
from .upgrade import Admission, Upgraded, accept_websocket
from .websocket import WebSocketClosed

log = logging.getLogger("pgcall.http")

TCP_USER_TIMEOUT_MS = 10_000
HEAD_TIMEOUT_S = 10.0  # the first request's head must arrive within this (slowloris)
MAX_CONNECTIONS = 5000
_RECEIVE = 8192
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"
             b"content-length: 0\r\n\r\n")

# Failures a client causes: expected, logged at debug level, counted by name.
CLIENT_FAILURES: tuple[type[BaseException], ...] = (
    trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, ConnectionError,
    HeadTooLarge, WebSocketClosed)


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """``reuse_port``: one of several processes listening on the port (``--workers``); the
    kernel spreads new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
        sock.bind((host, port))
        sock.listen(512)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_context(certfile: Path, keyfile: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    ctx.set_alpn_protocols(["http/1.1"])  # WebSockets over HTTP/2 (RFC 8441) are not served
    return ctx


@attrs.define
class DoorStats:
    """Counters for /metrics."""

    accepted: int = 0
    open: int = 0
    refused: int = 0  # over the connection limit
    failures: dict[str, int] = attrs.Factory(dict)  # connections ended by an error, by cause

    def failed(self, cause: str) -> None:
        self.failures[cause] = self.failures.get(cause, 0) + 1


class FrontDoor:
    def __init__(self, http: HttpServer, on_websocket: Callable[[Upgraded], Awaitable[None]],
                 *, admission: Admission, limits: WsLimits | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.http = http
        self.on_websocket = on_websocket
        self.admission = admission
        self.limits = limits or WsLimits()
        self.max_connections = max_connections
        self.stats = DoorStats()

    async def serve(self, sock: socket.socket, tls: ssl.SSLContext | None = None, *,
                    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept connections on ``sock`` until cancelled; ``started`` gives the URL."""
        host, port = sock.getsockname()[:2]
        listener: trio.abc.Listener[trio.abc.Stream] = trio.SocketListener(
            trio.socket.from_stdlib_socket(sock))
        if tls is not None:
            listener = trio.SSLListener(listener, tls, https_compatible=True)
        shown = f"[{host}]" if ":" in host else host
        url = f"{'https' if tls is not None else 'http'}://{shown}:{port}"
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self.handle, [listener])
            log.debug("serving on %s", url)
            task_status.started(url)

    async def handle(self, stream: trio.abc.Stream) -> None:
        """One connection, from accept to close; never raises (but Cancelled)."""
        stats = self.stats
        stats.accepted += 1
        if stats.open >= self.max_connections:
            stats.refused += 1
            await trio.aclose_forcefully(stream)
            return
        stats.open += 1
        try:
            await self._dispatch(stream)
        except CLIENT_FAILURES as exc:
            cause = exc.reason if isinstance(exc, WebSocketClosed) else type(exc).__name__
            stats.failed(cause)
            log.debug("connection %s ended: %s %s", _peer(stream), cause, exc)
        except Exception as exc:
            # pgcall's own fault (or a library's): this connection goes, the server stays.
            stats.failed("internal")
            log.error("connection %s failed: %r", _peer(stream), exc, exc_info=exc)
        finally:
            stats.open -= 1
            await trio.aclose_forcefully(stream)

    async def _dispatch(self, stream: trio.abc.Stream) -> None:
        buffer = bytearray()
        parts = None
        with trio.move_on_after(HEAD_TIMEOUT_S):
            try:
                while (parts := split_head(buffer, MAX_HEAD)) is None:
                    chunk = await stream.receive_some(_RECEIVE)
                    if not chunk:
                        return  # closed before a whole request
                    buffer += chunk
            except HeadTooLarge:
                await stream.send_all(TOO_LARGE)
                raise
        if parts is None:
            self.stats.failed("head_timeout")
            return
        head, rest = parts
        if wants_websocket(head):
            upgraded = await accept_websocket(stream, head, rest, self.admission, self.limits)
            if upgraded is not None:
                await self.on_websocket(upgraded)
                # The session ends on WebSocketClosed without raising it: count its cause
                # here, unless the peer closed cleanly with a close frame.
                cause = upgraded.ws.closed_by
                if cause is not None and cause != "closed":
                    self.stats.failed(cause)
        else:
            await self.http.serve_connection(stream, head + rest)


def _peer(stream: trio.abc.Stream) -> str:
    inner = getattr(stream, "transport_stream", stream)
    try:
        addr = inner.socket.getpeername()  # type: ignore[union-attr]
    except (AttributeError, OSError):
        return "?"
    return f"{addr[0]}:{addr[1]}"
