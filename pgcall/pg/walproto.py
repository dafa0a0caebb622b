"""The replication sub-protocol carried inside CopyData messages (pure, sans-IO).

Owns: the LSN type (`Lsn`), parsing of the two server-to-client messages of a
``START_REPLICATION`` stream (XLogData ``w`` and primary keepalive ``k``), building
the standby status update ``r`` that the client sends back, and the conversion
between Unix time and PostgreSQL's 2000-01-01 epoch used by their timestamps.

Does not own: the connection, libpq's CopyData framing (``get_copy_data`` hands us
one whole message), deciding *when* to send feedback (that is the replication
reader's policy), or the contents of the XLogData payload (for logical
replication with pgoutput, see `pgcall.pg.pgoutput`).

Reference: PostgreSQL docs, "Streaming Replication Protocol"
(protocol-replication.html), section on ``START_REPLICATION``.
"""

from __future__ import annotations

import re
import struct

import attrs

__all__ = [
    "PG_EPOCH_OFFSET_US",
    "Lsn",
    "PrimaryKeepalive",
    "ReplicationProtocolError",
    "XLogData",
    "keepalive_fields",
    "parse_copy_data",
    "pg_time_us",
    "standby_status_update",
    "unix_time",
    "xlogdata_payload",
]

# Microseconds between 1970-01-01 and 2000-01-01 (both UTC): PostgreSQL's
# timestamps on the wire count from 2000-01-01 (POSTGRES_EPOCH_JDATE).
PG_EPOCH_OFFSET_US = 946_684_800 * 1_000_000

_U64_MAX = (1 << 64) - 1

# pg_lsn's input function accepts 1 to 8 hex digits on each side of the slash
# (MAXPG_LSNCOMPONENT in src/backend/utils/adt/pg_lsn.c).
_LSN_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")

XLOGDATA_TAG = 0x77  # 'w'
KEEPALIVE_TAG = 0x6B  # 'k'
# XLogData: Byte1('w') Int64 walStart Int64 walEnd Int64 sendTime, then the data.
_XLOGDATA = struct.Struct(">xQQq")
# Primary keepalive: Byte1('k') Int64 walEnd Int64 sendTime Byte1 replyRequested.
_KEEPALIVE = struct.Struct(">xQqB")
# Standby status update: Byte1('r') Int64 written Int64 flushed Int64 applied
# Int64 clientTime Byte1 replyRequested.
_STATUS_UPDATE = struct.Struct(">cQQQqB")


class ReplicationProtocolError(ValueError):
    """A CopyData message or an LSN that does not follow the replication protocol."""


class Lsn(int):
    """A WAL position (pg_lsn): an unsigned 64-bit int that prints as PostgreSQL does.

    ``str(Lsn(0x16B3748)) == "0/16B3748"``: the high and low 32-bit halves in
    upper-case hex without zero padding. Arithmetic gives plain ints, as with any
    int subclass; wrap the result in `Lsn` again where the type matters.
    """

    __slots__ = ()

    def __new__(cls, value: int = 0) -> Lsn:
        self = super().__new__(cls, value)
        if not 0 <= self <= _U64_MAX:
            raise ValueError(f"LSN out of range: {int(value)}")
        return self

    @classmethod
    def parse(cls, text: str) -> Lsn:
        """Parse PostgreSQL's ``XXX/XXX`` text form; raise ReplicationProtocolError."""
        match = _LSN_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ReplicationProtocolError(f"not an LSN: {text!r}")
        return cls((int(match[1], 16) << 32) | int(match[2], 16))

    def __str__(self) -> str:
        return f"{self >> 32:X}/{self & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"Lsn('{self}')"

    def __format__(self, spec: str) -> str:
        # f"{lsn}" prints the PostgreSQL form; numeric specs ("x", "d") still work.
        return str(self) if not spec else int.__format__(self, spec)


def lsn_of_u64(value: int) -> Lsn:
    """An `Lsn` from an unsigned 64-bit field just unpacked (always in range): without the
    range check of ``Lsn()``, which a stream pays several times per frame otherwise."""
    return int.__new__(Lsn, value)


@attrs.frozen
class XLogData:
    """``w``: a chunk of the WAL stream; for logical replication one pgoutput message."""

    wal_start: Lsn
    wal_end: Lsn
    send_time: int  # microseconds since 2000-01-01 00:00 UTC
    payload: memoryview  # zero-copy slice of the CopyData message


@attrs.frozen
class PrimaryKeepalive:
    """``k``: the server's heartbeat; ``reply_requested`` asks for a status update now."""

    wal_end: Lsn
    send_time: int  # microseconds since 2000-01-01 00:00 UTC
    reply_requested: bool


def parse_copy_data(data: bytes | memoryview) -> XLogData | PrimaryKeepalive:
    """Parse one CopyData message received after ``START_REPLICATION``.

    Raises `ReplicationProtocolError` for an unknown message type or a wrong length.
    """
    view = memoryview(data).cast("B")
    if not view:
        raise ReplicationProtocolError("empty CopyData message")
    if view[0] == XLOGDATA_TAG:
        payload = xlogdata_payload(view)
        start, end, send_time = _XLOGDATA.unpack_from(view)
        return XLogData(lsn_of_u64(start), lsn_of_u64(end), send_time, payload)
    end, send_time, reply = _keepalive(view)
    return PrimaryKeepalive(lsn_of_u64(end), send_time, reply != 0)


def xlogdata_payload(data: bytes | memoryview) -> memoryview:
    """The payload of an XLogData message (the caller has seen ``XLOGDATA_TAG``): all a
    logical stream needs of one, without the `XLogData` object and the two `Lsn` that
    `parse_copy_data` makes. A relay reads two or three of these per relayed frame.
    Zero-copy; raises `ReplicationProtocolError` if the header is cut short."""
    if len(data) < _XLOGDATA.size:
        raise ReplicationProtocolError(f"XLogData too short: {len(data)} bytes")
    return memoryview(data)[_XLOGDATA.size :]


def keepalive_fields(data: bytes | memoryview) -> tuple[Lsn, bool]:
    """(wal end, reply requested) of a message that is not XLogData, which must be a primary
    keepalive, without the `PrimaryKeepalive` object: a busy walsender sends one each time it
    has caught up and waits for WAL, about once per transaction. Raises
    `ReplicationProtocolError` for another message type or a wrong length."""
    end, _, reply = _keepalive(data)
    return lsn_of_u64(end), reply != 0


def _keepalive(data: bytes | memoryview) -> tuple[int, int, int]:
    if data[0] != KEEPALIVE_TAG:
        raise ReplicationProtocolError(f"unknown replication message type {data[0]:#04x}")
    if len(data) != _KEEPALIVE.size:
        raise ReplicationProtocolError(f"keepalive of {len(data)} bytes, expected 18")
    # The server writes 1 or 0 as the reply flag; any non-zero byte is read as a request.
    return _KEEPALIVE.unpack_from(data)


def standby_status_update(
    written: Lsn, flushed: Lsn, applied: Lsn, now_us: int, reply_requested: bool = False
) -> bytes:
    """Build the ``r`` message acknowledging WAL positions.

    ``now_us`` is the client's clock in microseconds since 2000-01-01 UTC (see
    `pg_time_us`). The docs ask for "the location of the last WAL byte + 1"
    received/flushed/applied; choosing those positions is up to the caller.
    """
    for name, lsn in (("written", written), ("flushed", flushed), ("applied", applied)):
        if not 0 <= lsn <= _U64_MAX:
            raise ValueError(f"{name} LSN out of range: {lsn}")
    if not -(1 << 63) <= now_us < (1 << 63):
        raise ValueError(f"timestamp out of range: {now_us}")
    return _STATUS_UPDATE.pack(b"r", written, flushed, applied, now_us, 1 if reply_requested else 0)


def pg_time_us(unix_time: float) -> int:
    """Unix time in seconds -> microseconds since 2000-01-01 UTC (rounded)."""
    return round(unix_time * 1_000_000) - PG_EPOCH_OFFSET_US


def unix_time(pg_us: int) -> float:
    """Microseconds since 2000-01-01 UTC -> Unix time in seconds."""
    return (pg_us + PG_EPOCH_OFFSET_US) / 1_000_000
