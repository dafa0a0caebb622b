"""The trio-native connection against a real PostgreSQL."""

from __future__ import annotations

from pgcall.pg.conn import open_connection


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
