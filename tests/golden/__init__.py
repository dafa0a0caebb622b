"""Loader for the golden pgoutput captures, and the values workload.sql put into them.

Everything here comes from the capture files and from workload.sql, never from the
decoders under test: LSN, xid and time bounds are what PostgreSQL reported around
each step, and `payload_bytes` recomputes the bytea exactly as the SQL built it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import attrs

HERE = Path(__file__).resolve().parent
MODES = ("binary", "text")

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def pg_us(timestamptz_text: str) -> int:
    """PostgreSQL's text form of a timestamptz -> microseconds since 2000-01-01 UTC."""
    return (datetime.fromisoformat(timestamptz_text) - _PG_EPOCH) // timedelta(microseconds=1)


def lsn_int(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def payload_bytes() -> bytes:
    """The bytea of row 1: MD5 of 'golden-1' .. 'golden-1875', concatenated."""
    return b"".join(hashlib.md5(f"golden-{i}".encode()).digest() for i in range(1, 1876))


@attrs.frozen
class Step:
    name: str
    lsn_before: int
    lsn_after: int
    next_xid: int  # the transaction id the step's transaction received
    time_before: int  # microseconds since 2000-01-01 UTC
    time_after: int


@attrs.frozen
class Captured:
    step: str | None  # None for keepalives
    description: str
    copy_data: bytes


@attrs.frozen
class Capture:
    mode: str
    start_replication: str
    oids: dict[str, int]
    steps: dict[str, Step]
    stream_started: int
    stream_finished: int
    messages: tuple[Captured, ...]

    def of_step(self, name: str) -> list[bytes]:
        """The XLogData payloads (pgoutput messages) captured for one step, in order."""
        return [m.copy_data[25:] for m in self.messages if m.step == name]


@cache
def load(mode: str) -> Capture:
    doc = json.loads((HERE / f"pgoutput_{mode}.json").read_text())
    steps = {
        s["name"]: Step(
            name=s["name"],
            lsn_before=lsn_int(s["lsn_before"]),
            lsn_after=lsn_int(s["lsn_after"]),
            next_xid=int(s["next_xid_before"]),
            time_before=pg_us(s["time_before"]),
            time_after=pg_us(s["time_after"]),
        )
        for s in doc["steps"]
    }
    messages = tuple(
        Captured(m["step"], m["description"], bytes.fromhex(m["copy_data"]))
        for m in doc["messages"]
    )
    return Capture(
        mode=mode,
        start_replication=doc["start_replication"],
        oids=doc["oids"],
        steps=steps,
        stream_started=pg_us(doc["stream_started"]),
        stream_finished=pg_us(doc["stream_finished"]),
        messages=messages,
    )


def all_frames() -> list[bytes]:
    """Every captured CopyData message of both modes."""
    return [m.copy_data for mode in MODES for m in load(mode).messages]


def all_payloads() -> list[bytes]:
    """Every captured pgoutput message (XLogData payload) of both modes."""
    return [f[25:] for f in all_frames() if f[:1] == b"w"]
