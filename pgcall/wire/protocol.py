"""The pg-relay wire protocol as clients speak it, without I/O (protocol.md §2, §3, §3.1).

This module owns reading one client WebSocket message: the framing of §2, the parsing into
frozen `Control` / `Media` values, every check that can be answered without state, and the
error strings. Encoding messages is ``encode``'s.

It does not own anything that needs state or a clock: who the caller is, whether a user is
online, whether a session exists, is Active, is a Video call, or whether `to` is the peer
(§3.1 steps 1-4). The session layer does those after `parse_message` and answers with the
same error strings, which are exported here as ``ERR_*`` constants.

Where pgcall deliberately differs from pg-relay (§9 "Missing validation", §9 security 5/6):

* Only the six control types of §3 are known; `constructor`, `__proto__`, `toString` and
  the like are simply unknown types (pg-relay looked them up in a plain object).
* A non-string where a control message expects a string answers
  ``Invalid field: <name> must be a string`` instead of a leaked JavaScript TypeError.
* A missing (so ``''``) or non-UUID string ``session_id`` in `accept_call` /
  `decline_call` / `end_call` answers ``Call session not found`` - the text the spec gives
  for an unknown id - instead of leaking PostgreSQL's ``invalid input syntax for type uuid``.
* `request_call` rejects a ``target`` that is not 64 lower-case hex with ``Target is not
  online``, the same text pg-relay gives for an unknown target. The first check of §3,
  ``Cannot call yourself``, needs the caller's identity and stays with the session layer;
  since an identity is always 64 lower-case hex, answering the format check here never
  changes which error a client sees.
* Nicknames must not contain control characters (Unicode Cc: C0, DEL, C1), bidi overrides /
  isolates (U+202A-U+202E, U+2066-U+2069) or lone surrogates: ``Nickname contains invalid
  characters``, checked after the two checks of §3 so those keep their order. Chat text
  must not contain NUL (PostgreSQL text cannot hold it) or lone surrogates (not encodable
  as UTF-8): ``Message contains invalid characters``.
* Media headers are type- and range-checked (``Invalid frame header: <field>``), PCM must
  have an even length and JPEG must start with FF D8, and size limits are parameters. JSON
  has one number type, so an integral float (``16000.0``, ``1.6e4``) counts as an integer,
  as it does in JavaScript. Size is checked before content, as pg-relay checked only size.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import orjson

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
from .plainjson import plain_within
from .recording import RECORDING_CONTROL_TYPES, parse_recording_control
from .rooms import ROOM_CONTROL_TYPES, RoomMedia, parse_room_control, parse_room_media_header

TAG_CONTROL = 0
TAG_AUDIO = 1
TAG_VIDEO = 2

CONTROL_TYPES = frozenset(
    {"set_nickname", "send_message", "request_call", "accept_call", "decline_call", "end_call"}
)
MEDIA_REQ_TYPES = {"audio": "send_audio_frame", "video": "send_video_frame"}

# Error strings of protocol.md §2, §3 and §3.1, kept byte-exact because the original
# frontend shows "<req_type>: <message>" and tests compare them.
ERR_MALFORMED = "Malformed message"
ERR_UNKNOWN_TYPE = "Unknown message type"
ERR_NICK_EMPTY = "Nickname cannot be empty"
ERR_NICK_LONG = "Nickname must be <= 32 characters"
ERR_NICK_CHARS = "Nickname contains invalid characters"
ERR_USER_NOT_FOUND = "User not found"
ERR_MSG_EMPTY = "Message cannot be empty"
ERR_MSG_LONG = "Message must be <= 500 characters"
ERR_MSG_CHARS = "Message contains invalid characters"
ERR_CALL_SELF = "Cannot call yourself"
ERR_TARGET_OFFLINE = "Target is not online"
ERR_BUSY = "Caller or callee is already in a call"
ERR_SESSION_NOT_FOUND = "Call session not found"
ERR_ONLY_CALLEE_ACCEPT = "Only the callee can accept"
ERR_NOT_RINGING = "Call is not ringing"
ERR_ONLY_CALLEE_DECLINE = "Only the callee can decline"
ERR_ONLY_PARTICIPANT = "Only a participant can end this call"
ERR_NOT_ACTIVE = "Call is not active"
ERR_NOT_VIDEO = "Not a video call"
ERR_RECIPIENT = "Invalid recipient"
ERR_AUDIO_TOO_LARGE = "Audio frame too large"
ERR_AUDIO_ODD = "Audio frame has an odd number of bytes"
ERR_VIDEO_TOO_LARGE = "Video frame too large"
ERR_NOT_JPEG = "Not a JPEG frame"

NICKNAME_MAX = 32  # §3, in UTF-16 code units (JavaScript String.length)
MESSAGE_MAX = 500  # §3, same unit

_INT32_MAX = 2**31 - 1
_JPEG_SOI = b"\xff\xd8"

# Relayed header fields per kind (§3.1, §4.6): name -> (low, high, integers only).
MEDIA_FIELDS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "audio": {
        "sample_rate": (8000, 96000, True),
        "channels": (1, 8, True),
        "rms": (0.0, 1.5, False),
    },
    # width/height are stored as SMALLINT; 4096 is far inside it and above any real camera.
    "video": {"width": (1, 4096, True), "height": (1, 4096, True)},
}
_TAG_KIND = {TAG_AUDIO: "audio", TAG_VIDEO: "video"}


@attrs.frozen
class Media:
    """An audio or video frame from a client (§3.1), checked as far as no state is needed.

    `header` holds the relayed fields, normalised (audio: sample_rate, channels, rms as a
    float; video: width, height). `payload` is a memoryview into the message given to
    `parse_message` - no copy is made, so it keeps that buffer alive (and a bytearray given
    there cannot be resized while the view exists).
    """

    kind: str
    session_id: str
    to: str
    seq: int
    header: dict[str, Any]
    payload: bytes | memoryview = attrs.field(repr=lambda p: f"<{len(p)} bytes>")


# --- parsing -------------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    # JavaScript's JSON.parse has no NaN/Infinity literals (§2: invalid JSON is Malformed).
    raise ValueError(name)


def _parse_int(digits: str) -> int | float:
    # JavaScript reads every number as a double; Python's int() refuses over 4300 digits
    # (sys.int_info.str_digits_check_threshold), which would make valid JSON Malformed.
    return int(digits) if len(digits) <= 1000 else float(digits)


# One decoder for every message: json.loads with options would build a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)


# Valid JSON nested d deep is at least 2d bytes: this much cannot nest past 512.
_ORJSON_MAX_BYTES = 1024


def _loads(view: memoryview) -> object:
    # orjson reads strict RFC 8259 JSON several times faster. What it refuses - NaN/Infinity,
    # numbers beyond a double, lone surrogates, bad UTF-8 - goes to the decoder, which keeps
    # its own rules for them: same value or same error as before. Two things orjson accepts
    # but reads otherwise: integers beyond 64 bits become floats (so a float beyond 2**63 in
    # its result sends the input to the decoder), and it nests 1024 deep where the decoder
    # stops at the recursion limit (so only input too short to nest that deep is given to it).
    if len(view) <= _ORJSON_MAX_BYTES:
        try:
            value = orjson.loads(view)
        except orjson.JSONDecodeError:
            pass
        else:
            if plain_within(value, 0.0, 2.0**63):
                return value
    try:
        return _DECODER.decode(str(view, "utf-8"))
    except (ValueError, RecursionError):  # also bad UTF-8 (UnicodeDecodeError)
        raise ProtocolError("unknown", ERR_MALFORMED) from None


def _object(value: object) -> dict[str, Any]:
    # JavaScript falsiness (null, false, 0, -0, "") falls through pg-relay's dispatch to
    # "Unknown message type" (§2). Python's `not x` would also catch [] and {}, which are
    # truthy in JavaScript, so spell it out.
    if value is None or value is False or value == "" or (
        isinstance(value, int | float) and value == 0
    ):
        raise ProtocolError("unknown", ERR_UNKNOWN_TYPE)
    if not isinstance(value, dict):
        raise ProtocolError("unknown", ERR_MALFORMED)
    return value


def parse_message(
    data: bytes | bytearray | memoryview,
    *,
    max_audio_bytes: int = 64000,
    max_video_bytes: int = 512000,
    video_enabled: bool = True,
) -> Control | Media | RoomMedia:
    """Parse one binary WebSocket message. Raises only `ProtocolError`."""
    view = memoryview(data).cast("B")
    if not view:
        raise ProtocolError("unknown", ERR_MALFORMED)
    tag = view[0]
    if tag == TAG_CONTROL:
        return _parse_control(_object(_loads(view[1:])))
    kind = _TAG_KIND.get(tag)
    if kind is None or (kind == "video" and not video_enabled) or len(view) < 5:
        raise ProtocolError("unknown", ERR_MALFORMED)
    # The length is only compared, never used to allocate: an absurd value is Malformed.
    hlen = int.from_bytes(view[1:5], "big")
    if hlen > len(view) - 5:
        raise ProtocolError("unknown", ERR_MALFORMED)
    header = _object(_loads(view[5 : 5 + hlen]))
    limit = max_audio_bytes if kind == "audio" else max_video_bytes
    return _parse_media(kind, header, view[5 + hlen :], limit)


def _parse_control(msg: dict[str, Any]) -> Control:
    mtype = msg.get("type", "")
    if not isinstance(mtype, str):
        raise ProtocolError("unknown", ERR_UNKNOWN_TYPE)
    if mtype in ROOM_CONTROL_TYPES:
        return parse_room_control(mtype, msg)
    if mtype in RECORDING_CONTROL_TYPES:
        return parse_recording_control(mtype, msg)
    if mtype not in CONTROL_TYPES:
        raise ProtocolError(mtype, ERR_UNKNOWN_TYPE)
    if mtype == "set_nickname":
        nick = js_trim(string_field(msg, "nickname", mtype))
        if not nick:
            raise ProtocolError(mtype, ERR_NICK_EMPTY)
        if utf16_len(nick) > NICKNAME_MAX:
            raise ProtocolError(mtype, ERR_NICK_LONG)
        if BAD_NAME_RE.search(nick):
            raise ProtocolError(mtype, ERR_NICK_CHARS)
        return Control(mtype, {"nickname": nick})
    if mtype == "send_message":
        text = js_trim(string_field(msg, "text", mtype))
        if not text:
            raise ProtocolError(mtype, ERR_MSG_EMPTY)
        if utf16_len(text) > MESSAGE_MAX:
            raise ProtocolError(mtype, ERR_MSG_LONG)
        if BAD_TEXT_RE.search(text):
            raise ProtocolError(mtype, ERR_MSG_CHARS)
        return Control(mtype, {"text": text})
    if mtype == "request_call":
        target = string_field(msg, "target", mtype)
        if not is_identity(target):
            raise ProtocolError(mtype, ERR_TARGET_OFFLINE)
        # V: exactly "Video" makes a video call, anything else (or nothing) is Voice (§3).
        call_type = "Video" if msg.get("call_type") == "Video" else "Voice"
        return Control(mtype, {"target": target, "call_type": call_type})
    session_id = canonical_uuid(string_field(msg, "session_id", mtype))
    if session_id is None:
        raise ProtocolError(mtype, ERR_SESSION_NOT_FOUND)
    return Control(mtype, {"session_id": session_id})


def _parse_media(kind: str, header: dict[str, Any], payload: memoryview,
                 limit: int) -> Media | RoomMedia:
    req_type = MEDIA_REQ_TYPES[kind]
    if "room_id" in header:  # a room's frame (docs/protocol-rooms.md), additive to §3.1
        room_id, room_seq, relayed = parse_room_media_header(kind, header, req_type,
                                                             MEDIA_FIELDS[kind])
        _check_payload(kind, payload, limit, req_type)
        return RoomMedia(kind, room_id, room_seq, relayed, payload)
    session_id = canonical_uuid(header.get("session_id"))
    if session_id is None:
        raise ProtocolError(req_type, ERR_SESSION_NOT_FOUND)
    to = header.get("to")
    if not isinstance(to, str):
        raise ProtocolError(req_type, ERR_RECIPIENT)
    seq = number(header.get("seq"), 0, _INT32_MAX, True)
    if seq is None:
        raise ProtocolError(req_type, "Invalid frame header: seq")
    fields: dict[str, Any] = {}
    for name, (low, high, integer) in MEDIA_FIELDS[kind].items():
        value = number(header.get(name), low, high, integer)
        if value is None:
            raise ProtocolError(req_type, f"Invalid frame header: {name}")
        fields[name] = value
    _check_payload(kind, payload, limit, req_type)
    return Media(kind, session_id, to, int(seq), fields, payload)


def _check_payload(kind: str, payload: memoryview, limit: int, req_type: str) -> None:
    # Size first, as pg-relay did (§3.1 step 5), so every frame it rejected gets the same text.
    size = len(payload)
    if kind == "audio":
        if size > limit:
            raise ProtocolError(req_type, ERR_AUDIO_TOO_LARGE)
        if size % 2:  # PCM16LE: two bytes per sample (§2)
            raise ProtocolError(req_type, ERR_AUDIO_ODD)
    else:
        if size > limit:
            raise ProtocolError(req_type, ERR_VIDEO_TOO_LARGE)
        if payload[:2] != _JPEG_SOI:
            raise ProtocolError(req_type, ERR_NOT_JPEG)
