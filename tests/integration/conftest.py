"""Fixtures for the tests that talk to a running pgcall: the server, and SQL access to its
database (to act as "another process" writing rows, as pg-relay's AI worker does).

``server`` runs ``pgcall.app.serve`` in the test's own nursery on a free port, against the
test's fresh database (``db_dsn``), and yields its WebSocket URL. At teardown it shuts the
server down and waits until PostgreSQL has released the server's temporary replication slot:
``DROP DATABASE`` (the ``db_dsn`` teardown) refuses a database whose logical slot is still
active, and the walsender behind a just-closed replication connection takes a moment to exit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from pgcall.app import Running, serve
from pgcall.config import Config
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import EmbeddedPostgres
from pgcall.pg.pool import Pool, open_pool

from .pgcallproc import PgcallProcess, fresh_database

START_DEADLINE_S = 30.0  # start-up creates a replication slot; a busy 2-core box is slow
STOP_DEADLINE_S = 10.0
SLOT_POLL_S = 0.05


async def wait_slots_released(dsn: str) -> None:
    """Until no replication slot of this database is in use (PostgreSQL offers no event)."""
    conn = await PgConnection.connect(dsn)
    try:
        for _ in range(int(STOP_DEADLINE_S / SLOT_POLL_S)):
            res = await conn.execute("SELECT count(*) FROM pg_replication_slots "
                                     "WHERE database = current_database() AND active")
            if res.rows[0][0] == 0:
                return
            await trio.sleep(SLOT_POLL_S)
    finally:
        conn.close()


@pytest.fixture
async def server(db_dsn: str, nursery: trio.Nursery) -> AsyncIterator[str]:
    """``ws://127.0.0.1:PORT/`` of a pgcall serving this test's database."""
    shutdown, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(Config(dsn=db_dsn, port=0), shutdown, task_status=task_status)
        finally:
            stopped.set()

    with trio.fail_after(START_DEADLINE_S):
        running: Running = await nursery.start(run)
    assert running.url.startswith("http://")
    yield "ws://" + running.url.removeprefix("http://") + "/"
    shutdown.set()
    with trio.fail_after(STOP_DEADLINE_S):
        await stopped.wait()
    await wait_slots_released(db_dsn)


@pytest.fixture
async def db(db_dsn: str) -> AsyncIterator[Pool]:
    """A small pool on the test's database, for rows written "by another process"."""
    async with open_pool(db_dsn, 2) as pool:
        yield pool


@pytest.fixture(scope="session")
def pgcall_process(pg_server: EmbeddedPostgres,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgcallProcess]:
    """One pgcall in a process of its own, on a database of its own, shared by the tests of
    hostile clients (its RSS, log and exit are its own). It must exit 0 on SIGTERM and log no
    error or traceback in all its life."""
    for dsn in fresh_database(pg_server):
        proc = PgcallProcess(dsn, tmp_path_factory.mktemp("pgcall") / "pgcall.log")
        try:
            yield proc
        finally:
            code = proc.stop()
        assert code == 0, proc.log()
        assert proc.problems() == [], proc.log()
