"""The scripted replication source takes raw CopyData as the server sends it."""

from __future__ import annotations

import trio

from pgcall.pg.changes import Change, LogicalMessage, Snapshot, TransactionAssembler
from pgcall.pg.scripted import ScriptedSource
from tests import golden


async def test_copy_data_yields_the_transactions_the_payloads_make() -> None:
    capture = golden.load("binary")
    frames = [m.copy_data for m in capture.messages]
    expected = []
    assembler = TransactionAssembler()
    for frame in frames:
        if frame[:1] == b"w":
            txn = assembler.feed(frame[25:])
            if txn is not None:
                expected.append(txn)
    assert expected, "the golden capture holds committed transactions"

    source = ScriptedSource(Snapshot({}))
    got = []
    async with source.open() as stream:
        for frame in frames:
            source.push_copy_data(frame)
        source.push_copy_data(b"k" + bytes(8) + bytes(8) + b"\x00")  # a keepalive: skipped
        with trio.fail_after(5):
            for _ in expected:
                got.append(await stream.__anext__())
    assert [(t.end_lsn, len(t.changes)) for t in got] == [
        (t.end_lsn, len(t.changes)) for t in expected]
    assert [list(map(describe, t.changes)) for t in got] == [
        list(map(describe, t.changes)) for t in expected]


def describe(change: Change | LogicalMessage) -> tuple[str, str]:
    if isinstance(change, LogicalMessage):
        return ("message", change.prefix)
    return (change.table, change.op)
