"""``GET /recordings/<recording_id>.mp4?token=<token>``: a participant downloads a recording
as an MP4 file (docs/recording.md "Download").

Owns: the URL, who gets the file (the identity of ``token``, the one a client got in its
``identity`` message, must be among the recording's participants; anyone else, a bad token
and an unknown id get the same 404, so nothing tells them apart), exporting it into a
temporary file off the trio thread, one export at a time per process, and sending that file
as an attachment. The token is only looked up, never given a new identity.
Does not own: the export (``recording.job``), the rest of HTTP (``asgi``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trio

from ..db.recordings import RecordingStore
from ..db.store import Store
from ..pg.pool import Pool
from ..recording import job
from ..recording.export import INSTALL_HINT, LAYOUTS, ExportOptions, available
from ..wire.fields import canonical_uuid
from .asgi import SECURITY_HEADERS, Send

log = logging.getLogger("pgcall.web")

PATH_RE = re.compile(r"/recordings/([^/]+)\.mp4")
CHUNK = 256 * 1024
# The encoder gets one thread, so that a download leaves the other cores to the calls.
SERVER_EXPORT = ExportOptions(threads=1)


class Downloads:
    def __init__(self, pool: Pool) -> None:
        self.identities = Store(pool, 0)
        self.recordings = RecordingStore(pool, 0)
        self.limiter = trio.CapacityLimiter(1)  # exports are CPU-heavy: one at a time

    async def __call__(self, scope: dict[str, Any], send: Send, head: bool) -> bool:
        """Answer the request if it is a download (True), else leave it (False)."""
        m = PATH_RE.fullmatch(scope["path"])
        if m is None:
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        layout = (query.get("layout") or ["grid"])[0]
        if layout not in LAYOUTS:
            await _text(send, 400, f"layout must be one of {', '.join(LAYOUTS)}", head)
            return True
        rid, token = canonical_uuid(m.group(1)), (query.get("token") or [""])[0]
        who = await self.identities.identity_of(token) if token else None
        rec = None if rid is None or who is None else await job.find(self.recordings, rid, who)
        if rec is None:
            await _text(send, 404, "not found", head)
            return True
        if not available():
            await _text(send, 501, INSTALL_HINT, head)
            return True
        day = rec.started_at.strftime("%Y%m%d-%H%M%S") if rec.started_at else "recording"
        headers = [(b"content-type", b"video/mp4"), (b"cache-control", b"no-store"),
                   (b"content-disposition",
                    f'attachment; filename="pgcall-{day}-{rec.recording_id[:8]}.mp4"'.encode()),
                   *SECURITY_HEADERS]
        if head:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        fd, name = tempfile.mkstemp(prefix="pgcall-export-", suffix=".mp4")
        os.close(fd)
        path = Path(name)
        try:
            options = ExportOptions(layout=layout, threads=SERVER_EXPORT.threads)
            try:
                stats = await job.export(self.recordings, rec, path, options, self.limiter)
            except Exception:
                log.exception("exporting recording %s failed", rec.recording_id)
                await _text(send, 500, "the export failed (see the server's log)", head)
                return True
            log.info("exported recording %s for download: %.1f s of video in %.1f s",
                     rec.recording_id, stats.duration_ms / 1000, stats.seconds)
            await _send_file(send, path, headers)
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(OSError):
                await trio.Path(path).unlink()
        return True


async def _send_file(send: Send, path: Path, headers: list[tuple[bytes, bytes]]) -> None:
    size = (await trio.Path(path).stat()).st_size
    async with await trio.open_file(path, "rb") as f:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode()), *headers]})
        while chunk := await f.read(CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _text(send: Send, status: int, line: str, head: bool) -> None:
    body = f"{line}\n".encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
        *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": b"" if head else body})
