"""Who may connect to a running pgcall: the ``Origin`` check (HTTP 403 before any socket),
``--join-secret`` (close 4003 before any identity), and TLS (``--certfile``/``--keyfile``:
``https://`` and ``wss://``). See docs/threat-model.md and docs/limits.md.

Refusals are also checked on the database: a refused connection must not have been given an
identity (no ``pgcall_tokens`` row), which is what "refused before anything happens" means.
A raw handshake (``handshake``) is used where the ``Host`` header matters, since a WebSocket
library always sends the host it connects to.

Also home of ``serving``: a pgcall with a custom ``Config`` in the test's own task tree.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from pgcall.app import Running, serve
from pgcall.config import Config
from pgcall.pg.pool import Pool

from .conftest import wait_slots_released
from .test_observability import http_get
from .wsclient import Client

DEADLINE_S = 30.0
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0
SECRET = "s3cret"
FOREIGN_ORIGINS = (
    "https://evil.example",
    "http://evil.example",
    "null",  # sandboxed iframes, file:// pages
    "http://127.0.0.1.evil.example",
    "https://localhost.evil.example:5174",
    "file://",
    "chrome-extension://abcdefghijklmnop",
)


# -- helpers ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(db_dsn: str, **options: Any) -> AsyncIterator[Running]:
    """A pgcall on a free port with ``Config(dsn=db_dsn, port=0, **options)``; stopped (and
    its replication slot released) when the block ends."""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        config = Config(dsn=db_dsn, port=0, **options)
        with trio.fail_after(START_DEADLINE_S):
            running: Running = await nursery.start(partial(serve, config, shutdown))
        try:
            yield running
        finally:
            shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + STOP_DEADLINE_S
    with trio.fail_after(STOP_DEADLINE_S):
        await wait_slots_released(db_dsn)


def ws_base(running: Running) -> str:
    scheme, rest = running.url.split("://", 1)
    return ("wss://" if scheme == "https" else "ws://") + rest + "/"


@contextlib.asynccontextmanager
async def connect(url: str, origin: str | None = None,
                  ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Client]:
    """A WebSocket to ``url``, nothing read yet; ``origin`` sent as the Origin header."""
    headers = [] if origin is None else [(b"Origin", origin.encode())]
    async with open_websocket_url(url, ssl_context=ssl_context, extra_headers=headers,
                                  connect_timeout=DEADLINE_S, disconnect_timeout=2.0) as ws:
        try:
            yield Client(ws)
        finally:
            await _close(ws)


async def _close(ws: WebSocketConnection) -> None:
    # trio-websocket leaves the TCP stream open when the server started the close; closing
    # an already closed stream does nothing (as in wsclient.open_client).
    with trio.CancelScope(shield=True), trio.move_on_after(2.0):
        await ws.aclose()
        await ws._stream.aclose()


async def handshake(base: str, host: str, origin: str | None,
                    ssl_context: ssl.SSLContext | None = None) -> int:
    """A WebSocket opening handshake (RFC 6455 §4.1) with the given Host and Origin headers;
    the HTTP status of the answer (101 when accepted)."""
    parts = urlsplit(base)
    address, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream: trio.abc.Stream
    if ssl_context is not None:
        stream = await trio.open_ssl_over_tcp_stream(address, int(port),
                                                     ssl_context=ssl_context)
    else:
        stream = await trio.open_tcp_stream(address, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET / HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = await stream.receive_some(4096)
            assert chunk, f"closed without an answer: {data!r}"
            data += chunk
    return int(data.split(b" ", 2)[1])


async def tokens(db: Pool) -> int:
    """How many identities pgcall has handed out on this database."""
    return (await db.execute("SELECT count(*) FROM pgcall_tokens")).rows[0][0]


# -- Origin -------------------------------------------------------------------------------------


async def _refused(url: str, origin: str) -> int:
    """The HTTP status trio-websocket reports when the handshake with ``origin`` is rejected.
    The TCP stream is ours, so that it is closed either way (open_websocket_url leaves a
    rejected connection's socket open)."""
    parts = urlsplit(url)
    status = None
    async with await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80) as s:
        try:
            async with trio.open_nursery() as nursery:
                await wrap_client_stream(nursery, s, parts.netloc, "/",
                                         extra_headers=[(b"Origin", origin.encode())])
                nursery.cancel_scope.cancel()  # accepted: the assertion below reports it
        except* ConnectionRejected as group:
            status = group.exceptions[0].status_code  # type: ignore[attr-defined]
    assert status is not None, f"the handshake with Origin {origin} was accepted"
    return status


async def test_a_foreign_origin_is_refused_before_anything_happens(server: str,
                                                                   db: Pool) -> None:
    with trio.fail_after(DEADLINE_S):
        for origin in FOREIGN_ORIGINS:
            assert await _refused(server, origin) == 403, origin
        assert await tokens(db) == 0  # no identity was handed out
        # The server still serves everyone else.
        async with connect(server) as c:
            await c.read_identity()
    assert await tokens(db) == 1


async def test_own_origin_loopback_origins_and_no_origin_are_accepted(server: str) -> None:
    port = server.rstrip("/").rsplit(":", 1)[1]
    origins = (None, f"http://127.0.0.1:{port}", "http://localhost:5174",
               "http://LOCALHOST:5174/", "https://localhost", "http://[::1]:3000")
    with trio.fail_after(DEADLINE_S):
        for origin in origins:
            async with connect(server, origin) as c:
                await c.read_identity()
            assert len(c.identity) == 64, origin


async def test_own_origin_is_the_page_s_scheme_and_host(server: str) -> None:
    # Served under a name (behind a proxy or by DNS): the page's own origin is accepted, the
    # same name under another scheme or port, or a look-alike, is not.
    host = "call.example.org:8080"
    with trio.fail_after(DEADLINE_S):
        assert await handshake(server, host, f"http://{host}") == 101
        assert await handshake(server, host, f"http://{host.upper()}") == 101
        for origin in (f"https://{host}", "http://call.example.org",
                       "http://call.example.org:8081", f"http://{host}.evil.example",
                       "http://evil.example"):
            assert await handshake(server, host, origin) == 403, origin


async def test_allowed_origins_adds_exactly_those(db_dsn: str, db: Pool) -> None:
    with trio.fail_after(2 * DEADLINE_S):
        async with serving(db_dsn, allowed_origins=("https://app.example",)) as running:
            url = ws_base(running)
            for origin in ("https://app.example", "https://APP.example/",
                           "http://localhost:5174"):
                async with connect(url, origin) as c:
                    await c.read_identity()
            for origin in ("http://app.example", "https://app.example:444",
                           "https://sub.app.example", *FOREIGN_ORIGINS):
                assert await _refused(url, origin) == 403, origin
            assert await tokens(db) == 3


async def test_allowed_origins_star_allows_any(db_dsn: str) -> None:
    with trio.fail_after(2 * DEADLINE_S):
        async with serving(db_dsn, allowed_origins=("*",)) as running:
            for origin in FOREIGN_ORIGINS:
                async with connect(ws_base(running), origin) as c:
                    await c.read_identity()


# -- join secret --------------------------------------------------------------------------------


async def _closed_before_identity(url: str) -> tuple[int, str | None]:
    async with connect(url) as c:
        with pytest.raises(ConnectionClosed) as info:
            await c.ws.get_message()  # the very first message would be the identity
    return info.value.reason.code, info.value.reason.reason


async def test_join_secret(db_dsn: str, db: Pool) -> None:
    with trio.fail_after(2 * DEADLINE_S):
        async with serving(db_dsn, join_secret=SECRET) as running:
            base = ws_base(running)
            for query in ("", "?secret=", "?secret=wrong", f"?secret={SECRET.upper()}",
                          f"?secret={SECRET}x", f"?secret={SECRET[:-1]}", "?token=abc",
                          f"?Secret={SECRET}"):
                assert await _closed_before_identity(base + query) == (
                    4003, "Join secret required"), query
            assert await tokens(db) == 0
            async with connect(f"{base}?secret={SECRET}") as c:
                await c.read_identity()
                await c.read_snapshots()
            # With a token too: the same identity comes back.
            async with connect(f"{base}?token={c.token}&secret={SECRET}") as again:
                await again.read_identity()
            assert (again.identity, again.token) == (c.identity, c.token)
            # A known token does not replace the secret.
            assert await _closed_before_identity(f"{base}?token={c.token}") == (
                4003, "Join secret required")
            assert await tokens(db) == 1


# -- TLS ----------------------------------------------------------------------------------------


async def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), made with the openssl command or, where
    that is missing, with the cryptography package."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if shutil.which("openssl"):
        await trio.run_process(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            capture_stdout=True, capture_stderr=True)
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256()))
    await trio.Path(cert).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    await trio.Path(key).write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert, key


async def test_tls_serves_https_and_wss(db_dsn: str, tmp_path: Path) -> None:
    cert, key = await self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    with trio.fail_after(2 * DEADLINE_S):
        async with serving(db_dsn, certfile=cert, keyfile=key) as running:
            assert running.url.startswith("https://127.0.0.1:")
            status, _, body = await http_get(running.url, "/healthz", ssl_context=trusted)
            assert status == 200
            assert json.loads(body)["status"] == "ok"
            async with connect(ws_base(running), ssl_context=trusted) as c:
                await c.read_identity()
                await c.read_snapshots()
                # The certificate presented is the one configured.
                presented = c.ws._stream.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            assert presented == ssl.PEM_cert_to_DER_cert(await trio.Path(cert).read_text())
            assert len(c.identity) == 64
            # Over TLS the page's own origin is https://, not http://.
            host = "call.example.org"
            assert await handshake(running.url, host, f"https://{host}", trusted) == 101
            assert await handshake(running.url, host, f"http://{host}", trusted) == 403
