"""Static files of a frontend: URL path → file, content type and cache policy.

Owns: the mapping from a request path to a file inside the frontend directory, the refusal of
anything that would leave it (``..``, encoded dots, symlinks pointing outside: not found), the
SPA fallback to ``index.html``, content types and cache headers.
Does not own: reading the file or speaking HTTP (``web``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import attrs

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
DEFAULT_TYPE = "application/octet-stream"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Bundlers put a content hash in asset names (SvelteKit: _app/immutable/..., Vite:
# name-3f9a8c1b.js): such a file never changes under that name, so browsers may keep it for a year.
# A hash has a digit in it, which keeps names like "my-component.js" out.
_HASHED = re.compile(r"[.-](?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{8,12}\.[a-z0-9]+$")


@attrs.frozen
class StaticFile:
    path: Path
    content_type: str
    cache_control: str


def _safe_parts(url_path: str) -> list[str] | None:
    decoded = unquote(url_path.split("?", 1)[0], errors="strict")
    if "\x00" in decoded or "\\" in decoded:
        return None
    parts = [p for p in decoded.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return None
    return parts


def _inside(root: Path, candidate: Path) -> Path | None:
    real = Path(os.path.realpath(candidate))
    if real != root and root not in real.parents:
        return None  # a symlink (or anything else) leading out of the frontend
    return real if real.is_file() else None


def resolve(root: Path, url_path: str) -> StaticFile | None:
    """The file to serve for ``url_path`` (percent-encoded, as sent), or None for a 404."""
    root = Path(os.path.realpath(root))
    try:
        parts = _safe_parts(url_path)
    except UnicodeDecodeError:
        return None
    if parts is None:
        return None
    target = root.joinpath(*parts)
    found = _inside(root, target)
    if found is None and (not parts or url_path.endswith("/") or target.is_dir()):
        found = _inside(root, target / "index.html")
    if found is None and (not parts or "." not in parts[-1]):
        found = _inside(root, root / "index.html")  # SPA fallback for client-side routes
    if found is None:
        return None
    rel = found.relative_to(root).as_posix()
    immutable = "/immutable/" in f"/{rel}" or bool(_HASHED.search(found.name))
    ctype = CONTENT_TYPES.get(found.suffix.lower(), DEFAULT_TYPE)
    return StaticFile(found, ctype, IMMUTABLE if immutable and found.suffix != ".html"
                      else REVALIDATE)
