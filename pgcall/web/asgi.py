"""The ASGI application hypercorn runs: static frontend, /healthz, /metrics, recordings'
downloads (``download``), WebSocket upgrades.

Owns: HTTP routing and responses. Does not own: what a WebSocket session does (``session``),
how health is decided (the ``health`` callable), or file resolution (``static``).

Plain HTTP on ``/`` serves the frontend; pg-relay answered every plain request with
``200 spacechat pg-relay``, and a readiness probe on ``/`` still gets its 200. WebSocket
upgrades (on any path, as pg-relay accepted them) are the front door's: one that reaches this
app came on a kept-alive HTTP connection and is never answered from here (``_unanswered``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from . import static

log = logging.getLogger("pgcall.web")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
# Answers a request it owns (True), e.g. a recording's download (``download``); else False.
Handler = Callable[[Scope, "Send", bool], Awaitable[bool]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class WebApp:
    def __init__(self, frontend_root: Path, *, health: HealthCheck,
                 metrics: Callable[[], tuple[bytes, str]] | None = None,
                 downloads: Handler | None = None) -> None:
        self.frontend_root = frontend_root
        self.health = health
        self.metrics = metrics
        self.downloads = downloads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await _unanswered(receive)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain; charset=utf-8",
                           extra=[(b"allow", b"GET, HEAD")])
            return
        head = method == "HEAD"
        if path == "/healthz":
            ok, detail = await self.health()
            body = json.dumps(detail).encode() + b"\n"
            await _respond(send, 200 if ok else 503, body, "application/json", head=head,
                           extra=[(b"cache-control", b"no-store")])
            return
        if path == "/metrics" and self.metrics is not None:
            body, ctype = self.metrics()
            await _respond(send, 200, body, ctype, head=head)
            return
        if self.downloads is not None and await self.downloads(scope, send, head):
            return
        raw = scope.get("raw_path") or path.encode()
        found = static.resolve(self.frontend_root, raw.decode("latin-1"))
        if found is None:
            await _respond(send, 404, b"not found\n", "text/plain; charset=utf-8", head=head)
            return
        body = await trio.Path(found.path).read_bytes()
        await _respond(send, 200, body, found.content_type, head=head,
                       extra=[(b"cache-control", found.cache_control.encode())])


async def _respond(send: Send, status: int, body: bytes, content_type: str, *,
                   head: bool = False, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS, *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _unanswered(receive: Receive) -> None:
    """A WebSocket upgrade that reached hypercorn: one on a kept-alive HTTP connection (the
    front door takes the first request of every connection). hypercorn answers it 400 itself,
    from its reading task, as soon as any byte follows the request; an answer from here
    would race that one (two tasks writing one socket, and h11 refusing the second
    response). So nothing is sent from here: the connection ends with hypercorn's 400, or
    with the peer, or at the read timeout."""
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
