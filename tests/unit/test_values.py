"""Tests for pgcall.pg.values: RowDecoder on golden rows from PostgreSQL 15."""

from __future__ import annotations

import copy
import pickle
import struct
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import postgres
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

from pgcall.pg.pgoutput import (
    Column,
    Delete,
    Insert,
    PgOutputError,
    Relation,
    TupleData,
    Update,
    decode,
)
from pgcall.pg.values import UNCHANGED, RowDecodeError, RowDecoder
from tests import golden

BIG_ID = 9007199254740993
HAPPENED_AT = datetime(2026, 11, 25, 18, 0, 47, 400123, tzinfo=UTC)
REF = uuid.UUID("a0f375ab-fd13-48b1-8ba0-a68734dddfb8")
FLOAT4_055 = struct.unpack(">f", struct.pack(">f", 0.55))[0]  # 0.55 rounded to float4


def golden_events(mode: str, step: str) -> list[object]:
    return [decode(p) for p in golden.load(mode).of_step(step)]


def relation_of(mode: str, name: str) -> Relation:
    for event in golden_events(mode, "truncate"):
        if isinstance(event, Relation) and event.name == name:
            return event
    raise AssertionError(f"no Relation for {name}")


def expected_item(mode: str, label: str) -> dict[str, object]:
    return {
        "id": BIG_ID,
        "label": label,
        "small": -7,
        "medium": 123456,
        "ratio": 0.1,
        # Binary float4 is the float4 itself; text is its shortest text form.
        "score": FLOAT4_055 if mode == "binary" else 0.55,
        "flag": True,
        "happened_at": HAPPENED_AT,
        "ref": REF,
        # An enum is unknown to psycopg: the raw text, as str or bytes.
        "feeling": b"happy" if mode == "binary" else "happy",
        "payload": golden.payload_bytes(),
    }


def check_types(row: dict[str, object]) -> None:
    for name in ("id", "small", "medium"):
        assert type(row[name]) is int
    for name in ("ratio", "score"):
        assert type(row[name]) is float
    assert type(row["label"]) is str
    assert type(row["flag"]) is bool
    assert isinstance(row["ref"], uuid.UUID)
    happened_at = row["happened_at"]
    assert isinstance(happened_at, datetime)
    assert happened_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("mode", golden.MODES)
def test_golden_insert(mode: str) -> None:
    events = golden_events(mode, "insert_items")
    decoder = RowDecoder(relation_of(mode, "golden_items"))
    full_row, null_row = (e for e in events if isinstance(e, Insert))
    values = decoder.decode(full_row.new)
    assert values == expected_item(mode, "héllo ✓")
    assert list(values) == [c.name for c in decoder.relation.columns]  # column order
    check_types(values)
    assert decoder.decode(null_row.new) == {"id": 2} | {name: None for name in list(values)[1:]}


def test_binary_bytea_is_handed_on_without_copy() -> None:
    insert = golden_events("binary", "insert_items")[3]
    assert isinstance(insert, Insert)
    values = RowDecoder(relation_of("binary", "golden_items")).decode(insert.new)
    assert values["payload"] is insert.new.values[-1]
    assert isinstance(values["payload"], memoryview)


def test_text_bytea_is_unescaped() -> None:
    insert = golden_events("text", "insert_items")[3]
    assert isinstance(insert, Insert)
    values = RowDecoder(relation_of("text", "golden_items")).decode(insert.new)
    assert type(values["payload"]) is bytes
    assert values["payload"] == golden.payload_bytes()


@pytest.mark.parametrize("mode", golden.MODES)
def test_golden_unchanged_toast(mode: str) -> None:
    (update,) = (e for e in golden_events(mode, "update_unchanged_toast") if isinstance(e, Update))
    values = RowDecoder(relation_of(mode, "golden_items")).decode(update.new)
    assert values == expected_item(mode, "changed") | {"payload": UNCHANGED}
    assert values["payload"] is UNCHANGED


@pytest.mark.parametrize("mode", golden.MODES)
def test_golden_old_rows(mode: str) -> None:
    items = RowDecoder(relation_of(mode, "golden_items"))
    nulls = dict.fromkeys(c.name for c in items.relation.columns[1:])
    (update,) = (e for e in golden_events(mode, "update_key") if isinstance(e, Update))
    assert update.old is not None
    assert items.decode(update.old) == {"id": 2} | nulls
    assert items.decode(update.new) == {"id": 3} | nulls
    (delete,) = (e for e in golden_events(mode, "delete_key") if isinstance(e, Delete))
    assert items.decode(delete.old) == {"id": 3} | nulls

    full = RowDecoder(relation_of(mode, "golden_full"))
    events = golden_events(mode, "full_identity")
    (update,) = (e for e in events if isinstance(e, Update))
    assert update.old is not None
    assert full.decode(update.old) == {"id": 1, "note": "first"}
    assert full.decode(update.new) == {"id": 1, "note": "second"}


# --- hand-built rows -------------------------------------------------------------------


def relation(*type_oids: int) -> Relation:
    columns = tuple(Column(0, f"c{i}", oid, -1) for i, oid in enumerate(type_oids))
    return Relation(1, "public", "t", "d", columns)


def test_unknown_oid_falls_back_to_str_and_bytes() -> None:
    decoder = RowDecoder(relation(999_999, 999_999))
    values = decoder.decode(TupleData(b"tb", (b"caf\xc3\xa9", memoryview(b"raw"))))
    assert values == {"c0": "café", "c1": b"raw"}
    assert type(values["c1"]) is bytes


def test_more_binary_values() -> None:
    decoder = RowDecoder(relation(16, 21, 23, 701, 2950, 25))
    data = (b"\x00", struct.pack(">h", -32768), struct.pack(">i", 2**31 - 1),
            struct.pack(">d", -2.5), bytes(range(16)), "ünïcode".encode())  # fmt: skip
    assert decoder.decode(TupleData(b"bbbbbb", data)) == {
        "c0": False, "c1": -32768, "c2": 2**31 - 1, "c3": -2.5,
        "c4": uuid.UUID(bytes=bytes(range(16))), "c5": "ünïcode",
    }  # fmt: skip


def test_text_timestamptz_in_another_zone_comes_back_in_utc() -> None:
    decoder = RowDecoder(relation(1184))
    value = decoder.decode(TupleData(b"t", (b"2026-11-25 20:00:47.400123+02",)))["c0"]
    assert value == HAPPENED_AT
    assert isinstance(value, datetime) and value.utcoffset() == timedelta(0)


def test_mixed_kinds_in_one_row() -> None:
    decoder = RowDecoder(relation(20, 20, 20, 20))
    row = TupleData(b"tbnu", (b"5", struct.pack(">q", 6), None, None))
    assert decoder.decode(row) == {"c0": 5, "c1": 6, "c2": None, "c3": UNCHANGED}


class CountingAdapters(AdaptersMap):
    lookups = 0

    def get_loader(self, oid: int, format: Format) -> type | None:  # type: ignore[override]
        CountingAdapters.lookups += 1
        return super().get_loader(oid, format)


def test_loaders_are_looked_up_once_per_relation() -> None:
    insert = golden_events("binary", "insert_items")[3]
    assert isinstance(insert, Insert)
    CountingAdapters.lookups = 0
    decoder = RowDecoder(relation_of("binary", "golden_items"), CountingAdapters(postgres.adapters))
    after_build = CountingAdapters.lookups
    assert after_build > 0
    for _ in range(20):
        assert decoder.decode(insert.new)["id"] == BIG_ID
    assert CountingAdapters.lookups == after_build


@pytest.mark.parametrize(
    ("oids", "row"),
    [
        ((20,), TupleData(b"b", (b"\x01",))),  # int8 of one byte
        ((21,), TupleData(b"b", (bytes(4),))),  # int2 of four bytes
        ((1184,), TupleData(b"b", (bytes(7),))),
        ((2950,), TupleData(b"b", (bytes(15),))),
        ((2950,), TupleData(b"t", (b"not-a-uuid",))),
        ((20,), TupleData(b"t", (b"12x",))),
        ((25,), TupleData(b"t", (b"\xff",))),  # invalid UTF-8
        ((999_999,), TupleData(b"t", (b"\xff",))),
        ((1184,), TupleData(b"t", (b"yesterday-ish",))),
        ((20,), TupleData(b"x", (None,))),  # unknown kind
        ((20, 20), TupleData(b"n", (None,))),  # fewer columns than the Relation
    ],
)
def test_bad_values_raise_row_decode_error(oids: tuple[int, ...], row: TupleData) -> None:
    with pytest.raises(RowDecodeError):
        RowDecoder(relation(*oids)).decode(row)


def test_row_decode_error_is_a_pgoutput_error() -> None:
    assert issubclass(RowDecodeError, PgOutputError)
    assert issubclass(RowDecodeError, ValueError)


def test_unchanged_is_a_singleton() -> None:
    assert repr(UNCHANGED) == "UNCHANGED"
    assert copy.deepcopy(UNCHANGED) is UNCHANGED
    assert pickle.loads(pickle.dumps(UNCHANGED)) is UNCHANGED
    assert UNCHANGED is not None and UNCHANGED != b""
