"""Faults of the replication connection against a real PostgreSQL: a killed walsender, an idle
stream under a short ``wal_sender_timeout``, and a pgcall process that dies with its slot.

A recording hub (the ``Consumer`` protocol) stands in for the real one. Waits are on what the
hub or the server reports, each under a deadline; the server's view (``pg_replication_slots``,
``pg_stat_activity``) is polled where it is the only thing that can tell.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trio

from pgcall.pg.changes import Change, Snapshot, Transaction
from pgcall.pg.conn import PgConnection, open_connection
from pgcall.pg.embedded import EmbeddedPostgres
from pgcall.pg.migrate import migrate
from pgcall.relay.replication import PostgresSource, ReplicationStatus, run_replication
from tests.conftest import ServerThread, with_dbname

from .polling import poll_until

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 10.0
RESUME_LIMIT_S = 2.0  # the acceptance bound for resuming after a lost walsender


class RecordingHub:
    """Implements ``Consumer``; records every call and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.event_times: list[float] = []
        self._changed = trio.Event()

    def _record(self, kind: str, value: object) -> None:
        self.events.append((kind, value))
        self.event_times.append(trio.current_time())
        self._changed.set()
        self._changed = trio.Event()

    def restart(self, snapshot: Snapshot) -> None:
        self._record("restart", snapshot)

    def publish(self, txn: Transaction) -> None:
        self._record("publish", txn)

    def stream_down(self, reason: str) -> None:
        self._record("down", reason)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events if kind != "publish"]

    @property
    def restarts(self) -> list[Snapshot]:
        return [v for kind, v in self.events if kind == "restart"]  # type: ignore[misc]

    def published_users(self, since: int = 0) -> list[str]:
        """Identities of the users rows inserted in transactions published from event
        number ``since`` on."""
        return [c.row["identity"] for kind, txn in self.events[since:] if kind == "publish"
                for c in txn.changes  # type: ignore[attr-defined]
                if isinstance(c, Change) and c.op == "insert" and c.table == "users"
                and c.row is not None]

    async def wait_for(self, predicate: Callable[[], bool],
                       deadline: float = DEADLINE_S) -> None:
        with trio.fail_after(deadline):
            while not predicate():
                await self._changed.wait()


async def no_slots(conn: PgConnection) -> bool:
    return await slot_names(conn) == []


@pytest.fixture
async def dsn(db_dsn: str) -> AsyncIterator[str]:
    """``db_dsn``, and after the test: every slot of its streams is gone (a temporary slot
    goes a moment after its connection; the database cannot be dropped before that)."""
    yield db_dsn
    async with open_connection(db_dsn) as conn:
        await poll_until(lambda: no_slots(conn), DEADLINE_S)


async def walsender_pids(conn: PgConnection) -> list[int]:
    res = await conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'"
                             " AND datname = current_database() ORDER BY pid")
    return [r[0] for r in res.rows]


async def slot_names(conn: PgConnection) -> list[str]:
    res = await conn.execute("SELECT slot_name FROM pg_replication_slots"
                             " WHERE database = current_database() ORDER BY 1")
    return [r[0] for r in res.rows]


# -- a killed walsender ----------------------------------------------------------------------


async def test_reconnects_after_walsender_is_terminated(dsn: str) -> None:
    hub = RecordingHub()
    status = ReplicationStatus()
    async with trio.open_nursery() as nursery, open_connection(dsn) as w:
        await nursery.start(run_replication, PostgresSource(dsn), hub, status)
        assert hub.kinds() == ["restart"]
        (old_pid,) = await walsender_pids(w)
        (old_slot,) = await slot_names(w)

        killed_at = trio.current_time()
        assert (await w.execute("SELECT pg_terminate_backend($1)", [old_pid])).rows == [(True,)]
        await hub.wait_for(lambda: "down" in hub.kinds())
        # Committed while the stream is down (or coming back): it must reach the hub through
        # the next snapshot or the next stream, exactly once.
        await w.execute("INSERT INTO users (identity) VALUES ('during')")

        await hub.wait_for(lambda: len(hub.restarts) == 2)
        restart_index = len(hub.events) - 1
        resumed_after = hub.event_times[restart_index] - killed_at
        await w.execute("INSERT INTO users (identity) VALUES ('after')")
        await hub.wait_for(lambda: "after" in hub.published_users())
        arrived_after = trio.current_time() - killed_at

        (new_pid,) = await walsender_pids(w)
        (new_slot,) = await slot_names(w)
        nursery.cancel_scope.cancel()

    print(f"\nwalsender killed -> stream restarted in {resumed_after * 1000:.0f} ms; "
          f"a change committed after it arrived {arrived_after * 1000:.0f} ms after the kill")
    assert hub.kinds() == ["restart", "down", "restart", "down"]  # the last: our cancel
    assert hub.events[1][1]  # a reason is given
    assert status.reconnects >= 1
    assert new_pid != old_pid
    assert new_slot != old_slot  # a fresh temporary slot; the old one went with its walsender
    assert resumed_after < RESUME_LIMIT_S

    second_snapshot = [r["identity"] for r in hub.restarts[1].tables["users"].rows]
    published = hub.published_users(since=restart_index)
    assert (second_snapshot + published).count("during") == 1
    assert published.count("after") == 1
    assert "after" not in second_snapshot


# -- an idle stream under a short wal_sender_timeout -----------------------------------------


@pytest.fixture(scope="module")
def short_timeout_server() -> Iterator[EmbeddedPostgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="pgwst-"))
    thread = ServerThread(data_dir, extra_settings={"wal_sender_timeout": "2s"})
    server = thread.start()
    try:
        yield server
    finally:
        thread.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.slow
async def test_idle_stream_survives_wal_sender_timeout(
        short_timeout_server: EmbeddedPostgres) -> None:
    dsn = with_dbname(short_timeout_server.dsn, "idle")
    async with open_connection(short_timeout_server.dsn) as admin:
        await admin.simple("CREATE DATABASE idle")
    async with open_connection(dsn) as conn:
        await migrate(conn)
        timeout = (await conn.execute("SHOW wal_sender_timeout")).rows[0][0]
    assert timeout == "2s"

    hub = RecordingHub()
    status = ReplicationStatus()
    async with trio.open_nursery() as nursery, open_connection(dsn) as w:
        await nursery.start(run_replication, PostgresSource(dsn), hub, status)
        (pid,) = await walsender_pids(w)
        # Five timeouts' worth of silence: only the standby status updates keep us connected.
        await trio.sleep(10)
        await w.execute("INSERT INTO users (identity) VALUES ('after idle')")
        await hub.wait_for(lambda: "after idle" in hub.published_users())
        assert await walsender_pids(w) == [pid]
        nursery.cancel_scope.cancel()

    assert len(hub.restarts) == 1
    assert hub.kinds() == ["restart", "down"]  # the down is our cancel, at the end
    assert status.reconnects == 0
    assert status.last_error == ""


# -- no slot left behind ---------------------------------------------------------------------

CHILD = """
import sys, trio
from pgcall.pg.stream import open_stream

async def main():
    async with open_stream(sys.argv[1]) as stream:
        print(stream.slot, flush=True)
        # A line on stdin asks for a clean exit; otherwise wait to be killed.
        await trio.to_thread.run_sync(sys.stdin.readline)

trio.run(main)
"""


async def slot_gone(conn: PgConnection, slot: str) -> bool:
    return slot not in await slot_names(conn)


@pytest.mark.parametrize("ending", ["kill -9", "SIGTERM", "clean exit"])
async def test_no_slot_left_behind(dsn: str, ending: str) -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", CHILD, dsn], cwd=REPO,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        with trio.fail_after(DEADLINE_S):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some()
                assert chunk, "the child exited before opening its stream"
                line += chunk
        slot = line.decode().strip()
        assert slot.startswith("pgcall_")
        async with open_connection(dsn) as w:
            res = await w.execute("SELECT temporary, active FROM pg_replication_slots"
                                  " WHERE slot_name = $1", [slot])
            assert res.rows == [(True, True)]

            if ending == "kill -9":
                proc.send_signal(signal.SIGKILL)
            elif ending == "SIGTERM":
                proc.send_signal(signal.SIGTERM)
            else:
                await proc.stdin.send_all(b"exit\n")
            with trio.fail_after(DEADLINE_S):
                returncode = await proc.wait()
            await poll_until(lambda: slot_gone(w, slot), 5.0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    expected = {"kill -9": -signal.SIGKILL, "SIGTERM": -signal.SIGTERM, "clean exit": 0}
    assert returncode == expected[ending]

