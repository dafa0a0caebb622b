"""Property tests for pgcall.protocol: any input gives a value or a ProtocolError, never
another exception; valid media round-trips byte for byte."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from pgcall.wire import encode as enc
from pgcall.wire import protocol as p
from pgcall.wire.protocol import Control, Media, ProtocolError, parse_message

# No deadline: the machine is shared, and timing is not what these tests check.
FUZZ = settings(deadline=None, max_examples=150)

# Text as a JSON client may send it: JSON escapes can carry lone surrogates.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
UUIDS = st.uuids().map(str)
IDENTITIES = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def parse_or_error(data: bytes, **kw: object) -> Control | Media | ProtocolError:
    """Anything but a ProtocolError escaping parse_message fails the test."""
    try:
        return parse_message(data, **kw)  # type: ignore[arg-type]
    except ProtocolError as exc:
        assert isinstance(exc.req_type, str) and isinstance(exc.message, str)
        assert exc.message  # every error reply says something
        return exc


def media(tag: int, header: bytes, payload: bytes) -> bytes:
    return bytes([tag]) + len(header).to_bytes(4, "big") + header + payload


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_or_error(data)


@FUZZ
@given(st.sampled_from([0, 1, 2]), st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_after_each_tag(tag: int, rest: bytes, video_enabled: bool) -> None:
    parse_or_error(bytes([tag]) + rest, video_enabled=video_enabled)


@FUZZ
@given(JSON_VALUES)
def test_arbitrary_json_as_control(value: object) -> None:
    result = parse_or_error(b"\x00" + json.dumps(value).encode("utf-8", "surrogatepass"))
    if not isinstance(value, dict):
        assert isinstance(result, ProtocolError) and result.req_type == "unknown"


@FUZZ
@given(
    st.sampled_from(sorted(p.CONTROL_TYPES)),
    st.dictionaries(
        st.sampled_from(["nickname", "text", "target", "call_type", "session_id", "x"]),
        JSON_VALUES | UUIDS | IDENTITIES,
        max_size=4,
    ),
)
def test_known_types_with_arbitrary_fields(mtype: str, fields: dict[str, object]) -> None:
    result = parse_or_error(b"\x00" + json.dumps({"type": mtype, **fields}).encode())
    if isinstance(result, ProtocolError):
        assert result.req_type == mtype
    else:
        assert isinstance(result, Control) and result.type == mtype
        # What is stored or relayed must be valid UTF-8 and free of NUL.
        for value in result.fields.values():
            assert "\x00" not in value
            value.encode("utf-8")


@FUZZ
@given(
    st.sampled_from([1, 2]),
    JSON_VALUES,
    st.binary(max_size=64),
)
def test_arbitrary_json_as_media_header(tag: int, header: object, payload: bytes) -> None:
    parse_or_error(media(tag, json.dumps(header).encode("utf-8", "surrogatepass"), payload))


@FUZZ
@given(
    st.sampled_from([1, 2]),
    st.dictionaries(
        st.sampled_from(
            ["session_id", "to", "seq", "sample_rate", "channels", "rms", "width", "height"]
        ),
        JSON_VALUES | UUIDS | st.integers(min_value=-5, max_value=100000),
        max_size=8,
    ),
    st.binary(max_size=64),
)
def test_media_headers_with_arbitrary_fields(tag: int, header: dict, payload: bytes) -> None:
    result = parse_or_error(media(tag, json.dumps(header).encode("utf-8", "surrogatepass"),
                                  payload))
    if isinstance(result, ProtocolError):
        assert result.req_type in ("unknown", "send_audio_frame", "send_video_frame")


AUDIO_FIELDS = st.fixed_dictionaries(
    {
        "sample_rate": st.integers(8000, 96000),
        "channels": st.integers(1, 8),
        "rms": st.floats(0.0, 1.5),
    }
)
VIDEO_FIELDS = st.fixed_dictionaries(
    {"width": st.integers(1, 4096), "height": st.integers(1, 4096)}
)


@FUZZ
@given(
    UUIDS,
    st.text(max_size=70),
    st.integers(0, 2**31 - 1),
    st.one_of(
        st.tuples(st.just("audio"), AUDIO_FIELDS, st.binary(max_size=400).map(
            lambda b: b[: len(b) // 2 * 2])),
        st.tuples(st.just("video"), VIDEO_FIELDS, st.binary(max_size=400).map(
            lambda b: b"\xff\xd8" + b)),
    ),
)
def test_encode_media_parse_round_trip(
    session_id: str, to: str, seq: int, case: tuple[str, dict, bytes]
) -> None:
    kind, fields, payload = case
    header = {"session_id": session_id.upper(), "to": to, "seq": seq, **fields}
    msg = parse_message(enc.encode_media(kind, header, memoryview(payload)))
    assert isinstance(msg, Media)
    assert bytes(msg.payload) == payload
    assert (msg.kind, msg.session_id, msg.to, msg.seq) == (kind, session_id, to, seq)
    assert msg.header == fields
    relayed = enc.media_header(kind, msg.session_id, "f" * 64, msg.seq, msg.header)
    out = enc.encode_media(kind, relayed, msg.payload)
    hlen = int.from_bytes(out[1:5], "big")
    assert json.loads(out[5 : 5 + hlen]) == relayed
    assert out[5 + hlen :] == payload


@FUZZ
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(sorted(p.CONTROL_TYPES)), "text": st.text(max_size=20)}
    ),
    st.binary(min_size=1, max_size=20).filter(lambda b: b[:1] not in b" \t\r\n"),
)
def test_control_truncated_and_trailing_bytes_are_malformed(obj: dict, extra: bytes) -> None:
    data = b"\x00" + json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    for cut in range(len(data)):
        result = parse_or_error(data[:cut])
        assert isinstance(result, ProtocolError) and result.message == "Malformed message"
    result = parse_or_error(data + extra)
    assert isinstance(result, ProtocolError) and result.message == "Malformed message"


_JS_SPACE = {"\t", "\n", "\x0b", "\x0c", "\r", "\u2028", "\u2029", "\ufeff"}


def _is_js_space(ch: str) -> bool:
    return ch in _JS_SPACE or unicodedata.category(ch) == "Zs"


@FUZZ
@given(st.text())
def test_js_trim_properties(text: str) -> None:
    trimmed = p.js_trim(text)
    start = text.find(trimmed) if trimmed else len(text)
    assert trimmed == text[start : start + len(trimmed)]
    assert all(_is_js_space(ch) for ch in text[:start] + text[start + len(trimmed) :])
    assert not trimmed or (not _is_js_space(trimmed[0]) and not _is_js_space(trimmed[-1]))


@FUZZ
@given(st.text())
def test_utf16_len_counts_astral_twice(text: str) -> None:
    assert p.utf16_len(text) == len(text) + sum(ord(ch) > 0xFFFF for ch in text)


@FUZZ
@given(ANY_TEXT, ANY_TEXT)
def test_error_encoding_is_valid_utf8_json(req_type: str, message: str) -> None:
    out = enc.error(req_type, message)
    assert out[0] == 0
    decoded = json.loads(out[1:].decode("utf-8"))
    assert decoded == {"type": "error", "req_type": req_type, "message": message}
