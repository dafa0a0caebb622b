"""The recording requests clients send (docs/recording.md), without I/O.

Owns: ``hello`` (what a client can do: ``features``, of which ``recording`` means it shows the
recording indicator), start/stop/list/delete of recordings, fetching a recording's frames for
replay, their fields and the checks that need no state, and the error strings of recording.
Additive to pg-relay's protocol: a pg-relay client never sends these, and so is never recorded.
Does not own: who may record or see what (``db.recordings``).
"""

from __future__ import annotations

from typing import Any

from .fields import Control, ProtocolError, canonical_uuid, number

RECORDING_CONTROL_TYPES = frozenset({
    "hello", "start_recording", "stop_recording", "list_recordings", "delete_recording",
    "get_recording",
})
FEATURES = frozenset({"recording", "rooms"})  # the ones pgcall looks at; others are kept
FEATURES_MAX = 16
FEATURE_LEN_MAX = 32
CHUNK_MAX_MS = 3_000  # the longest stretch of a recording one get_recording returns

ERR_CONSENT = "Not every participant can show the recording indicator"
ERR_ALREADY = "Already recording"
ERR_NOT_RECORDING = "Not recording"
ERR_NOT_FOUND = "Recording not found"
ERR_NOT_PARTICIPANT = "Only a participant can record"
ERR_ONLY_STARTER = "Only who started a recording can delete it"
ERR_NEEDS_TABLES = "Recording needs frames stored in tables (--media-path table)"
ERR_TARGET = "Give either session_id or room_id"


def _features(msg: dict[str, Any]) -> list[str]:
    value = msg.get("features", [])
    if (not isinstance(value, list) or len(value) > FEATURES_MAX
            or not all(isinstance(f, str) and 0 < len(f) <= FEATURE_LEN_MAX for f in value)):
        raise ProtocolError("hello", "Invalid field: features must be a list of short strings")
    return sorted(set(value))


def _recording_id(msg: dict[str, Any], req_type: str) -> str:
    rid = canonical_uuid(msg.get("recording_id"))
    if rid is None:
        raise ProtocolError(req_type, ERR_NOT_FOUND)
    return rid


def _target(msg: dict[str, Any], req_type: str) -> dict[str, str | None]:
    """Exactly one of a call (``session_id``) or a room (``room_id``)."""
    session, room = msg.get("session_id"), msg.get("room_id")
    if (session is None) == (room is None):
        raise ProtocolError(req_type, ERR_TARGET)
    if session is not None:
        sid = canonical_uuid(session)
        if sid is None:
            raise ProtocolError(req_type, "Call session not found")
        return {"session_id": sid, "room_id": None}
    rid = canonical_uuid(room)
    if rid is None:
        raise ProtocolError(req_type, "Room not found")
    return {"session_id": None, "room_id": rid}


def _ms(msg: dict[str, Any], name: str, req_type: str, default: int | None) -> int:
    value = msg.get(name, default)
    n = number(value, 0, 2**31 - 1, True)
    if n is None:
        raise ProtocolError(req_type, f"Invalid field: {name} must be milliseconds")
    return int(n)


def parse_recording_control(mtype: str, msg: dict[str, Any]) -> Control:
    if mtype == "hello":
        return Control(mtype, {"features": _features(msg)})
    if mtype in ("start_recording", "stop_recording"):
        return Control(mtype, _target(msg, mtype))
    if mtype == "list_recordings":
        return Control(mtype, {})
    rid = _recording_id(msg, mtype)
    if mtype == "delete_recording":
        return Control(mtype, {"recording_id": rid})
    assert mtype == "get_recording"
    start = _ms(msg, "from_ms", mtype, 0)
    end = _ms(msg, "to_ms", mtype, start + CHUNK_MAX_MS)
    if end < start:
        raise ProtocolError(mtype, "Invalid field: to_ms must not be before from_ms")
    return Control(mtype, {"recording_id": rid, "from_ms": start,
                           "to_ms": min(end, start + CHUNK_MAX_MS)})
