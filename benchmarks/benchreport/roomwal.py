"""WAL written per room frame at one room size: the measuring part of
``benchmarks/rooms_wal.py``, shared with ``benchmarks/scale.py``.

Owns: waiting for the reaper to empty the room frame tables, the marks read before and after a
run (the WAL insert position, the room frame rows ever written), ``pg_walinspect``'s record
counts between them, running ``pgcall bench --rooms R --room-size K`` once and the record of
one room size. Does not own: starting PostgreSQL or pgcall (``cluster``), the command lines or
the tables (``benchmarks/rooms_wal.py``, ``scale``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import attrs
import trio

from pgcall.pg.conn import PgConnection, PgError
from pgcall.pg.walproto import Lsn

from .cluster import child_env

SETTLE_TIMEOUT_S = 30.0
POLL_S = 0.5
ROWS = ("SELECT coalesce(pg_sequence_last_value('room_video_frames_id_seq'), 0)"
        " + coalesce(pg_sequence_last_value('room_audio_frames_id_seq'), 0)")
VACUUM = "VACUUM room_video_frames, room_audio_frames"
LEFT = "SELECT (SELECT count(*) FROM room_video_frames) + (SELECT count(*) FROM room_audio_frames)"


@attrs.frozen
class WalRun:
    """The bench run of each room size: how many rooms, for how long, over how many
    processes."""

    rooms: int = 1
    duration_s: float = 10.0
    procs: int = 1

    def bench_args(self, size: int) -> list[str]:
        return ["--rooms", str(self.rooms), "--room-size", str(size), "--duration",
                f"{self.duration_s:g}", "--procs", str(self.procs), "--json"]


async def settle(monitor: PgConnection) -> None:
    """Wait (bounded) until the reaper has deleted every room frame."""
    for _ in range(int(SETTLE_TIMEOUT_S / POLL_S)):  # PostgreSQL offers no event for this
        if not (await monitor.execute(LEFT)).rows[0][0]:
            return
        await trio.sleep(POLL_S)


async def marks(monitor: PgConnection) -> tuple[int, int]:
    """(the WAL insert position, room frame rows ever written)."""
    lsn = (await monitor.execute("SELECT pg_current_wal_lsn()::text")).rows[0][0]
    return int(Lsn.parse(lsn)), int((await monitor.execute(ROWS)).rows[0][0])


async def wal_stats(monitor: PgConnection, start: int, end: int) -> tuple[int, int] | None:
    """(WAL records, full-page-image bytes) between two positions, if pg_walinspect works."""
    try:
        rows = (await monitor.execute(
            "SELECT sum(count)::bigint, sum(fpi_size)::bigint FROM pg_get_wal_stats($1, $2)",
            [str(Lsn(start)), str(Lsn(end))])).rows
    except PgError:
        return None
    return int(rows[0][0] or 0), int(rows[0][1] or 0)


async def bench(url: str, size: int, run: WalRun) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pgcall", "bench", "--url", url, *run.bench_args(size)]
    done = await trio.run_process(cmd, capture_stdout=True, stderr=subprocess.STDOUT,
                                  check=False, env=child_env())
    lines = [ln for ln in done.stdout.decode(errors="replace").splitlines()
             if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the bench printed no figures:\n{done.stdout.decode()[-2000:]}")
    return dict(json.loads(lines[-1]))


async def measure(monitor: PgConnection, url: str, size: int, run: WalRun) -> dict[str, Any]:
    """One room size: once the tables are empty, VACUUM them and CHECKPOINT; the bench; and
    the WAL and rows written from before it to after the reaper has deleted its frames and a
    VACUUM has removed them. Vacuuming on both sides charges each size its own frames' vacuum
    and nothing else: an autovacuum of an earlier run's dead rows landing in the window would
    add its full-page images (tens of MB after a capacity sweep) to this size."""
    await settle(monitor)
    await monitor.simple(VACUUM)
    await monitor.simple("CHECKPOINT")
    lsn0, rows0 = await marks(monitor)
    result = await bench(url, size, run)
    await settle(monitor)
    await monitor.simple(VACUUM)
    lsn1, rows1 = await marks(monitor)
    frames = result["frames_sent"] or 1
    wal = lsn1 - lsn0
    stats = await wal_stats(monitor, lsn0, lsn1)
    return {
        "room_size": size, "rooms": run.rooms, "frames_sent": result["frames_sent"],
        "frames_sent_by_stream": result["frames_sent_by_stream"], "rows": rows1 - rows0,
        "frames_received": result["frames_received"], "payload_bytes": result["payload_bytes_sent"],
        "wal_bytes": wal, "wal_records": stats[0] if stats else None,
        "fpi_bytes": stats[1] if stats else None,
        "rows_per_frame": (rows1 - rows0) / frames,
        "deliveries_per_frame": result["frames_received"] / frames,
        "payload_per_frame": result["payload_bytes_sent"] / frames,
        "wal_per_frame": wal / frames,
        "overhead_per_frame": (wal - result["payload_bytes_sent"]) / frames,
        "errors": result["errors"], "verdict": result["verdict"], "bench": result,
    }
