"""Tests for pgcall.pg.walproto: LSNs, XLogData/keepalive parsing, status updates, time."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest

from pgcall.pg.walproto import (
    PG_EPOCH_OFFSET_US,
    Lsn,
    PrimaryKeepalive,
    ReplicationProtocolError,
    XLogData,
    keepalive_fields,
    parse_copy_data,
    pg_time_us,
    standby_status_update,
    unix_time,
    xlogdata_payload,
)
from tests import golden

# --- Lsn -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0x16B3748, "0/16B3748"),
        (0, "0/0"),
        ((0x1 << 32) | 0xA, "1/A"),
        ((0xFFFFFFFF << 32) | 0xFFFFFFFF, "FFFFFFFF/FFFFFFFF"),
        ((0xAB << 32) | 0x0000FF00, "AB/FF00"),
    ],
)
def test_lsn_prints_like_postgresql_and_parses_back(value: int, text: str) -> None:
    lsn = Lsn(value)
    assert str(lsn) == text
    assert f"{lsn}" == text
    assert Lsn.parse(text) == value
    assert isinstance(Lsn.parse(text), Lsn)
    assert Lsn.parse(text.lower()) == value


def test_lsn_is_an_int() -> None:
    lsn = Lsn.parse("0/16B3748")
    assert lsn + 1 == 0x16B3749
    assert lsn < Lsn.parse("1/0")
    assert {lsn: 1}[0x16B3748] == 1
    assert f"{lsn:x}" == "16b3748"
    assert repr(lsn) == "Lsn('0/16B3748')"


def test_lsn_parse_accepts_zero_padding() -> None:
    assert Lsn.parse("00000000/016B3748") == 0x16B3748


@pytest.mark.parametrize(
    "garbage",
    ["", "/", "0/", "/0", "0/0/0", "16B3748", "G/0", "0/-1", " 0/1", "0/1 ", "123456789/0",
     "0/123456789", "0x1/0", "٣/0"],
)  # fmt: skip
def test_lsn_parse_rejects_garbage(garbage: str) -> None:
    with pytest.raises(ReplicationProtocolError):
        Lsn.parse(garbage)


def test_lsn_parse_rejects_non_strings() -> None:
    with pytest.raises(ReplicationProtocolError):
        Lsn.parse(b"0/1")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_lsn_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Lsn(value)


def test_replication_protocol_error_is_a_value_error() -> None:
    assert issubclass(ReplicationProtocolError, ValueError)


# --- time ------------------------------------------------------------------------------


def test_epoch_offset_is_2000_01_01() -> None:
    delta = datetime(2000, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    assert delta.total_seconds() * 1_000_000 == PG_EPOCH_OFFSET_US


def test_time_conversions() -> None:
    moment = datetime(2026, 11, 25, 18, 0, 47, 400123, tzinfo=UTC)
    expected = (moment - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert pg_time_us(moment.timestamp()) == expected
    assert unix_time(expected) == pytest.approx(moment.timestamp(), abs=1e-6)
    assert pg_time_us(unix_time(expected)) == expected
    assert pg_time_us(946_684_800.0) == 0
    assert unix_time(0) == 946_684_800.0


# --- parse_copy_data: hand-built messages ----------------------------------------------


def test_xlogdata_fields_and_zero_copy_payload() -> None:
    frame = bytearray(b"w" + struct.pack(">QQq", 0x1_0000_0002, 0x3_0000_0004, -5) + b"BODY")
    parsed = parse_copy_data(frame)
    assert parsed == XLogData(
        wal_start=Lsn(0x1_0000_0002), wal_end=Lsn(0x3_0000_0004), send_time=-5, payload=b"BODY"
    )
    assert isinstance(parsed.wal_start, Lsn)
    assert isinstance(parsed.payload, memoryview)
    frame[-1] = ord("X")  # the payload is a view on the caller's buffer, not a copy
    assert bytes(parsed.payload) == b"BODX"


def test_xlogdata_with_empty_payload() -> None:
    parsed = parse_copy_data(b"w" + bytes(24))
    assert isinstance(parsed, XLogData)
    assert parsed.payload == b""


def test_xlogdata_accepts_a_memoryview_slice() -> None:
    buffer = b"junk" + b"w" + struct.pack(">QQq", 1, 2, 3) + b"xyz"
    parsed = parse_copy_data(memoryview(buffer)[4:])
    assert parsed == XLogData(Lsn(1), Lsn(2), 3, b"xyz")


def test_xlogdata_payload_is_the_parsed_payload_without_a_copy() -> None:
    frame = bytearray(b"w" + struct.pack(">QQq", 1, 2, 3) + b"BODY")
    payload = xlogdata_payload(frame)
    assert payload == parse_copy_data(frame).payload == b"BODY"
    frame[-1] = ord("X")
    assert bytes(payload) == b"BODX"
    assert xlogdata_payload(b"w" + bytes(24)) == b""


@pytest.mark.parametrize("frame", [b"w", b"w" + bytes(23)])
def test_xlogdata_payload_of_a_cut_header(frame: bytes) -> None:
    with pytest.raises(ReplicationProtocolError, match="XLogData too short"):
        xlogdata_payload(frame)


@pytest.mark.parametrize("reply", [0, 1, 7])
def test_keepalive_fields_are_the_parsed_ones(reply: int) -> None:
    frame = b"k" + struct.pack(">Qq", 0x1_0016_B374, 123) + bytes([reply])
    parsed = parse_copy_data(frame)
    assert isinstance(parsed, PrimaryKeepalive)
    wal_end, reply_requested = keepalive_fields(frame)
    assert (wal_end, reply_requested) == (parsed.wal_end, parsed.reply_requested)
    assert isinstance(wal_end, Lsn) and reply_requested is (reply != 0)
    for cut in (frame[:-1], frame + b"\x00"):
        with pytest.raises(ReplicationProtocolError, match="keepalive of"):
            keepalive_fields(cut)


@pytest.mark.parametrize("reply", [0, 1])
def test_keepalive(reply: int) -> None:
    frame = b"k" + struct.pack(">Qq", 0x16B3748, 123_456_789) + bytes([reply])
    assert parse_copy_data(frame) == PrimaryKeepalive(Lsn(0x16B3748), 123_456_789, bool(reply))


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"w",
        b"w" + bytes(23),  # one byte short of the XLogData header
        b"k" + bytes(16),  # keepalive without its reply byte
        b"k" + bytes(18),  # keepalive with a trailing byte
        b"r" + bytes(33),  # our own status update is not a server message
        b"x" + bytes(30),
    ],
)
def test_malformed_copy_data(frame: bytes) -> None:
    with pytest.raises(ReplicationProtocolError):
        parse_copy_data(frame)


# --- standby status update -------------------------------------------------------------


def test_standby_status_update_layout() -> None:
    message = standby_status_update(
        Lsn(0x1_0000_0010), Lsn(0x20), Lsn.parse("0/30"), now_us=-2, reply_requested=True
    )
    expected = (
        b"r"
        + (0x1_0000_0010).to_bytes(8, "big")
        + (0x20).to_bytes(8, "big")
        + (0x30).to_bytes(8, "big")
        + (-2).to_bytes(8, "big", signed=True)
        + b"\x01"
    )
    assert message == expected
    assert standby_status_update(Lsn(1), Lsn(1), Lsn(1), 5)[-1] == 0


@pytest.mark.parametrize("bad", [-1, 1 << 64])
def test_standby_status_update_rejects_out_of_range_lsn(bad: int) -> None:
    for position in range(3):
        lsns = [Lsn(0)] * 3
        lsns[position] = bad  # type: ignore[call-overload]
        with pytest.raises(ValueError):
            standby_status_update(*lsns, now_us=0)


@pytest.mark.parametrize("bad", [-(1 << 63) - 1, 1 << 63])
def test_standby_status_update_rejects_out_of_range_time(bad: int) -> None:
    with pytest.raises(ValueError):
        standby_status_update(Lsn(0), Lsn(0), Lsn(0), bad)


# --- golden captures from a real PostgreSQL 15 -----------------------------------------


@pytest.mark.parametrize("mode", golden.MODES)
def test_golden_frames(mode: str) -> None:
    capture = golden.load(mode)
    first_step = min(s.lsn_before for s in capture.steps.values())
    keepalives = xlogdata = 0
    for message in capture.messages:
        frame = message.copy_data
        parsed = parse_copy_data(frame)
        # Every message was sent after START_REPLICATION and before the last was read.
        assert capture.stream_started <= parsed.send_time <= capture.stream_finished
        if message.step is None:
            keepalives += 1
            assert isinstance(parsed, PrimaryKeepalive)
            assert parsed.wal_end <= first_step  # sent before any workload was decoded
            assert parsed.reply_requested is False
            with pytest.raises(ReplicationProtocolError):
                parse_copy_data(frame + b"\x00")
        else:
            xlogdata += 1
            step = capture.steps[message.step]
            assert isinstance(parsed, XLogData)
            assert parsed.payload == frame[25:]
            assert parsed.payload.obj is frame
            # The walsender sends the change's LSN, or 0 for schema messages (Relation,
            # Type), which belong to no WAL record.
            assert parsed.wal_start == parsed.wal_end
            assert parsed.wal_start == 0 or step.lsn_before <= parsed.wal_start <= step.lsn_after
            # Trailing bytes in an XLogData are payload: no length field to check.
            assert parse_copy_data(frame + b"!").payload == frame[25:] + b"!"
    assert keepalives >= 1
    assert xlogdata > 30
    assert {m.step for m in capture.messages} - {None} == set(capture.steps)
