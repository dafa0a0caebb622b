"""One measured ``pgcall bench`` step against running relays, and the waits around it.

Owns: waiting until the reaper has emptied every frame table, waiting until a number of
walsenders stream (relays ready), the WAL position, and ``bench_step``: the bench as a
subprocess with the CPU time of named process trees (the relays, the PostgreSQL cluster) read
from ``/proc`` just before it starts, when it exits and once the reaper has emptied the tables
after it, the load generator's CPU time, the WAL written, and its ``--json`` figures. Does not
own: starting the relays (``env``) or judging the step (``verdicts``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from pgcall.pg.conn import PgConnection

from ..cluster import child_env
from ..proc import cpu_seconds
from ..sampling import CLK_TCK, Roots, read_ticks
from ..settings import log
from ..step import reaped_children_s

HOT_TABLES = ("video_frames", "audio_frames", "room_video_frames", "room_audio_frames")
LEFT = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in HOT_TABLES)
STREAMING = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
SETTLE_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0
POLL_S = 0.25


async def settle(monitor: PgConnection) -> float:
    """Wait (bounded) until the reaper has emptied (or moved) every frame; seconds waited."""
    t0 = trio.current_time()
    for _ in range(int(SETTLE_TIMEOUT_S / POLL_S)):  # PostgreSQL offers no event for this
        if not (await monitor.execute(LEFT)).rows[0][0]:
            break
        await trio.sleep(POLL_S)
    return trio.current_time() - t0


async def wait_streaming(monitor: PgConnection, count: int) -> None:
    """Wait until exactly ``count`` walsenders stream: every relay (or worker) started has its
    replication stream, and those of relays stopped before are gone."""
    for _ in range(int(READY_TIMEOUT_S / POLL_S)):  # no event for this either
        if int((await monitor.execute(STREAMING)).rows[0][0]) == count:
            return
        await trio.sleep(POLL_S)
    log(f"  (warning: not {count} walsenders streaming after {READY_TIMEOUT_S:g} s)")


async def wal_position(monitor: PgConnection) -> int:
    return int((await monitor.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")).rows[0][0])


@attrs.frozen
class Target:
    """What a step runs against: the relays' URLs (the bench spreads its clients over them),
    the process trees whose CPU is measured, by name, and a connection to the database."""

    urls: tuple[str, ...]
    roots: Roots
    monitor: PgConnection


def _rounded(seconds: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 3) for k, v in seconds.items()}


async def bench_step(target: Target, args: Sequence[str]) -> dict[str, Any]:
    """``pgcall bench --url ... ARGS`` once the tables are empty, measured (see above)."""
    monitor = target.monitor
    await settle(monitor)
    cmd = [sys.executable, "-m", "pgcall", "bench",
           *(a for url in target.urls for a in ("--url", url)), *args]
    wal0, before = await wal_position(monitor), read_ticks(target.roots)
    reaped0, t0 = reaped_children_s(), trio.current_time()
    done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False,
                                  env=child_env())
    t1, at_exit, bench_s = trio.current_time(), read_ticks(target.roots), reaped_children_s()
    wal1 = await wal_position(monitor)
    settle_s = await settle(monitor)
    settled = read_ticks(target.roots)
    lines = [ln for ln in done.stdout.decode(errors="replace").splitlines() if ln.startswith("{")]
    bench = json.loads(lines[-1]) if lines else None
    return {
        "bench_args": list(args), "urls": len(target.urls), "bench_exit": done.returncode,
        "bench": bench,
        "bench_stderr": "" if bench else done.stderr.decode(errors="replace")[-2000:],
        "bench_wall_s": round(t1 - t0, 3), "settle_wall_s": round(settle_s, 3),
        "cpu_s": _rounded({**cpu_seconds(before, at_exit, CLK_TCK), "bench": bench_s - reaped0}),
        "cpu_s_settled": _rounded(cpu_seconds(before, settled, CLK_TCK)),
        "wal_bytes": wal1 - wal0,
    }
