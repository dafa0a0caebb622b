"""Running hypercorn (under trio) on a listening socket pgcall makes itself.

Owns: the listening socket and its options, the hypercorn configuration, readiness.
Does not own: the ASGI application (``web``).

hypercorn's ``send()`` to a client that stopped reading is shielded and cannot be cancelled. We
make the listening socket ourselves with ``TCP_USER_TIMEOUT`` (accepted sockets inherit it) and
hand it over as ``fd://N``: a send to a peer that stopped reading, or vanished, then fails after
that timeout instead of blocking until the peer leaves. ``TCP_NODELAY`` keeps small control
messages from waiting behind Nagle's algorithm.
"""

from __future__ import annotations

import logging
import socket
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

log = logging.getLogger("pgcall.http")

# A peer that acknowledges nothing for this long is gone (or is not reading): its sends fail.
TCP_USER_TIMEOUT_MS = 10_000
# Larger WebSocket messages close the socket with 1009. A video frame is at most 512000 bytes of
# JPEG plus a small header, so 600 KB leaves headroom without inviting abuse.
MAX_WEBSOCKET_MESSAGE = 600 * 1024
PING_INTERVAL_S = 15.0


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
        sock.bind((host, port))
        sock.listen(512)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_http(app: Any, sock: socket.socket, *, certfile: Path | None = None,
                     keyfile: Path | None = None, shutdown_trigger: Any = None,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``sock`` (which hypercorn takes over) until cancelled or triggered."""
    host, port = sock.getsockname()[:2]
    cfg = HyperConfig()
    cfg.bind = [f"fd://{sock.detach()}"]
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("pgcall.hypercorn")
    cfg.websocket_max_message_size = MAX_WEBSOCKET_MESSAGE
    # A ping every 15 s: traffic that a vanished peer cannot acknowledge, so TCP_USER_TIMEOUT
    # closes its connection within 15 + 10 s (hypercorn hides pongs from the application).
    cfg.websocket_ping_interval = PING_INTERVAL_S
    cfg.graceful_timeout = 2.0
    cfg.keep_alive_timeout = 30
    if certfile is not None:
        cfg.certfile, cfg.keyfile = str(certfile), str(keyfile) if keyfile else None
    scheme = "https" if certfile is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{port}"

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, app, cfg, shutdown_trigger=shutdown_trigger))
        log.info("serving on %s", url)
        task_status.started(url)
