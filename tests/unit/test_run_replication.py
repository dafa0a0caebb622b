"""``run_replication`` against a scripted source, in virtual time (``autojump_clock``).

The source records the virtual time of every attempt to open a stream, so the backoff schedule
can be read off exactly; the hub records its calls. Tests wait on channels and events, never on
wall-clock time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from pgcall.pg.changes import Change, Snapshot, TableRows, Transaction
from pgcall.pg.conn import ConnectionLost
from pgcall.pg.scripted import ScriptedSource, ScriptedStream
from pgcall.pg.walproto import Lsn
from pgcall.relay.replication import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    ReplicationStatus,
    run_replication,
)

SNAPSHOT = Snapshot({"users": TableRows((("identity", 25),), ({"identity": "ann"},))})


class TimedSource(ScriptedSource):
    """A ScriptedSource that reports the virtual time of each open attempt, refused or not."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(snapshot)
        self.attempts: list[float] = []
        self.attempt_send, self.attempt_receive = trio.open_memory_channel[float](100)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[ScriptedStream]:
        now = trio.current_time()
        self.attempts.append(now)
        self.attempt_send.send_nowait(now)
        async with super().open() as stream:
            yield stream

    async def next_attempt(self) -> float:
        with trio.fail_after(60):  # virtual seconds
            return await self.attempt_receive.receive()


class Hub:
    """The Consumer protocol, recording calls; ``publish`` also notes what was acked then."""

    def __init__(self, source: ScriptedSource) -> None:
        self.source = source
        self.calls: list[tuple[str, object]] = []
        self.acked_at_publish: list[Lsn] = []
        self.published_send, self.published = trio.open_memory_channel[Transaction](100)

    def restart(self, snapshot: Snapshot) -> None:
        self.calls.append(("restart", snapshot))

    def publish(self, txn: Transaction) -> None:
        assert self.source.stream is not None
        self.acked_at_publish.append(self.source.stream.acked)
        self.calls.append(("publish", txn))
        self.published_send.send_nowait(txn)

    def stream_down(self, reason: str) -> None:
        self.calls.append(("down", reason))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def txn(n: int) -> Transaction:
    change = Change("users", "insert", (("identity", 25),), {"identity": f"u{n}"}, None)
    return Transaction(Lsn(0x1000 * n), 700_000_000_000_000 + n, (change,))


async def test_started_only_once_the_hub_has_the_first_snapshot(
        autojump_clock: trio.testing.MockClock) -> None:
    source = TimedSource(SNAPSHOT)
    source.refuse = ConnectionLost("server is starting")
    hub = Hub(source)
    started = trio.Event()
    seen_at_start: list[object] = []

    async def start(nursery: trio.Nursery) -> None:
        await nursery.start(run_replication, source, hub, ReplicationStatus())
        seen_at_start.extend([list(hub.calls), source.opened])
        started.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start, nursery)
        for _ in range(3):  # refused attempts do not count as started
            await source.next_attempt()
            await trio.testing.wait_all_tasks_blocked()
            assert not started.is_set()
            assert hub.calls == []
        source.refuse = None
        await source.next_attempt()
        with trio.fail_after(1):
            await started.wait()
        nursery.cancel_scope.cancel()

    assert seen_at_start == [[("restart", SNAPSHOT)], 1]


async def test_transactions_are_published_in_order_then_acked(
        autojump_clock: trio.testing.MockClock) -> None:
    source = TimedSource(SNAPSHOT)
    hub = Hub(source)
    status = ReplicationStatus()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_replication, source, hub, status)
        assert status.streaming
        stream = source.stream
        assert stream is not None
        for n in (1, 2, 3):
            source.push(txn(n))
        received = [await hub.published.receive() for _ in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        acked = stream.acked
        nursery.cancel_scope.cancel()

    assert received == [txn(1), txn(2), txn(3)]
    # Each is acknowledged only after the hub has taken it.
    assert hub.acked_at_publish == [Lsn(0), txn(1).end_lsn, txn(2).end_lsn]
    assert acked == txn(3).end_lsn
    assert hub.kinds() == ["restart", "publish", "publish", "publish", "down"]


async def test_payloads_go_through_the_assembler(
        autojump_clock: trio.testing.MockClock) -> None:
    """The scripted source also takes raw pgoutput messages, as the real stream gets them."""
    relation = (b"R" + (16384).to_bytes(4, "big") + b"public\0users\0" + b"f"
                + (1).to_bytes(2, "big") + b"\x01identity\0" + (25).to_bytes(4, "big")
                + (-1).to_bytes(4, "big", signed=True))
    begin = b"B" + (0x2000).to_bytes(8, "big") + (5).to_bytes(8, "big") + (9).to_bytes(4, "big")
    insert = (b"I" + (16384).to_bytes(4, "big") + b"N" + (1).to_bytes(2, "big")
              + b"t" + (3).to_bytes(4, "big") + b"bob")
    commit = (b"C\0" + (0x1F00).to_bytes(8, "big") + (0x2000).to_bytes(8, "big")
              + (5).to_bytes(8, "big"))
    source = TimedSource(SNAPSHOT)
    hub = Hub(source)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_replication, source, hub, ReplicationStatus())
        for payload in (begin, relation, insert, commit):
            source.push_payload(payload)
        got = await hub.published.receive()
        nursery.cancel_scope.cancel()

    assert got == Transaction(Lsn(0x2000), 5, (
        Change("users", "insert", (("identity", 25),), {"identity": "bob"}, None),))


async def test_backoff_doubles_to_the_cap_and_resets_after_a_good_open(
        autojump_clock: trio.testing.MockClock) -> None:
    source = TimedSource(SNAPSHOT)
    hub = Hub(source)
    status = ReplicationStatus()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_replication, source, hub, status)
        await source.next_attempt()

        # A lost stream: the hub hears of it, and a new stream opens 0.1 s later.
        failed_at = trio.current_time()
        source.fail("walsender went away")
        reopened_at = await source.next_attempt()
        await trio.testing.wait_all_tasks_blocked()
        assert reopened_at - failed_at == pytest.approx(BACKOFF_INITIAL_S)
        assert hub.kinds() == ["restart", "down", "restart"]
        assert hub.calls[1] == ("down", "walsender went away")
        assert status.last_error == "walsender went away"

        # The server refuses for a while: the waits double up to the cap.
        source.refuse = ConnectionLost("connection refused")
        failed_at = trio.current_time()
        source.fail()
        refused = [await source.next_attempt() for _ in range(9)]
        gaps = [b - a for a, b in zip([failed_at, *refused], refused, strict=False)]
        assert gaps == pytest.approx([min(0.1 * 2**i, BACKOFF_MAX_S) for i in range(9)])
        assert max(gaps) == pytest.approx(BACKOFF_MAX_S)
        assert status.last_error == "connection refused"
        assert not status.streaming

        # It accepts again: the next open works, and the backoff starts over.
        source.refuse = None
        last_refused = refused[-1]
        opened_at = await source.next_attempt()
        assert opened_at - last_refused == pytest.approx(BACKOFF_MAX_S)
        await trio.testing.wait_all_tasks_blocked()
        assert status.streaming
        failed_at = trio.current_time()
        source.fail()
        again = await source.next_attempt()
        assert again - failed_at == pytest.approx(BACKOFF_INITIAL_S)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()

    # Refused opens never reached the hub: one restart per stream that opened, one down per
    # stream that ended.
    assert hub.kinds() == ["restart", "down", "restart", "down", "restart", "down", "restart",
                           "down"]
    assert source.opened == 4
    assert status.reconnects == 1 + 1 + 9 + 1


async def test_a_bug_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    """Only connection and protocol failures are recoverable; anything else propagates, after
    telling the hub its stream is gone."""
    source = TimedSource(SNAPSHOT)
    hub = Hub(source)
    with pytest.RaisesGroup(ZeroDivisionError):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_replication, source, hub, ReplicationStatus())
            source._put(ZeroDivisionError())  # a scripted stream raises what it is given
    assert hub.kinds() == ["restart", "down"]
    assert source.opened == 1
