"""Turning a WebSocket upgrade request into an open ``ServerWebSocket``, or refusing it.

Owns: wsproto's opening handshake on the request head the front door read (a malformed request
gets 400, or 426 for a wrong version), the Origin check (a foreign page gets 403 and no socket,
see ``origin``), the join secret (checked after the upgrade: close 4003, so that a browser sees
the reason), and the bytes that came after the head (frames already, fed to the new socket:
a request with trailing bytes must not confuse anybody). Does not own reading the head
(``frontdoor``) or the session (``relay.session``).
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import SplitResult, parse_qs, urlsplit

import attrs
import trio
from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from ..config import WsLimits
from .origin import origin_allowed
from .websocket import ServerWebSocket

log = logging.getLogger("pgcall.websocket")

CLOSE_SECRET = 4003  # --join-secret is set and the client gave none or a wrong one


@attrs.frozen
class Admission:
    """Who may open a WebSocket here."""

    allowed_origins: tuple[str, ...] = ()
    join_secret: str | None = None
    secure: bool = False  # served over TLS (the page's own origin is then https://)


@attrs.frozen
class Upgraded:
    ws: ServerWebSocket
    path: str
    token: str | None  # ?token=, pg-relay's identity token (an empty one counts as none)


def query_param(target: SplitResult, name: str) -> str | None:
    query = parse_qs(target.query)
    return (query.get(name) or [""])[0] or None


def _header(request: Request, name: bytes) -> str | None:
    for key, value in request.extra_headers:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def accept_websocket(stream: trio.abc.Stream, head: bytes, rest: bytes,
                           admission: Admission, limits: WsLimits) -> Upgraded | None:
    """Answer the upgrade in ``head``; the open socket, or None once refused (the refusal has
    been sent; the caller closes the stream)."""
    handshake = H11Handshake(ConnectionType.SERVER)
    try:
        handshake.receive_data(head)
        request = next(e for e in handshake.events() if isinstance(e, Request))
        target = urlsplit(request.target)  # ValueError for "//[" and the like
    except (RemoteProtocolError, UnicodeError, StopIteration, ValueError) as exc:
        hint = getattr(exc, "event_hint", None)
        reject = hint if isinstance(hint, RejectConnection) else RejectConnection(status_code=400)
        log.debug("refused a malformed upgrade request: %s", exc)
        await stream.send_all(handshake.send(reject))
        return None
    origin = _header(request, b"origin")
    if not origin_allowed(origin, request.host, admission.secure, admission.allowed_origins):
        log.warning("refused a WebSocket from origin %s", origin)
        await stream.send_all(handshake.send(RejectConnection(status_code=403)))
        return None
    await stream.send_all(handshake.send(AcceptConnection()))
    assert handshake.connection is not None
    ws = ServerWebSocket(stream, handshake.connection, limits)
    ws.feed(rest)
    if admission.join_secret is not None:
        given = query_param(target, "secret") or ""
        if not hmac.compare_digest(given.encode(), admission.join_secret.encode()):
            await ws.close(CLOSE_SECRET, "Join secret required")
            return None
    return Upgraded(ws, target.path, query_param(target, "token"))
