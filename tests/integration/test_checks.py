"""Start-up checks of an external PostgreSQL (--dsn), against real servers configured wrongly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgcall.pg.checks import StartupCheckFailed, check_server
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import EmbeddedPostgres
from tests.conftest import ServerThread, run_sql

REPO = Path(__file__).resolve().parents[2]


def with_param(dsn: str, key: str, value: str) -> str:
    """``dsn`` (key=value form) with one parameter replaced."""
    kept = [p for p in dsn.split() if not p.startswith(f"{key}=")]
    return " ".join([*kept, f"{key}={value}"])


@pytest.fixture(scope="module")
def replica_server() -> Iterator[EmbeddedPostgres]:
    """A server without logical decoding: wal_level=replica."""
    data_dir = Path(tempfile.mkdtemp(prefix="pgc-", dir="/tmp"))
    thread = ServerThread(data_dir, {"wal_level": "replica"})
    try:
        yield thread.start()
    finally:
        thread.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def one_slot_server() -> Iterator[EmbeddedPostgres]:
    """A logical server with max_replication_slots=1, and that one slot taken."""
    data_dir = Path(tempfile.mkdtemp(prefix="pgc-", dir="/tmp"))
    thread = ServerThread(data_dir, {"max_replication_slots": "1"})
    try:
        server = thread.start()
        run_sql(server.dsn, "SELECT pg_create_logical_replication_slot('forgotten', 'pgoutput')")
        yield server
    finally:
        thread.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def role_without_replication(pg_server: EmbeddedPostgres) -> Iterator[str]:
    role = f"r_{uuid.uuid4().hex[:10]}"
    run_sql(pg_server.dsn, f"CREATE ROLE {role} LOGIN")
    try:
        yield role
    finally:
        run_sql(pg_server.dsn, f"DROP ROLE {role}")


async def test_good_server_passes(pg_server: EmbeddedPostgres) -> None:
    await check_server(pg_server.dsn)


async def test_good_server_passes_for_a_migrated_database(db_dsn: str) -> None:
    await check_server(db_dsn)


async def test_wal_level_replica(replica_server: EmbeddedPostgres) -> None:
    with pytest.raises(StartupCheckFailed) as info:
        await check_server(replica_server.dsn)
    message = str(info.value)
    assert "wal_level" in message
    assert "'replica'" in message and "logical" in message
    assert "\n" not in message


async def test_role_without_replication(pg_server: EmbeddedPostgres,
                                        role_without_replication: str) -> None:
    dsn = with_param(pg_server.dsn, "user", role_without_replication)
    with pytest.raises(StartupCheckFailed) as info:
        await check_server(dsn)
    message = str(info.value)
    assert "REPLICATION" in message
    assert role_without_replication in message
    assert "\n" not in message


async def test_role_with_replication_passes(pg_server: EmbeddedPostgres,
                                            role_without_replication: str) -> None:
    # The same role, once granted REPLICATION, passes: the check looks at the attribute and
    # not at superuser status alone.
    role = role_without_replication
    conn = await PgConnection.connect(pg_server.dsn)
    try:
        await conn.simple(f"ALTER ROLE {role} REPLICATION")
    finally:
        conn.close()
    await check_server(with_param(pg_server.dsn, "user", role))


async def test_no_free_replication_slot(one_slot_server: EmbeddedPostgres) -> None:
    with pytest.raises(StartupCheckFailed) as info:
        await check_server(one_slot_server.dsn)
    message = str(info.value)
    assert "max_replication_slots" in message
    assert "\n" not in message


async def test_unreachable_server(tmp_path: Path) -> None:
    dsn = f"host={tmp_path / 'no-such-socket-dir'} dbname=postgres user=pgcall"
    with pytest.raises(StartupCheckFailed) as info:
        await check_server(dsn)
    message = str(info.value)
    assert message.startswith("cannot connect")
    assert "\n" not in message


async def test_unknown_database(pg_server: EmbeddedPostgres) -> None:
    dsn = with_param(pg_server.dsn, "dbname", f"missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(StartupCheckFailed, match=r"^cannot connect"):
        await check_server(dsn)


def test_cli_reports_wal_level_in_one_line(replica_server: EmbeddedPostgres) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pgcall", "--dsn", replica_server.dsn, "--port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pgcall: error: ")
    assert "wal_level" in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_reports_unreachable_server_in_one_line(tmp_path: Path) -> None:
    dsn = f"host={tmp_path / 'gone'} dbname=postgres user=pgcall"
    proc = subprocess.run(
        [sys.executable, "-m", "pgcall", "--dsn", dsn, "--port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("pgcall: error: cannot connect")
