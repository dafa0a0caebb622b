"""The replication reader (``ReplicationStream``) on a scripted connection, in virtual time:
the transactions it hands out from the captured CopyData of a real PostgreSQL, what it answers
to keepalives, and the silence limit its feedback task keeps."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
import trio
import trio.testing

from pgcall.pg.changes import Snapshot, Transaction, TransactionAssembler
from pgcall.pg.conn import ConnectionLost
from pgcall.pg.stream import SILENCE_LIMIT_S, STATUS_INTERVAL_S, ReplicationStream
from pgcall.pg.walproto import Lsn, ReplicationProtocolError, parse_copy_data
from tests import golden


class ScriptedConn:
    """What the reader uses of a replication connection: CopyData in, status updates out."""

    def __init__(self) -> None:
        self.to_reader, self._from_test = trio.open_memory_channel[bytes](math.inf)
        self.sent: list[bytes] = []
        self.closed = False

    async def get_copy_data(self) -> bytes | None:
        try:
            return await self._from_test.receive()
        except trio.EndOfChannel:
            return None

    async def put_copy_data(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True


def open_reader() -> tuple[ScriptedConn, ReplicationStream]:
    conn = ScriptedConn()
    stream = ReplicationStream(conn, Snapshot({}), Lsn(0), "slot")  # type: ignore[arg-type]
    return conn, stream


def keepalive(wal_end: int, reply: bool) -> bytes:
    return b"k" + struct.pack(">Qq", wal_end, 0) + bytes([reply])


def expected(copy_data: list[bytes]) -> list[Transaction]:
    """The transactions in ``copy_data``, assembled from each message fully parsed."""
    assembler, out = TransactionAssembler(), []
    for data in copy_data:
        parsed: Any = parse_copy_data(data)
        if data[:1] == b"w" and (txn := assembler.feed(parsed.payload)) is not None:
            out.append(txn)
    return out


async def test_transactions_of_a_captured_stream_with_its_keepalives() -> None:
    for mode in golden.MODES:
        captured = [m.copy_data for m in golden.load(mode).messages]
        want = expected(captured)
        assert len(want) >= 5
        conn, stream = open_reader()
        for data in captured:
            conn.to_reader.send_nowait(data)
        conn.to_reader.close()
        got = []
        with trio.fail_after(1):
            async for txn in stream:  # the end of the script ends it
                got.append(txn)
                if len(got) == len(want):
                    break
        assert got == want
        stats = stream.statistics()
        assert Lsn.parse(stats["received_lsn"]) == want[-1].end_lsn
        assert Lsn.parse(stats["server_wal_end"]) >= want[-1].end_lsn
        # Read up to the last transaction's COMMIT (the last XLogData), not past it.
        last = max(i for i, d in enumerate(captured) if d[:1] == b"w")
        assert stats["bytes_received"] == sum(len(d) for d in captured[: last + 1])
        assert conn.sent == []  # no keepalive asked for a reply


async def test_a_keepalive_asking_for_a_reply_is_answered_at_once() -> None:
    conn, stream = open_reader()
    conn.to_reader.send_nowait(keepalive(0x500, reply=False))
    conn.to_reader.send_nowait(keepalive(0x600, reply=True))
    conn.to_reader.close()
    with trio.fail_after(1), pytest.raises(ConnectionLost, match="ended the replication"):
        async for _ in stream:
            raise AssertionError("a keepalive is no transaction")
    assert len(conn.sent) == 1 and conn.sent[0][:1] == b"r"
    # Nothing in flight: the idle position is confirmed (written, flushed, applied).
    assert struct.unpack_from(">QQQ", conn.sent[0], 1) == (0x600, 0x600, 0x600)
    assert Lsn.parse(stream.statistics()["server_wal_end"]) == 0x600


async def test_an_unknown_message_type_ends_the_stream() -> None:
    conn, stream = open_reader()
    conn.to_reader.send_nowait(keepalive(0x500, reply=False))
    conn.to_reader.send_nowait(b"x" + bytes(17))
    with trio.fail_after(1), pytest.raises(ReplicationProtocolError, match="type 0x78"):
        await stream.__anext__()


async def test_silence_is_counted_from_the_last_message(
        autojump_clock: trio.testing.MockClock) -> None:
    conn, stream = open_reader()
    closed_after: list[float] = []
    closed = trio.Event()

    async def read() -> None:
        async for _ in stream:
            pass

    async def feedback() -> None:
        await stream.run_feedback()
        closed_after.append(trio.current_time())
        closed.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        nursery.start_soon(feedback)
        for _ in range(4 * int(3 * SILENCE_LIMIT_S)):  # messages for three times the limit
            conn.to_reader.send_nowait(keepalive(0x100, reply=False))
            await trio.sleep(0.25)
        assert not conn.closed
        last = trio.current_time()
        with trio.fail_after(SILENCE_LIMIT_S + 2 * STATUS_INTERVAL_S):
            await closed.wait()
        nursery.cancel_scope.cancel()

    assert conn.closed
    silent_for = closed_after[0] - last
    assert SILENCE_LIMIT_S <= silent_for <= SILENCE_LIMIT_S + STATUS_INTERVAL_S
    # Each status update after a second without a message asked the server for a reply.
    replies = [data[-1] for data in conn.sent]
    assert replies[-1] == 1 and 0 in replies
