"""Media frames as logical decoding messages (``--media-path message``).

Owns: the content layout of a frame sent with ``pg_logical_emit_message(true, prefix, content)``
and its decoding back into the row-like dict the hub routes. Layout: uint32 big-endian length
of a JSON object (``session_id``, ``from_id``, ``to_id``, ``seq`` and the kind's fields, named
as the frame tables' columns; a room's frame has ``room_id`` instead of ``session_id`` and
``to_id``), the JSON, then the payload. Pure.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ..wire.protocol import Media
from ..wire.rooms import RoomMedia

PREFIX = {"audio": "pgcall.audio", "video": "pgcall.video"}
ROOM_PREFIX = {"audio": "pgcall.room.audio", "video": "pgcall.room.video"}
KIND_OF = {v: k for k, v in (*PREFIX.items(), *ROOM_PREFIX.items())}
ROOM_PREFIXES = frozenset(ROOM_PREFIX.values())
PAYLOAD_COLUMN = {"audio": "pcm16le", "video": "jpeg"}
_LEN = struct.Struct(">I")


class MediaMessageError(ValueError):
    pass


def encode(media: Media | RoomMedia, from_id: str) -> bytes:
    head: dict[str, Any]
    if isinstance(media, RoomMedia):
        head = {"room_id": media.room_id, "from_id": from_id, "seq": media.seq, **media.header}
    else:
        head = {"session_id": media.session_id, "from_id": from_id, "to_id": media.to,
                "seq": media.seq, **media.header}
    raw = json.dumps(head, separators=(",", ":")).encode()
    return b"".join((_LEN.pack(len(raw)), raw, bytes(media.payload)))


def decode(prefix: str, content: bytes | memoryview) -> tuple[str, dict[str, Any]]:
    """(kind, row) with the payload under the frame table's column name, zero-copy."""
    kind = KIND_OF.get(prefix)
    if kind is None:
        raise MediaMessageError(f"not a pgcall media message: {prefix!r}")
    view = memoryview(content)
    if len(view) < 4:
        raise MediaMessageError("truncated media message")
    (n,) = _LEN.unpack_from(view)
    if 4 + n > len(view):
        raise MediaMessageError("truncated media message header")
    try:
        row = json.loads(bytes(view[4:4 + n]))
    except ValueError as exc:
        raise MediaMessageError("bad media message header") from exc
    needed = ({"room_id", "from_id", "seq"} if prefix in ROOM_PREFIXES
              else {"session_id", "from_id", "to_id", "seq"})
    if not isinstance(row, dict) or not needed <= row.keys():
        raise MediaMessageError("incomplete media message header")
    row[PAYLOAD_COLUMN[kind]] = view[4 + n:]
    return kind, row
