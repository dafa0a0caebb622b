"""Column values of decoded pgoutput rows -> Python objects (adapter layer).

Owns: `RowDecoder`, which turns one `TupleData` of a known `Relation` into a
``{column name: value}`` dict using psycopg's loaders chosen by type OID — text
loaders for kind ``t``, binary loaders for kind ``b`` — plus `UNCHANGED`, the
marker for an unchanged TOASTed value (kind ``u``), and `RowDecodeError`.

Does not own: parsing the pgoutput message (`pgcall.pg.pgoutput`, pure), caching
Relations, or deciding which values a client sees (JSON encoding of values is the
pg-relay protocol's business). This module imports psycopg, so it is not pure; it
does no I/O.

Choices:
* A binary ``bytea`` value is handed on as the `memoryview` slice of the message
  itself: media frames are forwarded unchanged, so a copy would be wasted.
* Unknown type OIDs (enums, domains, extension types) fall back to `str` for text
  and `bytes` for binary, the raw form the server sent.
* Loaders are looked up once per Relation, when the decoder is built; decoding a
  row is one loop over the columns.
* Loaders use no connection, so timestamptz values come back in UTC and text
  dates are read in the ISO DateStyle (the server default).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import psycopg
from psycopg import postgres
from psycopg.adapt import AdaptersMap, Transformer
from psycopg.pq import Format

from pgcall.pg.pgoutput import PgOutputError, Relation, TupleData

__all__ = ["UNCHANGED", "RowDecodeError", "RowDecoder"]

_BYTEA_OID = 17

# Byte sizes of fixed-length binary send formats (pg_type.typlen). psycopg's C loaders
# do not check the length of what they are given, so a wrong-sized value would come
# out as a silently wrong number; we reject it instead.
_BINARY_SIZES = {
    16: 1,  # bool
    20: 8,  # int8
    21: 2,  # int2
    23: 4,  # int4
    26: 4,  # oid
    700: 4,  # float4
    701: 8,  # float8
    1082: 4,  # date
    1083: 8,  # time
    1114: 8,  # timestamp
    1184: 8,  # timestamptz
    2950: 16,  # uuid
}

_KIND_NULL, _KIND_UNCHANGED, _KIND_TEXT, _KIND_BINARY = b"nutb"

Load = Callable[[memoryview], object]


class _Unchanged:
    """Type of `UNCHANGED`; one instance only."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
"""Value of a column sent as ``u``: a TOASTed value the change did not touch (the
server does not resend it; the consumer keeps what it had)."""


class RowDecodeError(PgOutputError):
    """A column value that its type's loader cannot read, or a row that does not
    match its Relation."""


def _text_fallback(data: memoryview) -> str:
    return str(data, "utf-8")


def _sized(load: Load, size: int) -> Load:
    def load_checked(data: memoryview) -> object:
        if len(data) != size:
            raise RowDecodeError(f"binary value of {len(data)} bytes, expected {size}")
        return load(data)

    return load_checked


def _as_is(data: memoryview) -> memoryview:
    return data


class RowDecoder:
    """Decodes the rows of one `Relation`; build a new one when the Relation changes."""

    __slots__ = ("_columns", "relation")

    def __init__(self, relation: Relation, adapters: AdaptersMap | None = None) -> None:
        adapters = postgres.adapters if adapters is None else adapters
        transformer = Transformer(adapters)
        self.relation = relation
        columns: list[tuple[str, Load, Load]] = []
        for column in relation.columns:
            oid = column.type_oid
            if adapters.get_loader(oid, Format.TEXT) is None:
                load_text: Load = _text_fallback
            else:
                load_text = transformer.get_loader(oid, Format.TEXT).load
            if oid == _BYTEA_OID:
                load_binary: Load = _as_is
            elif adapters.get_loader(oid, Format.BINARY) is None:
                load_binary = bytes
            else:
                load_binary = transformer.get_loader(oid, Format.BINARY).load
                if oid in _BINARY_SIZES:
                    load_binary = _sized(load_binary, _BINARY_SIZES[oid])
            columns.append((column.name, load_text, load_binary))
        self._columns = tuple(columns)

    def decode(self, tup: TupleData) -> dict[str, object]:
        """Column name -> value: None for ``n``, `UNCHANGED` for ``u``, else the loaded
        value. Raises `RowDecodeError` if a value cannot be loaded."""
        if len(tup.kinds) != len(self._columns) or len(tup.values) != len(self._columns):
            raise RowDecodeError(
                f"row of {len(tup.kinds)} columns for relation {self.relation.name!r} "
                f"of {len(self._columns)}"
            )
        row: dict[str, object] = {}
        name = ""
        try:
            for (name, load_text, load_binary), kind, value in zip(
                self._columns, tup.kinds, tup.values, strict=True
            ):
                if kind == _KIND_BINARY:
                    row[name] = load_binary(value)  # type: ignore[arg-type]
                elif kind == _KIND_TEXT:
                    row[name] = load_text(value)  # type: ignore[arg-type]
                elif kind == _KIND_NULL:
                    row[name] = None
                elif kind == _KIND_UNCHANGED:
                    row[name] = UNCHANGED
                else:
                    raise RowDecodeError(f"unknown tuple data kind {kind:#04x}")
        except RowDecodeError as exc:
            raise RowDecodeError(f"column {name!r}: {exc}") from None
        except (psycopg.Error, ValueError, ArithmeticError, LookupError, struct.error) as exc:
            raise RowDecodeError(f"column {name!r}: {type(exc).__name__}: {exc}") from exc
        return row
