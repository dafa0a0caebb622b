"""The trio-native connection against a real PostgreSQL."""

from __future__ import annotations

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
