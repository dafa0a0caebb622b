"""Test fixtures: a real PostgreSQL with logical replication, started by pgcall's own embedded code.

One server per test session (initdb once per session, in a short /tmp path: Unix socket paths
must stay under 107 bytes). Each test that needs a database gets a fresh one cloned from a
migrated template, so tests never see each other's rows, slots or publications.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from pgcall.pg.binaries import find_bindir
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import EmbeddedPostgres, open_embedded
from pgcall.pg.migrate import migrate

TEMPLATE_DB = "pgcall_template"


class ServerThread:
    """Runs ``open_embedded`` in a trio loop of its own thread for the whole session."""

    def __init__(self, data_dir: Path, extra_settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_settings = extra_settings
        self.server: EmbeddedPostgres | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the test session
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with open_embedded(self.data_dir, find_bindir(None),
                                 extra_settings=self.extra_settings) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def start(self) -> EmbeddedPostgres:
        self._thread.start()
        self._ready.wait(60)
        if self.server is None:
            raise RuntimeError(f"embedded PostgreSQL did not start: {self.error!r}")
        return self.server

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)


def run_sql(dsn: str, *statements: str) -> list[list[tuple]]:
    """Run statements on a fresh connection from synchronous code."""

    async def go() -> list[list[tuple]]:
        conn = await PgConnection.connect(dsn)
        try:
            return [(await conn.execute(s)).rows for s in statements]
        finally:
            conn.close()

    return trio.run(go)


def with_dbname(dsn: str, dbname: str) -> str:
    return " ".join(p for p in dsn.split() if not p.startswith("dbname=")) + f" dbname={dbname}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """The session's PostgreSQL 15+ with wal_level=logical; a migrated template database."""
    data_dir = Path(tempfile.mkdtemp(prefix="pgct-"))
    thread = ServerThread(data_dir)
    server = thread.start()
    try:
        run_sql(server.dsn, f"CREATE DATABASE {TEMPLATE_DB}")

        async def do_migrate() -> None:
            conn = await PgConnection.connect(with_dbname(server.dsn, TEMPLATE_DB))
            try:
                await migrate(conn)
            finally:
                conn.close()

        trio.run(do_migrate)
        yield server
    finally:
        thread.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def db_dsn(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    run_sql(pg_server.dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        yield with_dbname(pg_server.dsn, name)
    finally:
        # A closed stream's temporary slot goes when its walsender exits, a moment after the
        # client closed; DROP DATABASE refuses while a slot of the database exists.
        deadline = time.monotonic() + 10
        while run_sql(pg_server.dsn, "SELECT count(*) FROM pg_replication_slots "
                      f"WHERE database = '{name}'")[0][0][0] and time.monotonic() < deadline:
            time.sleep(0.05)
        run_sql(pg_server.dsn, f"DROP DATABASE {name} WITH (FORCE)")
