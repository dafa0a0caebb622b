"""pg-relay's JSON value encoding by PostgreSQL type (protocol.md §4.4, §10 "Encodings")."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import struct
import uuid
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgcall.wire import rowjson as r
from pgcall.wire.rowjson import encode_row, encode_value, float4_text

FUZZ = settings(deadline=None, max_examples=200)
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_oid_constants_match_pg_type() -> None:
    # pg_type.dat
    assert (r.BOOL_OID, r.BYTEA_OID, r.CHAR_OID, r.NAME_OID, r.INT8_OID) == (16, 17, 18, 19, 20)
    assert (r.INT2_OID, r.INT4_OID, r.TEXT_OID, r.FLOAT4_OID, r.FLOAT8_OID) == (
        21, 23, 25, 700, 701,
    )
    assert (r.BPCHAR_OID, r.VARCHAR_OID, r.TIMESTAMP_OID, r.TIMESTAMPTZ_OID, r.UUID_OID) == (
        1042, 1043, 1114, 1184, 2950,
    )


@pytest.mark.parametrize("value", [0, 42, -1, 2**63 - 1, -(2**63)])
def test_int8_is_a_digit_string(value: int) -> None:
    out = encode_value(20, value)
    assert out == str(value) and isinstance(out, str)
    assert int(out) == value  # BigInt-parsable, as the frontend needs


@pytest.mark.parametrize("oid", [21, 23])
@pytest.mark.parametrize("value", [0, 50, -32768, 2**31 - 1])
def test_int2_int4_are_numbers(oid: int, value: int) -> None:
    out = encode_value(oid, value)
    assert out == value and type(out) is int


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (0.02, 0.02),
        (f32(0.02), 0.02),  # 0.019999999552965164 as PostgreSQL hands it over
        (0.55, 0.55),
        (f32(0.55), 0.55),
        (0.012345678901, 0.012345679),  # §4.4 example
        (1 / 3, 0.33333334),
        (16777217, 16777216.0),
        (1.0, 1.0),
        (-2.5, -2.5),
        (1e-45, 1e-45),  # smallest subnormal single
        (3.4028235e38, 3.4028235e38),  # largest single
        # a power of two, where the shortest decimal lies above the nearest one
        (2.0**-96, 1.2621775e-29),
        (-(2.0**-96), -1.2621775e-29),
    ],
)
def test_float4_shortest_text(given_value: float, expected: float) -> None:
    assert float4_text(given_value) == expected
    assert encode_value(700, given_value) == expected
    assert json.dumps(encode_value(700, given_value)) == repr(expected)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e39, -1e300])
def test_float4_non_finite_is_null(value: float) -> None:
    assert encode_value(700, value) is None
    assert not math.isfinite(float4_text(value))


def _sig_digits(x: float) -> int:
    mantissa = repr(abs(x)).split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


def _shorter_exists(value: float, digits: int) -> bool:
    """Whether a decimal of fewer than `digits` significant digits reads as float4 `value`.

    Independent of the module: it searches the float4 rounding interval with exact
    fractions instead of formatting candidates.
    """
    bits = struct.unpack("<I", struct.pack("<f", abs(value)))[0]
    below = Fraction(struct.unpack("<f", struct.pack("<I", bits - 1))[0])
    # Above the largest single, the next step would be 2**128.
    above = Fraction(2**128) if bits == 0x7F7FFFFF else Fraction(
        struct.unpack("<f", struct.pack("<I", bits + 1))[0]
    )
    lo = (below + Fraction(abs(value))) / 2
    hi = (above + Fraction(abs(value))) / 2
    exp10 = math.floor(math.log10(abs(value)))
    for d in range(1, digits):
        for e in (exp10 - d + 1, exp10 - d + 2):
            step = Fraction(10) ** e
            first = math.ceil(lo / step)
            for k in (first, first + 1):  # a midpoint itself may round away
                candidate = k * step
                if candidate <= hi and f32(float(candidate)) == abs(value):
                    return True
    return False


@FUZZ
@given(st.floats(allow_nan=False, allow_infinity=False, width=32).filter(lambda x: x != 0))
def test_float4_text_is_shortest_round_trip(value: float) -> None:
    out = float4_text(value)
    assert f32(out) == value  # reads back as the same float4
    assert not _shorter_exists(value, _sig_digits(out))


@FUZZ
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-3e38, max_value=3e38))
def test_float4_text_of_any_double_is_its_float4(value: float) -> None:
    assert f32(float4_text(value)) == f32(value)


@pytest.mark.parametrize(
    ("value", "expected"), [(0.1, 0.1), (1e300, 1e300), (-0.0, 0.0), (5, 5.0)]
)
def test_float8(value: float, expected: float) -> None:
    out = encode_value(701, value)
    assert out == expected and type(out) is float
    assert math.copysign(1.0, out) == math.copysign(1.0, expected)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_float8_non_finite_is_null(value: float) -> None:
    assert encode_value(701, value) is None


UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2026, 11, 25, 18, 0, 47, 400999, UTC), "2026-11-25T18:00:47.400Z"),
        (dt.datetime(2026, 11, 25, 18, 0, 47, 999999, UTC), "2026-11-25T18:00:47.999Z"),
        (dt.datetime(2026, 11, 25, 18, 0, 47, 0, UTC), "2026-11-25T18:00:47.000Z"),
        (dt.datetime(2026, 11, 25, 18, 0, 47, 333, UTC), "2026-11-25T18:00:47.000Z"),
        (
            dt.datetime(2026, 12, 31, 22, 30, 0, 123456, dt.timezone(dt.timedelta(hours=-5))),
            "2027-01-01T03:30:00.123Z",
        ),
        (
            dt.datetime(2026, 3, 1, 2, 0, 0, 0, dt.timezone(dt.timedelta(hours=5, minutes=30))),
            "2026-02-28T20:30:00.000Z",
        ),
        (dt.datetime(999, 1, 2, 3, 4, 5, 6000, UTC), "0999-01-02T03:04:05.006Z"),
    ],
)
def test_timestamptz(value: dt.datetime, expected: str) -> None:
    assert encode_value(1184, value) == expected


def test_timestamp_without_zone_is_taken_as_utc() -> None:
    naive = dt.datetime(2026, 11, 25, 18, 0, 47, 400999)
    assert encode_value(1114, naive) == "2026-11-25T18:00:47.400Z"
    assert encode_value(1114, naive.replace(tzinfo=UTC)) == "2026-11-25T18:00:47.400Z"


@FUZZ
@given(st.datetimes(timezones=st.timezones() | st.just(UTC)))
def test_timestamptz_any_zone(value: dt.datetime) -> None:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # beyond year 1..9999 once moved to UTC
        return
    out = encode_value(1184, value)
    assert isinstance(out, str) and ISO_MS_Z.fullmatch(out)
    # isoformat(timespec="milliseconds") truncates, as a JavaScript Date does.
    assert out == utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@pytest.mark.parametrize(
    "value",
    [
        uuid.UUID("A0F375AB-FD13-48B1-8BA0-A68734DDDFB8"),
        "A0F375AB-FD13-48B1-8BA0-A68734DDDFB8",
        "a0f375ab-fd13-48b1-8ba0-a68734dddfb8",
        "a0f375abfd1348b18ba0a68734dddfb8",
    ],
)
def test_uuid_lower_canonical(value: object) -> None:
    assert encode_value(2950, value) == "a0f375ab-fd13-48b1-8ba0-a68734dddfb8"


@pytest.mark.parametrize("value", [True, False])
def test_bool(value: bool) -> None:
    assert encode_value(16, value) is value


@pytest.mark.parametrize("oid", [25, 1043, 19, 18, 1042])
def test_text_types(oid: int) -> None:
    assert encode_value(oid, "user-3f2a9c1b") == "user-3f2a9c1b"
    assert encode_value(oid, "caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"


@pytest.mark.parametrize("value", [b"", b"\x00\xff\x10", bytearray(b"abc"), memoryview(b"xyz!")])
def test_bytea_is_base64(value: bytes) -> None:
    out = encode_value(17, value)
    assert isinstance(out, str)
    assert base64.b64decode(out, validate=True) == bytes(value)


@pytest.mark.parametrize("oid", [16, 17, 20, 21, 23, 25, 700, 701, 1114, 1184, 2950, 1700, 0])
def test_none_is_null_for_every_type(oid: int) -> None:
    assert encode_value(oid, None) is None


@pytest.mark.parametrize(
    ("oid", "value"), [(1700, decimal.Decimal("1.50")), (26, 12345), (1082, dt.date(2026, 1, 2))]
)
def test_other_types_are_str(oid: int, value: object) -> None:
    assert encode_value(oid, value) == str(value)


def test_encode_row_uses_column_order_and_skips_absent() -> None:
    columns = [
        ("session_id", 2950), ("call_type", 25), ("state", 25), ("caller", 25),
        ("callee", 25), ("created_at", 1184), ("answered_at", 1184),
    ]
    created = dt.datetime(2026, 11, 25, 18, 0, 47, 333999, UTC)
    row = {
        "answered_at": None,
        "callee": "b" * 64,
        "caller": "a" * 64,
        "created_at": created,
        "session_id": uuid.UUID("A0F375AB-FD13-48B1-8BA0-A68734DDDFB8"),
        "state": "Ringing",
        "not_a_column": 1,
    }
    out = encode_row(columns, row)
    assert list(out) == ["session_id", "state", "caller", "callee", "created_at", "answered_at"]
    assert out == {
        "session_id": "a0f375ab-fd13-48b1-8ba0-a68734dddfb8",
        "state": "Ringing",
        "caller": "a" * 64,
        "callee": "b" * 64,
        "created_at": "2026-11-25T18:00:47.333Z",
        "answered_at": None,
    }


def test_encode_row_media_settings_is_json_ready() -> None:
    columns = [
        ("id", 23), ("audio_target_sample_rate", 23), ("audio_frame_ms", 21),
        ("audio_talking_rms_threshold", 700), ("video_jpeg_quality", 700),
    ]
    row = {
        "id": 1, "audio_target_sample_rate": 16000, "audio_frame_ms": 50,
        "audio_talking_rms_threshold": f32(0.02), "video_jpeg_quality": f32(0.55),
    }
    text = json.dumps(encode_row(columns, row), allow_nan=False, separators=(",", ":"))
    assert '"audio_talking_rms_threshold":0.02,' in text
    assert '"video_jpeg_quality":0.55}' in text
    assert '"id":1,' in text and '"audio_frame_ms":50,' in text
