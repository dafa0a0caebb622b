"""hypercorn serving HTTP on a connection the front door accepted and found not to be a
WebSocket upgrade.

Owns: the hypercorn configuration and handing it one connection, with the bytes the front
door already read put back in front of the stream. Does not own: the listener or the choice
between HTTP and WebSocket (``frontdoor``), or the application (``asgi``).

hypercorn runs its HTTP/1.1 protocol (h11) and the ASGI app exactly as it would behind its own
listener; it is given each connection by pgcall instead. The front door takes the first
request of every connection, so a WebSocket upgrade reaches hypercorn's WebSocket code only
on a kept-alive HTTP connection (browsers open a new connection for every WebSocket); the
app leaves it to hypercorn's own refusal (see ``asgi``).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HyperConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

log = logging.getLogger("pgcall.http")

KEEP_ALIVE_S = 30
READ_TIMEOUT_S = 30  # a request (or the next one) must arrive within this


class Replayed(trio.abc.Stream):
    """``stream`` with ``first`` put back in front of what it will receive. Other attributes
    (``socket``, TLS details) are the wrapped stream's, as hypercorn asks for them."""

    def __init__(self, stream: trio.abc.Stream, first: bytes) -> None:
        self._stream = stream
        self._first = first

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._first:
            data, self._first = self._first, b""
            await trio.lowlevel.checkpoint()
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class HttpServer:
    def __init__(self, app: Any) -> None:
        cfg = HyperConfig()
        cfg.accesslog = None
        cfg.errorlog = logging.getLogger("pgcall.hypercorn")
        cfg.keep_alive_timeout = KEEP_ALIVE_S
        cfg.read_timeout = READ_TIMEOUT_S
        self.config = cfg
        self._app = ASGIWrapper(app)
        self._context = WorkerContext(None)

    async def serve_connection(self, stream: trio.abc.Stream, already_read: bytes) -> None:
        """Serve HTTP requests on ``stream`` until either side closes it."""
        server = TCPServer(self._app, self.config, self._context, ConnectionState({}),
                           Replayed(stream, already_read))  # type: ignore[arg-type]
        await server.run()
