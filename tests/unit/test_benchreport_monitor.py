"""The report's connection to each database it measures: a step that ends while the sampler's
query is on it leaves it usable, and a lost one stops the run instead of being taken for a
statement the server refused."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing
from benchreport.sampling import Sampler
from benchreport.servers import Server
from benchreport.step import quiesce, settle

from pgcall.pg.conn import ConnectionLost, PgError


class _SlowMonitor:
    """A monitor connection whose query takes 0.2 s; counts the queries that finished."""

    def __init__(self) -> None:
        self.finished = 0

    async def execute(self, sql: str) -> Any:
        await trio.sleep(0.2)
        self.finished += 1
        return SimpleNamespace(rows=[(1000 * self.finished,)])


async def test_a_step_ending_mid_query_lets_the_query_finish(
        autojump_clock: trio.testing.MockClock) -> None:
    """A step ends by cancelling its sampler; a query cancelled halfway would leave the
    report's monitor connection broken for every later step."""
    monitor = _SlowMonitor()
    sampler = Sampler({}, monitor)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sampler.run, trio.current_time())
        await trio.sleep(0.1)  # inside the first query
        nursery.cancel_scope.cancel()
    assert monitor.finished == 1
    assert [s["wal"] for s in sampler.samples] == [1000]


class _Refusing:
    """A monitor connection on which every statement fails with ``error``."""

    def __init__(self, error: PgError) -> None:
        self.error = error
        self.statements: list[str] = []

    async def execute(self, sql: str) -> Any:
        self.statements.append(sql)
        raise self.error

    async def simple(self, sql: str) -> Any:
        return await self.execute(sql)


def _server(monitor: Any) -> Server:
    return Server("peer", "peer", "ws://x", None, monitor, None)


async def test_statements_the_server_refuses_are_skipped(
        autojump_clock: trio.testing.MockClock) -> None:
    monitor = _Refusing(PgError('relation "video_frames" does not exist', "42P01"))
    await quiesce([_server(monitor)])  # settles by a pause, then VACUUM and CHECKPOINT refused
    assert [sql.split()[0] for sql in monitor.statements] == ["SELECT", "VACUUM", "CHECKPOINT"]


async def test_a_lost_connection_stops_the_run(autojump_clock: trio.testing.MockClock) -> None:
    monitor = _Refusing(ConnectionLost("connection is broken"))
    with pytest.raises(ConnectionLost):
        await settle(_server(monitor))
    with pytest.raises(ConnectionLost):
        await quiesce([Server("pgcall", "pgcall", "ws://y", None, None, None), _server(monitor)])
