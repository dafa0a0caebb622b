"""Which web pages may open a WebSocket to pgcall (the ``Origin`` header check).

Owns: the rule. Browsers send ``Origin`` on every WebSocket handshake and a page cannot forge
it; without a check, any site a visitor opens could make their browser join calls on their
behalf (cross-site WebSocket hijacking). Non-browser clients send no Origin and are allowed:
the check protects browsers, it is not authentication (that is ``--join-secret``).
Allowed by default: the page's own origin (same scheme and Host as the request) and loopback
origins (``localhost``, ``127.0.0.1``, ``[::1]`` on any port), where development servers such
as pg-relay's ``vite dev`` run. ``--allowed-origins`` adds origins; ``*`` allows all.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def origin_allowed(origin: str | None, host: str | None, secure: bool,
                   allowed: tuple[str, ...] = ()) -> bool:
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    if "*" in allowed or origin in (a.strip().lower().rstrip("/") for a in allowed):
        return True
    try:
        parts = urlsplit(origin)
        hostname = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not hostname:
        return False
    if hostname in LOOPBACK_HOSTS:
        return True
    if host:
        own = f"{'https' if secure else 'http'}://{host.strip().lower()}"
        if origin == own:
            return True
    return False
