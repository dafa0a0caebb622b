"""Encoding pg-relay's messages (protocol.md §2, §4): tag-0 JSON messages (replies, events,
snapshots; and the control messages a client sends) and media frames.

Owns: the bytes on the wire, in the key order and JSON style of pg-relay (compact, ``type``
first, non-ASCII as raw UTF-8). Does not own: parsing or validating what clients send
(``protocol``). Pure.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .plainjson import plain_within
from .protocol import MEDIA_FIELDS

_KIND_TAG = {"audio": b"\x01", "video": b"\x02"}


# Compact like JSON.stringify, non-ASCII as raw UTF-8 (§2). Made once: json.dumps with options
# would build a new encoder for every message.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


# Subclasses, dataclasses and datetimes: orjson refuses them, so the stdlib decides.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _dumps(obj: object) -> bytes:
    # orjson writes the encoder's bytes several times faster for JSON's own types and floats
    # that repr writes without an exponent (1e-4 <= |x| < 1e16, or 0). What it refuses (lone
    # surrogates, non-str keys, integers beyond 64 bits, nesting past 254) or writes its own
    # way (NaN as null, 1e-07 as 1e-7, UUIDs, enums) is left to the encoder: same bytes or
    # same error as before.
    try:
        out = orjson.dumps(obj, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    else:
        if plain_within(obj, 1e-4, 1e16):
            return out
    # A lone surrogate (possible in an echoed req_type) cannot be UTF-8; then escape it, as
    # well-formed JSON.stringify does.
    text = _ENCODER.encode(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(obj).encode("ascii")


def encode_control(obj: dict[str, Any]) -> bytes:
    """A tag-0 message carrying `obj` as JSON; keys keep their order, `type` first."""
    return b"\x00" + _dumps(obj)


def ack(req_type: str, **extra: Any) -> bytes:
    """``{"type":"ack","req_type":...}``; room requests add fields (``room_id``, ``key``)."""
    return encode_control({"type": "ack", "req_type": req_type, **extra})


def error(req_type: str, message: str) -> bytes:
    return encode_control({"type": "error", "req_type": req_type, "message": message})


def identity(identity: str, token: str) -> bytes:
    return encode_control({"type": "identity", "identity": identity, "token": token})


def snapshot(table: str, rows: list[dict[str, Any]]) -> bytes:
    return encode_control({"type": "snapshot", "table": table, "rows": rows})


def insert_event(table: str, row: dict[str, Any]) -> bytes:
    return encode_control({"type": "insert", "table": table, "row": row})


def update_event(table: str, row: dict[str, Any], old: dict[str, Any]) -> bytes:
    return encode_control({"type": "update", "table": table, "row": row, "old": old})


def delete_event(table: str, old: dict[str, Any]) -> bytes:
    return encode_control({"type": "delete", "table": table, "old": old})


def media_header(
    kind: str, session_id: str, from_id: str, seq: int, fields: dict[str, Any]
) -> dict[str, Any]:
    """The relayed header in pg-relay's key order (§4.6); `to` is never included."""
    header: dict[str, Any] = {"session_id": session_id, "from": from_id, "seq": seq}
    for name in MEDIA_FIELDS[kind]:
        header[name] = fields[name]
    return header


def room_media_header(
    kind: str, room_id: str, from_id: str, seq: int, fields: dict[str, Any]
) -> dict[str, Any]:
    """A room frame's relayed header (docs/protocol-rooms.md): ``room_id`` where a call's
    frame has ``session_id``; video frames also name their ``layer``."""
    header: dict[str, Any] = {"room_id": room_id, "from": from_id, "seq": seq}
    for name in MEDIA_FIELDS[kind]:
        header[name] = fields[name]
    if kind == "video":
        header["layer"] = fields.get("layer", "full")
    return header


def encode_media(kind: str, header: dict[str, Any], payload: bytes | memoryview) -> bytes:
    """Tag, uint32 big-endian header length, header JSON, payload (§2); one copy of payload."""
    head = _dumps(header)
    return b"".join((_KIND_TAG[kind], len(head).to_bytes(4, "big"), head, payload))
