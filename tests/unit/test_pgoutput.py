"""Tests for pgcall.pg.pgoutput: golden messages from PostgreSQL 15, and malformed input.

Expected objects are built from workload.sql (values, names, the enum, options) and
from what PostgreSQL reported around each step (LSN, xid and clock bounds).
"""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from pgcall.pg.pgoutput import (
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    Message,
    Origin,
    PgOutputError,
    Relation,
    RelationCache,
    Truncate,
    TupleData,
    TypeInfo,
    Update,
    decode,
)
from pgcall.pg.walproto import Lsn
from tests import golden

# --- what workload.sql wrote -----------------------------------------------------------

BIG_ID = 9007199254740993  # 2**53 + 1: not representable as a double
HAPPENED_AT = datetime(2026, 11, 25, 18, 0, 47, 400123, tzinfo=UTC)
REF = uuid.UUID("a0f375ab-fd13-48b1-8ba0-a68734dddfb8")
ORIGIN_TIME = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def pg_us(moment: datetime) -> int:
    return (moment - PG_EPOCH) // timedelta(microseconds=1)


def items_relation(capture: golden.Capture) -> Relation:
    # (flags, name, type OID); bit 1 of flags marks the replica identity (primary key).
    columns = [
        (1, "id", 20), (0, "label", 25), (0, "small", 21), (0, "medium", 23),
        (0, "ratio", 701), (0, "score", 700), (0, "flag", 16), (0, "happened_at", 1184),
        (0, "ref", 2950), (0, "feeling", capture.oids["mood"]), (0, "payload", 17),
    ]  # fmt: skip
    return Relation(
        oid=capture.oids["golden_items"],
        namespace="public",
        name="golden_items",
        replica_identity="d",
        columns=tuple(Column(flags, name, oid, -1) for flags, name, oid in columns),
    )


def full_relation(capture: golden.Capture) -> Relation:
    # REPLICA IDENTITY FULL: every column is part of the identity.
    return Relation(
        oid=capture.oids["golden_full"],
        namespace="public",
        name="golden_full",
        replica_identity="f",
        columns=(Column(1, "id", 23, -1), Column(1, "note", 25, -1)),
    )


def item_values(mode: str, label: str) -> list[bytes]:
    """Row 1 of golden_items as pgoutput sends it: binary send format or text output."""
    if mode == "binary":
        return [
            struct.pack(">q", BIG_ID), label.encode(), struct.pack(">h", -7),
            struct.pack(">i", 123456), struct.pack(">d", 0.1), struct.pack(">f", 0.55), b"\x01",
            struct.pack(">q", pg_us(HAPPENED_AT)), REF.bytes, b"happy", golden.payload_bytes(),
        ]  # fmt: skip
    return [
        str(BIG_ID).encode(), label.encode(), b"-7", b"123456", b"0.1", b"0.55", b"t",
        b"2026-11-25 18:00:47.400123+00", str(REF).encode(), b"happy",
        b"\\x" + golden.payload_bytes().hex().encode(),
    ]  # fmt: skip


def row(mode: str, values: list[bytes | None]) -> TupleData:
    """A TupleData of the given values: None is a null, UNCHANGED_TOAST a 'u'."""
    kind = "b" if mode == "binary" else "t"
    kinds = "".join("n" if v is None else "u" if v is UNCHANGED_TOAST else kind for v in values)
    return TupleData(kinds.encode(), tuple(None if v is UNCHANGED_TOAST else v for v in values))


UNCHANGED_TOAST = b"<unchanged>"


def int_value(mode: str, fmt: str, value: int) -> bytes:
    return struct.pack(fmt, value) if mode == "binary" else str(value).encode()


def key_only(mode: str, key: int) -> TupleData:
    return row(mode, [int_value(mode, ">q", key)] + [None] * 10)


def full_row(mode: str, key: int, note: str) -> TupleData:
    return row(mode, [int_value(mode, ">i", key), note.encode()])


class Between:
    """Compares equal to any int in [low, high]: LSNs and times are only bounded."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def __repr__(self) -> str:
        return f"Between({self.low}, {self.high})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and self.low <= other <= self.high

    def __hash__(self) -> int:
        return hash((self.low, self.high))


def expected_events(capture: golden.Capture, name: str) -> list[object]:
    mode = capture.mode
    step = capture.steps[name]
    lsn = Between(step.lsn_before, step.lsn_after)
    when = Between(step.time_before, step.time_after)
    items, full = items_relation(capture), full_relation(capture)
    mood = TypeInfo(capture.oids["mood"], "public", "mood")
    middle: list[object]
    if name == "insert_items":
        middle = [
            mood,
            items,
            Insert(items.oid, row(mode, item_values(mode, "héllo ✓"))),
            Insert(items.oid, key_only(mode, 2)),
        ]
    elif name == "update_unchanged_toast":
        new = [*item_values(mode, "changed")[:-1], UNCHANGED_TOAST]
        middle = [Update(items.oid, None, None, row(mode, new))]
    elif name == "update_key":
        middle = [Update(items.oid, key_only(mode, 2), "K", key_only(mode, 3))]
    elif name == "delete_key":
        middle = [Delete(items.oid, key_only(mode, 3), "K")]
    elif name == "full_identity":
        middle = [
            full,
            Insert(full.oid, full_row(mode, 1, "first")),
            Update(full.oid, full_row(mode, 1, "first"), "O", full_row(mode, 1, "second")),
            Delete(full.oid, full_row(mode, 1, "second"), "O"),
        ]
    elif name == "message":
        middle = [Message(True, lsn, "golden", b"hello, decoder")]
    elif name == "origin":
        # A replayed transaction reports the origin's commit time, set in the SQL.
        when = pg_us(ORIGIN_TIME)  # type: ignore[assignment]
        middle = [
            Origin(Lsn.parse("0/ABCDEF"), "golden_origin"),
            Insert(full.oid, full_row(mode, 2, "from elsewhere")),
        ]
    elif name == "truncate":
        # The TRUNCATE invalidates the cached schema, so it is sent again first.
        # Options: 2 = RESTART IDENTITY.
        middle = [mood, items, full, Truncate(2, (items.oid, full.oid))]
    else:
        raise AssertionError(f"no expectation for step {name!r}")
    begin = Begin(final_lsn=lsn, commit_time=when, xid=step.next_xid)  # type: ignore[arg-type]
    commit = Commit(flags=0, commit_lsn=lsn, end_lsn=lsn, commit_time=when)  # type: ignore[arg-type]
    return [begin, *middle, commit]


# --- golden ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", golden.MODES)
@pytest.mark.parametrize(
    "step",
    ["insert_items", "update_unchanged_toast", "update_key", "delete_key", "full_identity",
     "message", "origin", "truncate"],
)  # fmt: skip
def test_golden_step(mode: str, step: str) -> None:
    capture = golden.load(mode)
    events = [decode(payload) for payload in capture.of_step(step)]
    assert events == expected_events(capture, step)
    begin, commit = events[0], events[-1]
    assert isinstance(begin, Begin) and isinstance(commit, Commit)
    assert begin.final_lsn == commit.commit_lsn < commit.end_lsn
    assert begin.commit_time == commit.commit_time
    assert isinstance(begin.final_lsn, Lsn) and isinstance(commit.end_lsn, Lsn)


def test_golden_covers_every_step() -> None:
    for mode in golden.MODES:
        capture = golden.load(mode)
        assert set(capture.steps) == {m.step for m in capture.messages} - {None}


@pytest.mark.parametrize("mode", golden.MODES)
def test_golden_values_are_zero_copy_views_of_the_input(mode: str) -> None:
    payload = bytearray(golden.load(mode).of_step("insert_items")[3])
    event = decode(payload)
    assert isinstance(event, Insert)
    last = event.new.values[-1]
    assert isinstance(last, memoryview)
    assert last.obj is payload
    payload[-1] ^= 0xFF  # the value sees a change of the buffer: it was not copied
    assert last[-1] == payload[-1]


def test_golden_payload_is_30_kb() -> None:
    assert len(golden.payload_bytes()) == 30_000
    capture = golden.load("binary")
    insert = decode(capture.of_step("insert_items")[3])
    assert isinstance(insert, Insert)
    assert insert.new.values[-1] == golden.payload_bytes()


@pytest.mark.parametrize("payload", golden.all_payloads(), ids=lambda p: chr(p[0]))
def test_golden_with_trailing_bytes_raises(payload: bytes) -> None:
    decode(payload)  # whole input decodes
    with pytest.raises(PgOutputError):
        decode(payload + b"\x00")
    with pytest.raises(PgOutputError):
        decode(payload[:-1])


# --- hand-built messages ---------------------------------------------------------------


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def test_relation_with_pg_catalog_namespace_and_typmod() -> None:
    message = (
        b"R" + struct.pack(">I", 42) + cstr("") + cstr("t") + b"i" + struct.pack(">h", 1)
        + b"\x01" + cstr("name") + struct.pack(">Ii", 1043, 36)
    )  # fmt: skip
    assert decode(message) == Relation(42, "", "t", "i", (Column(1, "name", 1043, 36),))


def test_non_transactional_message_and_empty_tuple() -> None:
    message = b"M\x00" + struct.pack(">Q", 7) + cstr("p") + struct.pack(">i", 0)
    assert decode(message) == Message(False, Lsn(7), "p", b"")
    insert = b"I" + struct.pack(">I", 9) + b"N" + struct.pack(">h", 0)
    assert decode(insert) == Insert(9, TupleData(b"", ()))


def test_long_message_prefix() -> None:
    prefix = "p" * 1000  # longer than any search window of the string reader
    message = b"M\x01" + struct.pack(">Q", 7) + cstr(prefix) + struct.pack(">i", 2) + b"hi"
    assert decode(message) == Message(True, Lsn(7), prefix, b"hi")


def test_accepts_memoryview_of_other_format() -> None:
    begin = b"B" + struct.pack(">QqI", 1, 2, 3)
    assert decode(memoryview(begin).cast("c")) == Begin(Lsn(1), 2, 3)


TUPLE_1 = struct.pack(">h", 1) + b"t" + struct.pack(">i", 1) + b"x"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"", "empty"),
        (b"S" + bytes(4), "unknown"),  # Stream Start: proto_version 2 only
        (b"?", "unknown"),
        (b"B" + bytes(19), "truncated"),
        (b"C" + bytes(24), "truncated"),
        (b"O" + bytes(8) + b"no terminator", "unterminated"),
        (b"O" + bytes(8) + b"\xff\xfe\x00", "UTF-8"),
        (b"Y" + bytes(4) + cstr("public") + b"\xc3\x00", "UTF-8"),
        (b"R" + bytes(4) + cstr("") + cstr("t") + b"x" + bytes(2), "replica identity"),
        (b"R" + bytes(4) + cstr("") + cstr("t") + b"d" + struct.pack(">h", -1), "negative"),
        (b"R" + bytes(4) + cstr("") + cstr("t") + b"d" + struct.pack(">h", 1), "truncated"),
        (b"I" + bytes(4) + b"K" + TUPLE_1, "expected 'N'"),
        (b"I" + bytes(4) + b"N" + struct.pack(">h", 1) + b"x", "kind"),
        (b"I" + bytes(4) + b"N" + struct.pack(">h", -1), "negative"),
        (b"I" + bytes(4) + b"N" + struct.pack(">h", 1) + b"t" + struct.pack(">i", 2) + b"x",
         "length"),
        (b"I" + bytes(4) + b"N" + struct.pack(">h", 1) + b"b" + struct.pack(">i", -1),
         "length"),
        (b"I" + bytes(4) + b"N" + struct.pack(">h", 2) + b"n", "truncated"),
        (b"U" + bytes(4) + b"X" + TUPLE_1, "expected 'N'"),
        (b"U" + bytes(4) + b"K" + TUPLE_1 + b"O" + TUPLE_1, "expected 'N'"),
        (b"U" + bytes(4) + b"O" + TUPLE_1, "truncated"),
        (b"D" + bytes(4) + b"N" + TUPLE_1, "expected 'K' or 'O'"),
        (b"T" + struct.pack(">IB", 2, 0) + bytes(4), "Truncate of 2"),
        (b"T" + struct.pack(">IB", 0xFFFFFFFF, 0), "Truncate of"),
        (b"M\x01" + bytes(8) + cstr("p") + struct.pack(">i", -1), "negative"),
        (b"M\x01" + bytes(8) + cstr("p") + struct.pack(">i", 5) + b"abc", "trailing"),
    ],
)  # fmt: skip
def test_malformed(message: bytes, reason: str) -> None:
    with pytest.raises(PgOutputError, match=reason):
        decode(message)


def test_pgoutput_error_is_a_value_error() -> None:
    assert issubclass(PgOutputError, ValueError)


# --- RelationCache ---------------------------------------------------------------------


def test_relation_cache() -> None:
    capture = golden.load("binary")
    items, full = items_relation(capture), full_relation(capture)
    cache = RelationCache()
    with pytest.raises(PgOutputError):
        cache.get(items.oid)
    cache.add(items)
    cache.add(full)
    assert cache.get(items.oid) is items
    assert cache.get(full.oid) is full
    assert items.oid in cache and len(cache) == 2
    renamed = attrs.evolve(items, name="renamed")
    cache.add(renamed)  # a later Relation message replaces the earlier one
    assert cache.get(items.oid) is renamed
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(PgOutputError):
        cache.get(full.oid)
