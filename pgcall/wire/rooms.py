"""The room requests and room media headers clients send (docs/protocol-rooms.md), without I/O.

Owns: the room control types, their fields and the checks that need no state, the room media
header (``room_id`` instead of pg-relay's ``session_id``/``to``), and the error strings of
rooms. Everything here is additive to pg-relay's protocol: a pg-relay client never sends these.
Does not own: whether a room exists, who is in it, or who may do what (``db.rooms``, the hub).
"""

from __future__ import annotations

from typing import Any

import attrs

from .fields import (
    BAD_NAME_RE,
    BAD_TEXT_RE,
    Control,
    ProtocolError,
    canonical_uuid,
    is_identity,
    js_trim,
    number,
    string_field,
    utf16_len,
)

ROOM_CONTROL_TYPES = frozenset({
    "create_room", "join_room", "leave_room", "invite_to_room", "decline_room_invite",
    "remove_from_room", "set_room_state", "pin", "send_room_message",
})
ROOM_STATE_FLAGS = ("mic", "camera", "screen", "hand")
LAYERS = ("full", "thumb")

ERR_ROOM_NOT_FOUND = "Room not found"
ERR_ROOM_FULL = "Room is full"
ERR_ROOM_KEY = "Wrong room key"
ERR_BUSY = "Already in a call or room"
ERR_NOT_MEMBER = "Not a member of this room"
ERR_TARGET_NOT_MEMBER = "Target is not a member of this room"
ERR_ONLY_CREATOR = "Only the room's creator can remove members"
ERR_INVITE_NOT_FOUND = "Invitation not found"
ERR_ALREADY_MEMBER = "Target is already in this room"
ERR_NOT_VIDEO_ROOM = "Not a video room"
ERR_NAME_EMPTY = "Room name cannot be empty"
ERR_NAME_LONG = "Room name must be <= 64 characters"
ERR_NAME_CHARS = "Room name contains invalid characters"
ERR_NO_STATE = "Nothing to change: give mic, camera, screen or hand"

ROOM_NAME_MAX = 64
ROOM_KEY_MAX = 128
MESSAGE_MAX = 500


@attrs.frozen
class RoomMedia:
    """An audio or video frame for a room: written once, fanned out to the room's members.

    ``header`` holds the relayed fields, normalised as for a call's frames (audio:
    sample_rate, channels, rms; video: width, height, and ``layer``). ``payload`` is a view
    into the received message, as in ``protocol.Media``."""

    kind: str
    room_id: str
    seq: int
    header: dict[str, Any]
    payload: bytes | memoryview = attrs.field(repr=lambda p: f"<{len(p)} bytes>")


def _room_id(msg: dict[str, Any], req_type: str) -> str:
    room_id = canonical_uuid(string_field(msg, "room_id", req_type))
    if room_id is None:
        raise ProtocolError(req_type, ERR_ROOM_NOT_FOUND)
    return room_id


def _target(msg: dict[str, Any], req_type: str, error: str) -> str:
    target = string_field(msg, "target", req_type)
    if not is_identity(target):
        raise ProtocolError(req_type, error)
    return target


def _flag(msg: dict[str, Any], name: str, req_type: str) -> bool | None:
    value = msg.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ProtocolError(req_type, f"Invalid field: {name} must be true or false")
    return value


def parse_room_control(mtype: str, msg: dict[str, Any]) -> Control:
    """One of ``ROOM_CONTROL_TYPES``; raises ``ProtocolError`` with the room error texts."""
    if mtype == "create_room":
        name = js_trim(string_field(msg, "name", mtype))
        if not name:
            raise ProtocolError(mtype, ERR_NAME_EMPTY)
        if utf16_len(name) > ROOM_NAME_MAX:
            raise ProtocolError(mtype, ERR_NAME_LONG)
        if BAD_NAME_RE.search(name):
            raise ProtocolError(mtype, ERR_NAME_CHARS)
        call_type = "Video" if msg.get("call_type") == "Video" else "Voice"
        return Control(mtype, {"name": name, "call_type": call_type,
                               "private": bool(_flag(msg, "private", mtype))})
    room_id = _room_id(msg, mtype)
    if mtype == "join_room":
        key = msg.get("key")
        if key is not None and (not isinstance(key, str) or len(key) > ROOM_KEY_MAX):
            raise ProtocolError(mtype, ERR_ROOM_KEY)
        return Control(mtype, {"room_id": room_id, "key": key or None})
    if mtype in ("leave_room", "decline_room_invite"):
        return Control(mtype, {"room_id": room_id})
    if mtype == "invite_to_room":
        return Control(mtype, {"room_id": room_id,
                               "target": _target(msg, mtype, "Target is not online")})
    if mtype == "remove_from_room":
        return Control(mtype, {"room_id": room_id,
                               "target": _target(msg, mtype, ERR_TARGET_NOT_MEMBER)})
    if mtype == "pin":
        # null (or no target) unpins: the view follows the active speaker again.
        if msg.get("target") is None:
            return Control(mtype, {"room_id": room_id, "target": None})
        return Control(mtype, {"room_id": room_id,
                               "target": _target(msg, mtype, ERR_TARGET_NOT_MEMBER)})
    if mtype == "set_room_state":
        flags = {name: _flag(msg, name, mtype) for name in ROOM_STATE_FLAGS}
        given = {k: v for k, v in flags.items() if v is not None}
        if not given:
            raise ProtocolError(mtype, ERR_NO_STATE)
        return Control(mtype, {"room_id": room_id, "state": given})
    assert mtype == "send_room_message"
    text = js_trim(string_field(msg, "text", mtype))
    if not text:
        raise ProtocolError(mtype, "Message cannot be empty")
    if utf16_len(text) > MESSAGE_MAX:
        raise ProtocolError(mtype, "Message must be <= 500 characters")
    if BAD_TEXT_RE.search(text):
        raise ProtocolError(mtype, "Message contains invalid characters")
    return Control(mtype, {"room_id": room_id, "text": text})


def parse_room_media_header(kind: str, header: dict[str, Any], req_type: str,
                            fields_of: dict[str, tuple[float, float, bool]]
                            ) -> tuple[str, int, dict[str, Any]]:
    """(room_id, seq, relayed fields) of a room frame's header; the payload is the caller's."""
    room_id = canonical_uuid(header.get("room_id"))
    if room_id is None:
        raise ProtocolError(req_type, ERR_ROOM_NOT_FOUND)
    seq = number(header.get("seq"), 0, 2**31 - 1, True)
    if seq is None:
        raise ProtocolError(req_type, "Invalid frame header: seq")
    fields: dict[str, Any] = {}
    for name, (low, high, integer) in fields_of.items():
        value = number(header.get(name), low, high, integer)
        if value is None:
            raise ProtocolError(req_type, f"Invalid frame header: {name}")
        fields[name] = value
    if kind == "video":
        layer = header.get("layer", "full")
        if layer not in LAYERS:
            raise ProtocolError(req_type, "Invalid frame header: layer")
        fields["layer"] = layer
    return room_id, int(seq), fields
