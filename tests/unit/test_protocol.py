"""pg-relay framing, validation and server-message encoding (protocol.md §2-§4, §9, §10)."""

from __future__ import annotations

import ast
import json
import sys
import unicodedata
from pathlib import Path

import attrs
import pytest

from pgcall.wire import encode as enc
from pgcall.wire import protocol as p
from pgcall.wire.protocol import Control, Media, ProtocolError, parse_message

A = "a" * 64  # identities are 64 lower-case hex (§5)
B = "b" * 64
SID = "a0f375ab-fd13-48b1-8ba0-a68734dddfb8"
GRIN = "\U0001f600"  # astral: two UTF-16 code units, one Python character
_MISSING = object()  # a field left out of the message


def ctl(obj: object) -> bytes:
    return b"\x00" + json.dumps(obj).encode()


def raw_media(tag: int, header_json: bytes, payload: bytes = b"") -> bytes:
    return bytes([tag]) + len(header_json).to_bytes(4, "big") + header_json + payload


def audio_header(**over: object) -> dict[str, object]:
    h: dict[str, object] = {
        "session_id": SID, "to": B, "seq": 17, "sample_rate": 16000, "channels": 1, "rms": 0.25,
    }
    h.update(over)
    return {k: v for k, v in h.items() if v is not _MISSING}


def video_header(**over: object) -> dict[str, object]:
    h: dict[str, object] = {"session_id": SID, "to": B, "seq": 3, "width": 640, "height": 360}
    h.update(over)
    return {k: v for k, v in h.items() if v is not _MISSING}


JPEG = b"\xff\xd8\xff\xe0" + bytes(100)


def audio(header: dict[str, object], payload: bytes = bytes(1600)) -> bytes:
    return raw_media(1, json.dumps(header).encode(), payload)


def video(header: dict[str, object], payload: bytes = JPEG) -> bytes:
    return raw_media(2, json.dumps(header).encode(), payload)


def err(data: bytes, **kw: object) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as info:
        parse_message(data, **kw)  # type: ignore[arg-type]
    assert info.value.args == (info.value.req_type, info.value.message)
    return info.value.req_type, info.value.message


MALFORMED = ("unknown", "Malformed message")
UNKNOWN = ("unknown", "Unknown message type")


# --- framing (§2) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00{",
        b'\x00{"type":"ack"',
        b"\x00{'type':'ack'}",
        b"\x03{}",
        b"\xff",
        b"\x01",
        b"\x01\x00\x00\x00",
        b"\x02\x00\x00",
        b"\x01\x00\x00\x00\x03{}",  # header length one past the end
        b"\x01\xff\xff\xff\xff{}",  # absurd length: refused, nothing allocated
        b"\x01\x00\x00\x00\x01{",  # header JSON invalid
        b"\x01\x00\x00\x00\x00",  # empty header is not JSON
    ],
)
def test_malformed_framing(data: bytes) -> None:
    assert err(data) == MALFORMED


@pytest.mark.parametrize("text", ["null", "0", "-0", "0.0", "0e5", "false", '""', " null "])
def test_falsy_json_is_unknown_type(text: str) -> None:
    assert err(b"\x00" + text.encode()) == UNKNOWN
    assert err(raw_media(1, text.encode())) == UNKNOWN
    assert err(raw_media(2, text.encode(), JPEG)) == UNKNOWN


@pytest.mark.parametrize("text", ["[1]", "[]", "5", "-1.5", '"x"', "true", "1e400", '" "'])
def test_truthy_non_object_is_malformed(text: str) -> None:
    # [] is falsy in Python but truthy in JavaScript, so it is Malformed, not Unknown.
    assert err(b"\x00" + text.encode()) == MALFORMED
    assert err(raw_media(1, text.encode())) == MALFORMED


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", '{"type":"x","v":NaN}', '{"type":"x","v":-Infinity}']
)
def test_non_finite_literals_are_malformed(text: str) -> None:
    assert err(b"\x00" + text.encode()) == MALFORMED
    header = '{"session_id":"%s","to":"x","seq":1,"sample_rate":8000,"channels":1,"rms":%s}'
    assert err(raw_media(1, (header % (SID, text)).encode())) == MALFORMED


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\xff",
        b'\x00{"type":"\xc3"}',
        b'\x00{"type":"\xed\xa0\x80"}',  # a UTF-16 surrogate encoded as UTF-8 is invalid
        b"\x00\xef\xbb\xbf{}",  # JSON.parse refuses a BOM
        b"\x00" + '{"type":"x"}'.encode("utf-16"),
        raw_media(1, b'{"to":"\xff"}'),
    ],
)
def test_invalid_utf8_is_malformed(data: bytes) -> None:
    assert err(data) == MALFORMED


def test_deep_nesting_is_malformed_not_recursion_error() -> None:
    depth = sys.getrecursionlimit() * 2
    assert err(b"\x00" + b"[" * depth + b"]" * depth) == MALFORMED


def test_long_integer_reads_as_a_number_like_javascript() -> None:
    # Python's int() refuses > 4300 digits; JavaScript reads it as a double.
    long_int = b"7" * 5000
    assert err(b'\x00{"type":"x","n":' + long_int + b"}") == ("x", "Unknown message type")
    hdr = json.dumps(audio_header(seq=0)).replace('"seq": 0', '"seq": ' + long_int.decode())
    assert err(raw_media(1, hdr.encode())) == ("send_audio_frame", "Invalid frame header: seq")


def test_video_tag_refused_when_video_disabled() -> None:
    frame = video(video_header())
    assert isinstance(parse_message(frame), Media)
    assert err(frame, video_enabled=False) == MALFORMED
    assert isinstance(parse_message(audio(audio_header()), video_enabled=False), Media)


def test_json_whitespace_around_control_is_allowed() -> None:
    msg = parse_message(b'\x00 \t\r\n{"type":"end_call","session_id":"%s"}\n ' % SID.encode())
    assert msg == Control("end_call", {"session_id": SID})


# --- the three ways: whole, truncated, trailing bytes ---------------------------------------


def test_control_whole_truncated_and_trailing() -> None:
    data = ctl({"type": "send_message", "text": "hi " + GRIN})
    assert parse_message(data) == Control("send_message", {"text": "hi " + GRIN})
    for cut in range(len(data)):
        assert err(data[:cut]) == MALFORMED, cut
    for extra in (b"x", b"{}", b"\x00", b"}", b'{"type":"ack"}'):
        assert err(data + extra) == MALFORMED


def test_media_whole_truncated_and_trailing() -> None:
    header = json.dumps(audio_header()).encode()
    data = raw_media(1, header, bytes(range(200)) * 2)
    whole = parse_message(data)
    assert isinstance(whole, Media) and bytes(whole.payload) == bytes(range(200)) * 2
    for cut in range(5 + len(header)):
        assert err(data[:cut]) == MALFORMED, cut
    # The payload is everything after the header and is never length-checked (§2).
    cut = parse_message(data[:-2])
    assert isinstance(cut, Media) and bytes(cut.payload) == (bytes(range(200)) * 2)[:-2]
    longer = parse_message(data + b"\x01\x02")
    assert isinstance(longer, Media) and bytes(longer.payload)[-2:] == b"\x01\x02"


def test_memoryview_and_bytearray_input_and_zero_copy_payload() -> None:
    data = audio(audio_header(), b"\x01\x02" * 10)
    for given in (data, bytearray(data), memoryview(data)):
        msg = parse_message(given)
        assert isinstance(msg, Media) and bytes(msg.payload) == b"\x01\x02" * 10
    msg = parse_message(data)
    assert isinstance(msg, Media) and isinstance(msg.payload, memoryview)
    assert msg.payload.obj is data  # a view into the message, not a copy


# --- control type dispatch (§3, §9 security 5) ----------------------------------------------


@pytest.mark.parametrize(
    "mtype",
    ["constructor", "__proto__", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf",
     "send_audio_frame", "ack", "SET_NICKNAME", "set_nickname ", "", "\u00e9"],
)
def test_unknown_type_echoes_given_type(mtype: str) -> None:
    assert err(ctl({"type": mtype})) == (mtype, "Unknown message type")


def test_missing_type_is_empty_string() -> None:
    assert err(ctl({})) == ("", "Unknown message type")
    assert err(ctl({"nickname": "bob"})) == ("", "Unknown message type")


@pytest.mark.parametrize("mtype", [5, None, True, [], {}, ["set_nickname"]])
def test_non_string_type_is_unknown(mtype: object) -> None:
    assert err(ctl({"type": mtype})) == UNKNOWN


def test_control_types_constant() -> None:
    assert p.CONTROL_TYPES == {
        "set_nickname", "send_message", "request_call", "accept_call", "decline_call", "end_call",
    }
    assert (p.TAG_CONTROL, p.TAG_AUDIO, p.TAG_VIDEO) == (0, 1, 2)


# --- set_nickname / send_message -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("bob", "bob"),
        ("  bob\t\n", "bob"),
        ("\ufeffbob\ufeff", "bob"),  # JS trims U+FEFF, Python's strip does not
        ("\u3000\u2028bob\u00a0\u205f", "bob"),
        ("jos\u00e9 \u540d\u524d", "jos\u00e9 \u540d\u524d"),
        ("\U0001f469\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb"),  # ZWJ is fine
        ("a" * 32, "a" * 32),
        (" " + "a" * 32 + " ", "a" * 32),  # length counted after trim
        (GRIN * 16, GRIN * 16),  # 32 UTF-16 units
    ],
)
def test_set_nickname_ok(given: str, expected: str) -> None:
    msg = parse_message(ctl({"type": "set_nickname", "nickname": given, "extra": 1}))
    assert msg == Control("set_nickname", {"nickname": expected})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Nickname cannot be empty"),
        ({"nickname": ""}, "Nickname cannot be empty"),
        ({"nickname": " \u3000\ufeff\u2029 "}, "Nickname cannot be empty"),
        ({"nickname": "a" * 33}, "Nickname must be <= 32 characters"),
        ({"nickname": GRIN * 16 + "a"}, "Nickname must be <= 32 characters"),
        ({"nickname": GRIN * 17}, "Nickname must be <= 32 characters"),  # 17 chars, 34 units
        ({"nickname": "a" * 31 + GRIN}, "Nickname must be <= 32 characters"),
        ({"nickname": "\x00" * 33}, "Nickname must be <= 32 characters"),  # §3 order first
        ({"nickname": "\x1cbob"}, "Nickname contains invalid characters"),  # JS keeps U+001C
        ({"nickname": "\x85bob"}, "Nickname contains invalid characters"),  # and U+0085
        ({"nickname": "a\x00b"}, "Nickname contains invalid characters"),
        ({"nickname": "a\tb"}, "Nickname contains invalid characters"),
        ({"nickname": "a\x7fb"}, "Nickname contains invalid characters"),
        ({"nickname": "a\x9fb"}, "Nickname contains invalid characters"),
        ({"nickname": "a\u202eb"}, "Nickname contains invalid characters"),
        ({"nickname": "a\u202ab"}, "Nickname contains invalid characters"),
        ({"nickname": "a\u2066b"}, "Nickname contains invalid characters"),
        ({"nickname": "a\u2069b"}, "Nickname contains invalid characters"),
        ({"nickname": "a\ud800b"}, "Nickname contains invalid characters"),
        ({"nickname": None}, "Invalid field: nickname must be a string"),
        ({"nickname": 5}, "Invalid field: nickname must be a string"),
        ({"nickname": ["bob"]}, "Invalid field: nickname must be a string"),
        ({"nickname": {}}, "Invalid field: nickname must be a string"),
        ({"nickname": True}, "Invalid field: nickname must be a string"),
    ],
)
def test_set_nickname_errors(body: dict[str, object], message: str) -> None:
    assert err(ctl({"type": "set_nickname", **body})) == ("set_nickname", message)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("hi", "hi"),
        ("\n  hello\r\n", "hello"),
        ("line 1\nline 2\ttab \x01", "line 1\nline 2\ttab \x01"),
        ("\ufeff" + "x" * 500 + "\ufeff", "x" * 500),
        (GRIN * 250, GRIN * 250),  # 500 UTF-16 units
        ("\u202e\u0627", "\u202e\u0627"),  # only nicknames refuse bidi controls
    ],
)
def test_send_message_ok(given: str, expected: str) -> None:
    assert parse_message(ctl({"type": "send_message", "text": given})) == Control(
        "send_message", {"text": expected}
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Message cannot be empty"),
        ({"text": " \t\u00a0"}, "Message cannot be empty"),
        ({"text": "x" * 501}, "Message must be <= 500 characters"),
        ({"text": GRIN * 250 + "x"}, "Message must be <= 500 characters"),
        ({"text": GRIN * 251}, "Message must be <= 500 characters"),
        ({"text": "a\x00b"}, "Message contains invalid characters"),
        ({"text": "a\udfffb"}, "Message contains invalid characters"),
        ({"text": None}, "Invalid field: text must be a string"),
        ({"text": 12}, "Invalid field: text must be a string"),
    ],
)
def test_send_message_errors(body: dict[str, object], message: str) -> None:
    assert err(ctl({"type": "send_message", **body})) == ("send_message", message)


def test_js_trim_matches_ecmascript_on_the_whole_bmp() -> None:
    # ECMA-262: WhiteSpace = TAB VT FF SP NBSP ZWNBSP and every Zs; LineTerminator = LF CR
    # LS PS. Derived from unicodedata here, independent of the module's table.
    line_terminators = {"\n", "\r", "\u2028", "\u2029"}
    ws = {"\t", "\x0b", "\x0c", "\ufeff"} | line_terminators
    for cp in range(0x10000):
        ch = chr(cp)
        expected = ch in ws or unicodedata.category(ch) == "Zs"
        assert (p.js_trim(ch + "x" + ch) == "x") is expected, hex(cp)
    assert p.js_trim("\U00020000x") == "\U00020000x"


@pytest.mark.parametrize("ch", ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\ufeff"])
def test_js_trim_differs_from_python_strip(ch: str) -> None:
    assert (p.js_trim(ch + "a" + ch) == "a") != ((ch + "a" + ch).strip() == "a")


@pytest.mark.parametrize(
    "text", ["", "a", GRIN, "a" + GRIN + "b", "\u00e9\u540d", "\ud800", GRIN * 3 + "\uffff"]
)
def test_utf16_len(text: str) -> None:
    astral = sum(1 for ch in text if ord(ch) > 0xFFFF)
    assert p.utf16_len(text) == len(text) + astral


# --- request_call -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_type", "expected"),
    [("Video", "Video"), ("Voice", "Voice"), ("video", "Voice"), ("VIDEO", "Voice"),
     (None, "Voice"), (1, "Voice"), (_MISSING, "Voice"), ("Video ", "Voice")],
)
def test_request_call_ok(call_type: object, expected: str) -> None:
    body = {"type": "request_call", "target": B, "call_type": call_type}
    if call_type is _MISSING:
        del body["call_type"]
    assert parse_message(ctl(body)) == Control(
        "request_call", {"target": B, "call_type": expected}
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Target is not online"),
        ({"target": ""}, "Target is not online"),
        ({"target": B.upper()}, "Target is not online"),
        ({"target": B[:63]}, "Target is not online"),
        ({"target": B + "b"}, "Target is not online"),
        ({"target": B[:63] + "g"}, "Target is not online"),
        ({"target": B + "\n"}, "Target is not online"),
        ({"target": "\uff41" * 64}, "Target is not online"),  # fullwidth a is not hex
        ({"target": None}, "Invalid field: target must be a string"),
        ({"target": 7}, "Invalid field: target must be a string"),
    ],
)
def test_request_call_errors(body: dict[str, object], message: str) -> None:
    assert err(ctl({"type": "request_call", "call_type": "Video", **body})) == (
        "request_call", message,
    )


# --- accept_call / decline_call / end_call ---------------------------------------------------

SESSION_TYPES = ["accept_call", "decline_call", "end_call"]


@pytest.mark.parametrize("mtype", SESSION_TYPES)
@pytest.mark.parametrize(
    "given",
    [
        SID,
        SID.upper(),
        "{" + SID + "}",
        SID.replace("-", ""),
        "a0f3-75ab-fd13-48b1-8ba0-a687-34dd-dfb8",  # hyphen after any group of four
        "{a0f375ab-fd1348b1-8ba0a687-34dddfb8}",
    ],
)
def test_session_id_normalised(mtype: str, given: str) -> None:
    assert parse_message(ctl({"type": mtype, "session_id": given})) == Control(
        mtype, {"session_id": SID}
    )


@pytest.mark.parametrize("mtype", SESSION_TYPES)
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"session_id": ""},
        {"session_id": "abc"},
        {"session_id": SID[:-1]},
        {"session_id": SID + "0"},
        {"session_id": SID + "\n"},
        {"session_id": " " + SID},
        {"session_id": "{" + SID},
        {"session_id": SID + "}"},
        {"session_id": "-" + SID},
        {"session_id": SID.replace("-", "--", 1)},
        {"session_id": "urn:uuid:" + SID},
        {"session_id": SID.replace("a", "g", 1)},
    ],
)
def test_session_id_invalid_is_not_found(mtype: str, body: dict[str, object]) -> None:
    assert err(ctl({"type": mtype, **body})) == (mtype, "Call session not found")


@pytest.mark.parametrize("mtype", SESSION_TYPES)
@pytest.mark.parametrize("value", [None, 5, [SID], {"id": SID}])
def test_session_id_non_string(mtype: str, value: object) -> None:
    assert err(ctl({"type": mtype, "session_id": value})) == (
        mtype, "Invalid field: session_id must be a string",
    )


def test_parsed_values_are_frozen() -> None:
    msg = parse_message(ctl({"type": "end_call", "session_id": SID}))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.type = "accept_call"  # type: ignore[misc]


# --- media (§3.1, §9 "Missing validation") ---------------------------------------------------


def test_audio_ok_and_normalised() -> None:
    pcm = bytes(range(256)) * 4
    msg = parse_message(audio(audio_header(session_id=SID.upper(), seq=0.0, rms=1), pcm))
    assert msg == Media("audio", SID, B, 0, {"sample_rate": 16000, "channels": 1, "rms": 1.0}, pcm)
    assert isinstance(msg, Media)
    assert type(msg.seq) is int and type(msg.header["rms"]) is float
    assert list(msg.header) == ["sample_rate", "channels", "rms"]


def test_video_ok() -> None:
    msg = parse_message(video(video_header(width=4096, height=1.0)))
    assert msg == Media("video", SID, B, 3, {"width": 4096, "height": 1}, JPEG)
    assert isinstance(msg, Media) and type(msg.header["height"]) is int


def test_empty_audio_payload_is_allowed() -> None:
    msg = parse_message(audio(audio_header(), b""))
    assert isinstance(msg, Media) and bytes(msg.payload) == b""


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("seq", [0, 1, 2**31 - 1, 5.0], [-1, 2**31, 1.5, "1", True, False, None, [1], _MISSING]),
        ("sample_rate", [8000, 96000, 48000.0], [7999, 96001, 16000.5, "16000", True, _MISSING]),
        ("channels", [1, 8], [0, 9, 1.5, "1", True, None, _MISSING]),
        ("rms", [0, 0.0, 1.5, 1, 0.012345678901], [-0.01, 1.51, "0.1", True, None, _MISSING]),
    ],
)
def test_audio_header_fields(field: str, good: list[object], bad: list[object]) -> None:
    for value in good:
        msg = parse_message(audio(audio_header(**{field: value})))
        assert isinstance(msg, Media)
        got = msg.seq if field == "seq" else msg.header[field]
        assert got == value
    for value in bad:
        assert err(audio(audio_header(**{field: value}))) == (
            "send_audio_frame", f"Invalid frame header: {field}",
        ), value


def test_overflowing_number_is_an_invalid_field() -> None:
    # 1e400 is valid JSON; JavaScript and Python both read it as Infinity.
    for field in ("rms", "sample_rate"):
        text = json.dumps(audio_header(**{field: 123456})).replace("123456", "1e400")
        assert err(raw_media(1, text.encode())) == (
            "send_audio_frame", f"Invalid frame header: {field}",
        )


@pytest.mark.parametrize("field", ["width", "height"])
@pytest.mark.parametrize("value", [0, 4097, -1, 1.5, "640", True, None, _MISSING, 40000])
def test_video_header_fields(field: str, value: object) -> None:
    assert err(video(video_header(**{field: value}))) == (
        "send_video_frame", f"Invalid frame header: {field}",
    )


@pytest.mark.parametrize(
    ("maker", "header", "req_type"),
    [(audio, audio_header, "send_audio_frame"), (video, video_header, "send_video_frame")],
)
@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"session_id": _MISSING}, "Call session not found"),
        ({"session_id": "nope"}, "Call session not found"),
        ({"session_id": 5}, "Call session not found"),
        ({"session_id": None}, "Call session not found"),
        ({"to": _MISSING}, "Invalid recipient"),
        ({"to": None}, "Invalid recipient"),
        ({"to": 5}, "Invalid recipient"),
        # order: session_id, to, seq, then the kind's fields
        ({"session_id": "x", "to": 5, "seq": -1}, "Call session not found"),
        ({"to": 5, "seq": -1}, "Invalid recipient"),
        ({"seq": -1, "channels": 0, "width": 0}, "Invalid frame header: seq"),
    ],
)
def test_media_common_errors(maker, header, req_type, over, message) -> None:  # type: ignore[no-untyped-def]
    assert err(maker(header(**over))) == (req_type, message)


def test_media_to_is_only_type_checked() -> None:
    # Whether `to` is the peer needs state (§3.1 step 4); any string passes the parser.
    for to in ("", "X" * 64, "\u00e9"):
        msg = parse_message(audio(audio_header(to=to)))
        assert isinstance(msg, Media) and msg.to == to


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        (64000, 64000, None),
        (64002, 64000, "Audio frame too large"),
        (64001, 64000, "Audio frame too large"),  # size first, as pg-relay
        (3, 64000, "Audio frame has an odd number of bytes"),
        (1, 64000, "Audio frame has an odd number of bytes"),
        (100, 100, None),
        (102, 100, "Audio frame too large"),
    ],
)
def test_audio_payload(size: int, limit: int, expected: str | None) -> None:
    data = audio(audio_header(), bytes(size))
    if expected is None:
        msg = parse_message(data, max_audio_bytes=limit)
        assert isinstance(msg, Media) and len(msg.payload) == size
    else:
        assert err(data, max_audio_bytes=limit) == ("send_audio_frame", expected)


@pytest.mark.parametrize(
    ("payload", "limit", "expected"),
    [
        (JPEG, 512000, None),
        (b"\xff\xd8", 512000, None),
        (b"\xff\xd8" + bytes(511998), 512000, None),
        (b"\xff\xd8" + bytes(511999), 512000, "Video frame too large"),
        (bytes(512001), 512000, "Video frame too large"),
        (b"\xff\xd8" + bytes(99), 100, "Video frame too large"),
        (b"", 512000, "Not a JPEG frame"),
        (b"\xff", 512000, "Not a JPEG frame"),
        (b"\x89PNG\r\n\x1a\n", 512000, "Not a JPEG frame"),
        (b"\xd8\xff" + bytes(10), 512000, "Not a JPEG frame"),
    ],
)
def test_video_payload(payload: bytes, limit: int, expected: str | None) -> None:
    data = video(video_header(), payload)
    if expected is None:
        msg = parse_message(data, max_video_bytes=limit)
        assert isinstance(msg, Media) and bytes(msg.payload) == payload
    else:
        assert err(data, max_video_bytes=limit) == ("send_video_frame", expected)


# --- encoders (§2, §4) ----------------------------------------------------------------------


def test_ack_matches_worked_example() -> None:
    # §4.8: 00 7B 22 74 79 70 65 22 3A 22 61 63 6B 22 ...
    out = enc.ack("send_message")
    assert out[:14] == bytes.fromhex("007B2274797065223A2261636B22")
    assert out == b'\x00{"type":"ack","req_type":"send_message"}'


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        (enc.ack("x"), {"type": "ack", "req_type": "x"}),
        (enc.error("set_nickname", "User not found"),
         {"type": "error", "req_type": "set_nickname", "message": "User not found"}),
        (enc.identity(A, SID), {"type": "identity", "identity": A, "token": SID}),
        (enc.snapshot("users", [{"identity": A, "nickname": "n"}]),
         {"type": "snapshot", "table": "users", "rows": [{"identity": A, "nickname": "n"}]}),
        (enc.snapshot("call_sessions", []),
         {"type": "snapshot", "table": "call_sessions", "rows": []}),
        (enc.insert_event("chat_messages", {"id": "1", "text": "t"}),
         {"type": "insert", "table": "chat_messages", "row": {"id": "1", "text": "t"}}),
        (enc.update_event("users", {"identity": A, "nickname": "x"}, {"identity": A}),
         {"type": "update", "table": "users", "row": {"identity": A, "nickname": "x"},
          "old": {"identity": A}}),
        (enc.delete_event("call_sessions", {"session_id": SID}),
         {"type": "delete", "table": "call_sessions", "old": {"session_id": SID}}),
        (enc.encode_control({"type": "custom", "z": 1, "a": [None, True, 1.5]}),
         {"type": "custom", "z": 1, "a": [None, True, 1.5]}),
    ],
)
def test_control_encoders(out: bytes, expected: dict[str, object]) -> None:
    assert isinstance(out, bytes) and out[0] == p.TAG_CONTROL
    decoded = json.loads(out[1:].decode("utf-8"))
    assert decoded == expected
    assert list(decoded) == list(expected)  # key order, `type` first
    # compact, like JSON.stringify
    assert out[1:] == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()


def test_non_ascii_is_raw_utf8() -> None:
    out = enc.error("send_message", "caf\u00e9 " + GRIN)
    assert ("caf\u00e9 " + GRIN).encode("utf-8") in out
    assert b"\\u" not in out


def test_lone_surrogate_is_escaped_not_an_exception() -> None:
    # An unknown type is echoed as req_type, and JSON may carry a lone surrogate.
    req_type, message = err(b'\x00{"type":"\\ud800"}')
    out = enc.error(req_type, message)
    assert json.loads(out[1:].decode("utf-8"))["req_type"] == "\ud800"


def test_encoders_refuse_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        enc.encode_control({"type": "x", "v": float("nan")})


def test_media_header_key_order() -> None:
    fields = {"rms": 0.5, "channels": 1, "sample_rate": 16000, "extra": 1}
    h = enc.media_header("audio", SID, A, 17, fields)
    assert list(h.items()) == [
        ("session_id", SID), ("from", A), ("seq", 17),
        ("sample_rate", 16000), ("channels", 1), ("rms", 0.5),
    ]
    v = enc.media_header("video", SID, A, 2, {"height": 360, "width": 640})
    assert list(v.items()) == [
        ("session_id", SID), ("from", A), ("seq", 2), ("width", 640), ("height", 360),
    ]


def test_encode_media_matches_worked_example() -> None:
    # §4.8: header length 187 when `from` is 64 hex characters.
    fields = {"sample_rate": 16000, "channels": 1, "rms": 0.012345679}
    header = enc.media_header("audio", SID, A, 17, fields)
    pcm = bytes(1600)
    out = enc.encode_media("audio", header, pcm)
    assert out[0] == p.TAG_AUDIO
    assert out[1:5] == bytes.fromhex("000000BB")
    assert json.loads(out[5 : 5 + 187]) == header
    assert list(json.loads(out[5 : 5 + 187])) == list(header)
    assert out[5 + 187 :] == pcm


def test_encode_media_video_and_memoryview_payload() -> None:
    payload = bytearray(JPEG)
    header = enc.media_header("video", SID, A, 9, {"width": 320, "height": 180})
    out = enc.encode_media("video", header, memoryview(payload))
    assert isinstance(out, bytes) and out[0] == p.TAG_VIDEO
    hlen = int.from_bytes(out[1:5], "big")
    assert json.loads(out[5 : 5 + hlen]) == header
    assert out[5 + hlen :] == JPEG


def test_encode_media_then_parse_round_trip() -> None:
    payload = bytes(range(256)) * 6
    header = audio_header(seq=41, rms=0.5)
    msg = parse_message(enc.encode_media("audio", header, payload))
    assert isinstance(msg, Media)
    assert (msg.session_id, msg.to, msg.seq, bytes(msg.payload)) == (SID, B, 41, payload)


def test_protocol_error_attributes() -> None:
    e = ProtocolError("send_message", "Message cannot be empty")
    assert isinstance(e, Exception)
    assert (e.req_type, e.message) == ("send_message", "Message cannot be empty")


def test_canonical_uuid_and_is_identity_helpers() -> None:
    assert p.canonical_uuid(SID.upper()) == SID
    assert p.canonical_uuid(5) is None
    assert p.is_identity(A) and not p.is_identity(A.upper()) and not p.is_identity(5)


# --- the pure layer stays pure (DESIGN.md §1) -------------------------------------------------


PURE_MODULES = ["wire/protocol.py", "wire/encode.py", "wire/rowjson.py", "wire/fields.py",
                "wire/plainjson.py", "wire/rooms.py", "rooms/speaker.py", "rooms/forwarding.py",
                "web/frameguard.py", "web/httphead.py", "db/mediamsg.py"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_io(module: str) -> None:
    source = (Path(p.__file__).parents[1] / module).read_text(encoding="utf-8")
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    forbidden = {"trio", "psycopg", "hypercorn", "socket", "time", "asyncio", "select", "ssl"}
    assert names, module
    assert not names & forbidden
