"""``pgcall --workers N`` against a real PostgreSQL: N relays on one port, connections spread
over them by the kernel, a call across workers, a killed worker restarted while the other
cleans up its users, and SIGTERM stopping them all with no replication slot left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from pgcall.pg.pool import Pool

from .test_startup import free_port, http_get
from .wsclient import event, media, open_client, open_clients, setup_call, video_header

REPO = Path(__file__).resolve().parents[2]
JPEG = b"\xff\xd8" + b"\x77" * 300
START_S = 60.0
CLEANED_WITHIN_S = 5.0
MAX_CLIENTS = 40


async def wait_ready(port: int, db: Pool, workers: int) -> None:
    """Until ``workers`` relays stream (each has its own active slot) and /healthz answers.
    PostgreSQL and the processes offer no event to wait on: look every 0.1 s."""
    for _ in range(int(START_S * 10)):
        slots = (await db.execute("SELECT count(*) FROM pg_replication_slots "
                                  "WHERE database = current_database() AND active")).rows[0][0]
        try:
            healthy = http_get(port, "/healthz", 1.0)[0] == 200
        except OSError:
            healthy = False
        if slots == workers and healthy:
            return
        await trio.sleep(0.1)
    raise AssertionError(f"{workers} workers not ready within {START_S:g} s")


async def relays_serving(db: Pool) -> set[int]:
    return {int(r[0]) for r in (await db.execute(
        "SELECT DISTINCT instance_id FROM pgcall_presence")).rows}


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


async def test_workers_share_a_port_and_replace_each_other(db_dsn: str, db: Pool) -> None:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once; waited for at the end)
        [sys.executable, "-m", "pgcall", "--dsn", db_dsn, "--port", str(port),
         "--workers", "2", "--log-level", "warning"], cwd=REPO)
    try:
        await wait_ready(port, db, 2)
        assert len(worker_pids(proc.pid)) == 2
        base = f"ws://127.0.0.1:{port}/"
        async with open_clients(base, 8) as clients:
            # The kernel spreads connections over both workers by a hash of their addresses,
            # so 8 all land on one about once in 128 runs: open more until both serve some.
            async with contextlib.AsyncExitStack() as more:
                while len(await relays_serving(db)) < 2 and len(clients) < MAX_CLIENTS:
                    new = await more.enter_async_context(open_client(base))
                    for old in clients:
                        await old.expect(event("insert", "users", identity=new.identity))
                    clients.append(new)
                assert len(await relays_serving(db)) == 2
                rows = dict((await db.execute(
                    "SELECT identity, instance_id FROM pgcall_presence")).rows)
                a = clients[0]
                b = next(c for c in clients if rows[c.identity] != rows[a.identity])
                session_id = await setup_call(a, b, "Video")  # across two workers
                for seq in range(10):
                    await a.send_media("video", video_header(session_id, b.identity, seq), JPEG)
                for seq in range(10):
                    await b.expect(media("video", seq=seq))
                # A worker killed: its clients go offline for the others within 5 s, and a new
                # worker takes its place.
                pids = worker_pids(proc.pid)
                victim_relay = rows[b.identity]
                on_victim = [c for c in clients if rows[c.identity] == victim_relay]
                watcher = next(c for c in clients if rows[c.identity] != victim_relay)
                victim = int((await db.execute(
                    "SELECT pid FROM pgcall_instances WHERE instance_id = $1",
                    [victim_relay])).rows[0][0])
                assert victim in pids
                os.kill(victim, signal.SIGKILL)
                with trio.fail_after(CLEANED_WITHIN_S):
                    for gone in on_victim:
                        await watcher.expect(event("delete", "users", identity=gone.identity))
        await wait_ready(port, db, 2)  # a new worker in the killed one's place
        assert victim not in worker_pids(proc.pid)
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            assert await trio.to_thread.run_sync(proc.wait) == 0
        slots = await db.execute("SELECT count(*) FROM pg_replication_slots "
                                 "WHERE database = current_database() AND active")
        assert slots.rows == [(0,)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
