"""pg-relay's JSON encoding of row values (protocol.md §4.4).

This module owns one mapping: a Python value of a row column, together with the column's
PostgreSQL type OID, to the JSON-ready value pg-relay would send for it (node-postgres type
parsers followed by ``JSON.stringify``). Snapshot rows and change events go through the same
function, so both paths give the same JSON, as in pg-relay.

It does not own decoding rows from PostgreSQL (binary pgoutput or query results), choosing
columns, or building the surrounding message (see `pgcall.wire.encode`).

Rules, by type (OIDs from the ``pg_type`` catalog, PostgreSQL docs §8 and ``pg_type.dat``):

* int8 → string of digits (node-postgres keeps 64-bit integers as strings; the frontend
  BigInt-parses chat ids); int2 / int4 → number.
* float4 → the number float4's shortest text gives (PostgreSQL ≥ 12 prints the shortest
  decimal that reads back as the same float4, and JavaScript then parses that text):
  ``0.02``, never ``0.019999999552965164``. float8 → number. NaN and ±Infinity → null, as
  ``JSON.stringify`` does.
* timestamptz / timestamp → ``JSON.stringify(Date)``: ISO-8601 in UTC with exactly three
  fractional digits and ``Z``; a JavaScript Date holds milliseconds, so microseconds are
  truncated, not rounded. A naive datetime (timestamp without time zone) is taken as UTC.
* uuid → lower-case 8-4-4-4-12. bool → true/false. text, varchar, name, char, bpchar → string.
* bytea → base64 (pg-relay's change events do this; no state table has bytea).
* arrays of the types above (pgcall's own tables have text[]) → a JSON array of their
  elements, each encoded as above.
* None → null; any other type → ``str(value)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
import struct
import uuid
from collections.abc import Mapping, Sequence

BOOL_OID = 16
BYTEA_OID = 17
CHAR_OID = 18
NAME_OID = 19
INT8_OID = 20
INT2_OID = 21
INT4_OID = 23
TEXT_OID = 25
FLOAT4_OID = 700
FLOAT8_OID = 701
BPCHAR_OID = 1042
VARCHAR_OID = 1043
TIMESTAMP_OID = 1114
TIMESTAMPTZ_OID = 1184
UUID_OID = 2950

_TEXT_OIDS = frozenset({TEXT_OID, VARCHAR_OID, NAME_OID, CHAR_OID, BPCHAR_OID})
_FLOAT4 = struct.Struct("<f")


def _to_float4(x: float) -> float:
    """`x` rounded to the nearest IEEE single, as a Python float; ±inf when out of range."""
    try:
        return _FLOAT4.unpack(_FLOAT4.pack(x))[0]
    except OverflowError:  # struct refuses finite doubles beyond float32's range
        return math.copysign(math.inf, x)


@functools.lru_cache(maxsize=4096)  # pure, and per audio frame on the hot path (rms repeats)
def float4_text(x: float) -> float:
    """The float whose repr is float4's shortest round-trip text of `x`.

    `x` is first rounded to float4 (so 0.012345678901 gives 0.012345679). Then, for 1, 2, …
    significant digits (9 always suffice for a single), the decimal nearest to it is tried,
    and the next one up: at a power of two the float4 rounding interval is wider above than
    below, so a shortest decimal can sit above while the nearest one falls outside below.
    PostgreSQL ≥ 12 (Ryu, ``float4out``) prints that shortest decimal. Non-finite results
    (NaN, or ±inf when `x` is beyond float4's range) are returned unchanged; `encode_value`
    turns them into None.
    """
    f = _to_float4(float(x))
    if not math.isfinite(f) or f == 0.0:
        return f
    for digits in range(1, 10):
        mantissa, exponent = f"{f:.{digits - 1}e}".split("e")
        nearest = int(mantissa.replace(".", ""))
        scale = int(exponent) - (digits - 1)
        away = nearest + (1 if f > 0 else -1)  # one step further from zero
        for k in (nearest, away):
            candidate = float(f"{k}e{scale}")
            if _to_float4(candidate) == f:
                return candidate
    return f  # unreachable: 9 significant digits always round-trip a float4


def _iso_utc(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}."
        f"{value.microsecond // 1000:03d}Z"
    )


def _finite_or_none(x: float) -> float | None:
    # JSON.stringify writes NaN and ±Infinity as null, and -0 as 0.
    return x + 0.0 if math.isfinite(x) else None


# Array types (pg_type.typarray) whose elements are encoded as above: a JSON array.
ARRAY_ELEMENTS = {1009: 25, 1015: 1043, 1016: INT8_OID, 1007: INT4_OID, 1005: INT2_OID,
                  2951: UUID_OID, 1000: BOOL_OID}


def encode_value(type_oid: int, value: object) -> object:
    """The JSON-ready value pg-relay sends for `value` of a column of type `type_oid`."""
    if value is None:
        return None
    if type_oid == INT8_OID:
        return str(int(value))  # type: ignore[call-overload]
    if type_oid in (INT2_OID, INT4_OID):
        return int(value)  # type: ignore[call-overload]
    if type_oid == FLOAT4_OID:
        return _finite_or_none(float4_text(value))
    if type_oid == FLOAT8_OID:
        return _finite_or_none(float(value))  # type: ignore[arg-type]
    if type_oid in (TIMESTAMPTZ_OID, TIMESTAMP_OID) and isinstance(value, dt.datetime):
        return _iso_utc(value)
    if type_oid == UUID_OID:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    if type_oid == BOOL_OID:
        return bool(value)
    if type_oid in _TEXT_OIDS:
        return str(value)
    if type_oid == BYTEA_OID:
        return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]
    element = ARRAY_ELEMENTS.get(type_oid)
    if element is not None and isinstance(value, list | tuple):
        return [encode_value(element, v) for v in value]
    return str(value)


def encode_row(columns: Sequence[tuple[str, int]], row: Mapping[str, object]) -> dict[str, object]:
    """`row` encoded column by column, in `columns` order (table order, §4.4).

    Columns missing from `row` are left out (for example a TOASTed value an UPDATE did not
    change, which pgoutput does not send).
    """
    return {name: encode_value(oid, row[name]) for name, oid in columns if name in row}
