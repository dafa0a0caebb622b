"""The trio-native connection against a real PostgreSQL."""

from __future__ import annotations

import select
from typing import Any

import pytest

from pgcall.pg.conn import PgError, open_connection


async def test_a_prepared_statement_takes_ints_of_any_width(db_dsn: str) -> None:
    # psycopg dumps a small int as int2 and a larger one as int4/int8: a statement prepared
    # with the first call's types must not reject a later, wider value (found by the soak:
    # audio seq passed 32767 after 27 minutes).
    async with open_connection(db_dsn) as conn:
        await conn.simple("CREATE TEMP TABLE t (n BIGINT NOT NULL)")
        for n in (1, 40_000, 3_000_000_000, 2):
            await conn.execute("INSERT INTO t (n) VALUES ($1)", [n], prepare=True)
        rows = (await conn.execute("SELECT n FROM t ORDER BY n")).rows
        assert rows == [(1,), (2,), (40_000,), (3_000_000_000,)]


async def test_a_batch_is_one_transaction_in_one_round_trip(db_dsn: str) -> None:
    """execute_batch: statements before the pipeline's Sync take together or not at all."""
    insert = "INSERT INTO chat_messages (sender, text) VALUES ($1, $2)"
    async with open_connection(db_dsn) as conn:
        await conn.execute_batch([(insert, ["a", "one"]), (insert, ["a", "two"])])
        with pytest.raises(PgError):  # the CHECK on text's length fails the second one
            await conn.execute_batch([(insert, ["b", "three"]), (insert, ["b", "x" * 501])])
        rows = (await conn.execute("SELECT sender, text FROM chat_messages ORDER BY id")).rows
        assert rows == [("a", "one"), ("a", "two")]
        # The connection is usable after the failed batch, in and out of pipeline mode.
        await conn.execute_batch([(insert, ["c", "four"])])
        assert (await conn.execute("SELECT count(*) FROM chat_messages")).rows == [(3,)]


class _ReadsWatched:
    """The connection's libpq handle, recording for each ``consume_input`` whether the server
    had sent anything by then (a read of a socket with nothing to read fails with EAGAIN)."""

    def __init__(self, pgconn: Any) -> None:
        self._pgconn = pgconn
        self.readable: list[bool] = []

    def consume_input(self) -> None:
        poller = select.poll()
        poller.register(self._pgconn.socket, select.POLLIN)
        self.readable.append(bool(poller.poll(0)))
        self._pgconn.consume_input()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pgconn, name)


async def test_results_are_read_only_once_the_server_has_answered(db_dsn: str) -> None:
    """A statement's results, and a batch's, are awaited before libpq reads the socket: read at
    once, the server (here still asleep) has not answered, and the read is one for nothing."""
    slow = "SELECT pg_sleep($1::float8)"
    async with open_connection(db_dsn) as conn:
        watched = conn.pgconn = _ReadsWatched(conn.pgconn)  # type: ignore[assignment]
        await conn.execute(slow, [0.05])
        await conn.execute_batch([(slow, [0.05]), (slow, [0.0])])
        assert watched.readable and all(watched.readable)
