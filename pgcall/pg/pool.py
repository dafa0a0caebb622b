"""A small pool of trio-native PostgreSQL connections.

Owns: how many connections pgcall keeps, lending them out, and discarding broken ones.
Does not own: the wire (``conn``).

Connections are made lazily and re-made after a failure, so the pool rides out a PostgreSQL
restart: the statement that hit the dead connection fails, the next one gets a fresh one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import trio

from .conn import ConnectionLost, PgConnection, Result

# A connection lent for longer than this is presumed dead (a network that went silent: no
# error ever arrives) and is dropped; the caller gets ConnectionLost. pgcall's statements take
# milliseconds; the longest, a reaper batch, well under a second.
LEASE_TIMEOUT_S = 5.0
# An idle connection is checked for a server-side close (closed_while_idle) only once it has
# been idle this long.
IDLE_CHECK_S = 0.5


def gone_while_idle(conn: PgConnection, idle_since: float, now: float) -> bool:
    """True if ``conn``, idle since ``idle_since`` (trio's clock, as ``now``), was closed by
    the server meanwhile (a restart, ``pg_terminate_backend``, ``idle_session_timeout``). A
    connection back from its last statement a moment ago is not worth a poll: the hot path
    (frame batches) would pay a system call per batch for nothing."""
    return now - idle_since > IDLE_CHECK_S and conn.closed_while_idle()


class Pool:
    def __init__(self, dsn: str, size: int = 8, *, setup_sql: str | None = None,
                 lease_timeout_s: float = LEASE_TIMEOUT_S) -> None:
        self.dsn = dsn
        self.lease_timeout_s = lease_timeout_s
        self.size = size
        self._setup_sql = setup_sql
        self._idle: list[tuple[PgConnection, float]] = []  # with when each came back
        self._slots = trio.Semaphore(size)
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[PgConnection]:
        if self._closed:
            raise RuntimeError("pool is closed")
        try:  # a free slot is taken without a task switch (the frame writer's every batch)
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._slots.acquire()
        try:
            conn = None
            while self._idle and conn is None:
                conn, idle_since = self._idle.pop()
                if gone_while_idle(conn, idle_since, trio.current_time()):
                    conn.close()
                    conn = None
            if conn is None:
                conn = await self.open()
            try:
                with trio.move_on_after(self.lease_timeout_s) as lease:
                    yield conn
                if lease.cancelled_caught:
                    conn.broken = True
                    raise ConnectionLost(
                        f"no answer from PostgreSQL within {self.lease_timeout_s:g} s")
            finally:
                if conn.broken or self._closed:
                    conn.close()
                if conn.broken:
                    # The idle ones most likely share its fate (same server, same network);
                    # a new connection costs milliseconds, a dead one a failed statement.
                    while self._idle:
                        self._idle.pop()[0].close()
                elif not self._closed:
                    self._idle.append((conn, trio.current_time()))
        finally:
            self._slots.release()

    async def open(self) -> PgConnection:
        """A new connection like the pool's (same DSN and setup), closed again if its setup
        fails. Outside ``connection()`` it is not counted in the slots: for a task that writes
        all the time and watches its own deadline (the frame writer's shards), it is the
        caller's to close and adds to the connections pgcall opens (``docs/deployment.md``)."""
        conn = await PgConnection.connect(self.dsn)
        try:
            if self._setup_sql:
                await conn.simple(self._setup_sql)
        except BaseException:
            conn.close()
            raise
        return conn

    async def execute(self, sql: str, params: Any = (), *, prepare: bool = False) -> Result:
        async with self.connection() as conn:
            return await conn.execute(sql, params, prepare=prepare)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop()[0].close()

    def statistics(self) -> dict[str, int]:
        return {"size": self.size, "idle": len(self._idle),
                "in_use": self.size - self._slots.value}


@contextlib.asynccontextmanager
async def open_pool(dsn: str, size: int = 8, **kwargs: Any) -> AsyncIterator[Pool]:
    pool = Pool(dsn, size, **kwargs)
    try:
        yield pool
    finally:
        pool.close()
