"""Property tests: the decoders raise only their documented errors, whatever the input.

Inputs are random bytes, random bytes behind each valid tag, and truncations,
single-byte mutations and extensions of the golden messages captured from
PostgreSQL 15.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pgcall.pg.pgoutput import (
    Delete,
    Insert,
    PgOutputError,
    Relation,
    TupleData,
    Update,
    decode,
)
from pgcall.pg.values import RowDecodeError, RowDecoder
from pgcall.pg.walproto import (
    PrimaryKeepalive,
    ReplicationProtocolError,
    XLogData,
    parse_copy_data,
)
from tests import golden

FRAMES = golden.all_frames()
PAYLOADS = golden.all_payloads()
PGOUTPUT_TAGS = [bytes([tag]) for tag in b"BCORYIUDTM"]


def _relations() -> dict[int, Relation]:
    relations: dict[int, Relation] = {}
    for payload in PAYLOADS:
        event = decode(payload)
        if isinstance(event, Relation):
            relations[event.oid] = event
    return relations


DECODERS = {oid: RowDecoder(rel) for oid, rel in _relations().items()}
CHANGES = [p for p in PAYLOADS if p[:1] in (b"I", b"U", b"D")]


def mutate(data: bytes, index: int, byte: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([byte]) + data[index + 1 :]


def decode_or_error(data: bytes) -> object | None:
    """decode(), allowing only PgOutputError."""
    try:
        return decode(data)
    except PgOutputError:
        return None


def rows_or_error(event: object) -> None:
    """RowDecoder.decode on every tuple of a change, allowing only RowDecodeError."""
    tuples: list[TupleData] = []
    oid = 0
    if isinstance(event, Insert):
        tuples, oid = [event.new], event.relation_oid
    elif isinstance(event, Update):
        tuples, oid = [t for t in (event.old, event.new) if t is not None], event.relation_oid
    elif isinstance(event, Delete):
        tuples, oid = [event.old], event.relation_oid
    for tup in tuples:
        decoder = DECODERS.get(oid)
        if decoder is None:
            continue  # a mutated relation OID: a real consumer's cache lookup fails first
        try:
            row = decoder.decode(tup)
        except RowDecodeError:
            continue
        assert list(row) == [c.name for c in decoder.relation.columns]


# --- walproto ---------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_parse_copy_data_random_bytes(data: bytes) -> None:
    try:
        parsed = parse_copy_data(data)
    except ReplicationProtocolError:
        return
    assert isinstance(parsed, XLogData | PrimaryKeepalive)


@given(st.sampled_from(FRAMES), st.integers(min_value=0))
def test_parse_copy_data_truncated(frame: bytes, cut: int) -> None:
    cut %= len(frame)
    try:
        parsed = parse_copy_data(frame[:cut])
    except ReplicationProtocolError:
        # Only a frame cut inside its fixed-size header may fail.
        assert frame[:1] == b"k" or cut < 25
        return
    assert isinstance(parsed, XLogData)
    assert parsed.payload == frame[25:cut]


@given(st.sampled_from(FRAMES), st.integers(min_value=0), st.integers(0, 255))
def test_parse_copy_data_mutated(frame: bytes, index: int, byte: int) -> None:
    try:
        parsed = parse_copy_data(mutate(frame, index, byte))
    except ReplicationProtocolError:
        return
    assert isinstance(parsed, XLogData | PrimaryKeepalive)


@given(st.sampled_from([f for f in FRAMES if f[:1] == b"k"]), st.binary(min_size=1, max_size=8))
def test_keepalive_with_trailing_bytes(frame: bytes, extra: bytes) -> None:
    assert isinstance(parse_copy_data(frame), PrimaryKeepalive)
    try:
        parse_copy_data(frame + extra)
    except ReplicationProtocolError:
        return
    raise AssertionError("trailing bytes after a keepalive were accepted")


# --- pgoutput and values ----------------------------------------------------------------


@given(st.binary(max_size=64))
def test_decode_random_bytes(data: bytes) -> None:
    rows_or_error(decode_or_error(data))


@given(st.sampled_from(PGOUTPUT_TAGS), st.binary(max_size=64))
def test_decode_random_bytes_behind_a_valid_tag(tag: bytes, body: bytes) -> None:
    rows_or_error(decode_or_error(tag + body))


@given(st.sampled_from(PAYLOADS), st.integers(min_value=0))
def test_decode_truncated(payload: bytes, cut: int) -> None:
    # Every pgoutput message is self-delimiting, so any strict prefix is malformed.
    try:
        decode(payload[: cut % len(payload)])
    except PgOutputError:
        return
    raise AssertionError("a truncated message was accepted")


@given(st.sampled_from(PAYLOADS), st.binary(min_size=1, max_size=8))
def test_decode_with_trailing_bytes(payload: bytes, extra: bytes) -> None:
    assert decode_or_error(payload) is not None
    try:
        decode(payload + extra)
    except PgOutputError:
        return
    raise AssertionError("trailing bytes were accepted")


@given(st.sampled_from(PAYLOADS), st.integers(min_value=0), st.integers(0, 255))
def test_decode_mutated(payload: bytes, index: int, byte: int) -> None:
    rows_or_error(decode_or_error(mutate(payload, index, byte)))


# Mostly the first 64 bytes: the header and the first columns, where the structure is.
NEAR_START = st.one_of(st.integers(0, 63), st.integers(min_value=0))


@given(st.sampled_from(CHANGES), NEAR_START, st.integers(0, 255))
def test_row_decoder_on_mutated_changes(payload: bytes, index: int, byte: int) -> None:
    # Mutations here land in the tuple data more often than in test_decode_mutated.
    rows_or_error(decode_or_error(mutate(payload, index, byte)))
