"""WAL written per room frame at several room sizes: the database's work per frame must not grow
with the number of receivers, and this shows whether it does.

Starts a throw-away PostgreSQL (pgcall's embedded code) and one pgcall on it, as
``benchmarks/report.py`` does. Then for each room size K, alone on the machine:

1. waits until the reaper has emptied the room frame tables, and runs ``CHECKPOINT`` (so each
   size starts alike: the first change of each page after a checkpoint logs the whole page);
2. reads ``pg_current_wal_lsn()`` and the id sequences of ``room_video_frames`` and
   ``room_audio_frames`` (the rows written);
3. runs ``pgcall bench --rooms R --room-size K --duration D --json``;
4. reads them again once the reaper has deleted the run's frames, so a frame's WAL covers its
   INSERT, its TOAST chunks, its DELETE and the room's setup and leaving (a few kB per room).

The table shows, per frame sent: rows written (1.0 means one row whatever the receivers),
deliveries (how many receivers got it: this grows with K), payload bytes, WAL bytes, WAL bytes
beyond the payload, and WAL records and full-page-image bytes when ``pg_walinspect`` can be
installed. A larger room sends mostly thumbnails, so payload and WAL per frame fall with K; the
overhead column is the figure to compare.

Not part of the test suite. From the repository root, alone on the machine:
``python3 benchmarks/rooms_wal.py [--sizes 2,4,8,16] [--rooms 1] [--duration 10]
[--media-path table] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from benchreport.cluster import child_env, open_cluster, open_pgcall
from benchreport.workdir import scratch_dir

from pgcall.pg.conn import PgConnection, PgError
from pgcall.pg.walproto import Lsn

SETTLE_TIMEOUT_S = 30.0
POLL_S = 0.5
ROWS = ("SELECT coalesce(pg_sequence_last_value('room_video_frames_id_seq'), 0)"
        " + coalesce(pg_sequence_last_value('room_audio_frames_id_seq'), 0)")
LEFT = "SELECT (SELECT count(*) FROM room_video_frames) + (SELECT count(*) FROM room_audio_frames)"


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


async def bench(url: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pgcall", "bench", "--url", url, "--rooms", str(args.rooms),
           "--room-size", str(size), "--duration", f"{args.duration:g}", "--procs",
           str(args.procs), "--json"]
    done = await trio.run_process(cmd, capture_stdout=True, stderr=subprocess.STDOUT,
                                  check=False, env=child_env())
    lines = [ln for ln in done.stdout.decode(errors="replace").splitlines()
             if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the bench printed no figures:\n{done.stdout.decode()[-2000:]}")
    return dict(json.loads(lines[-1]))


async def measure(monitor: PgConnection, url: str, size: int,
                  args: argparse.Namespace) -> dict[str, Any]:
    await settle(monitor)
    await monitor.simple("CHECKPOINT")
    lsn0, rows0 = await marks(monitor)
    result = await bench(url, size, args)
    await settle(monitor)
    lsn1, rows1 = await marks(monitor)
    frames = result["frames_sent"] or 1
    wal = lsn1 - lsn0
    stats = await wal_stats(monitor, lsn0, lsn1)
    return {
        "room_size": size, "rooms": args.rooms, "frames_sent": result["frames_sent"],
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


def table(records: list[dict[str, Any]]) -> str:
    def opt(value: int | None, frames: int) -> str:
        return "-" if value is None else f"{value / max(frames, 1):.1f}"

    lines = ["| K | frames sent (full/thumb/audio) | rows/frame | deliveries/frame | "
             "payload B/frame | WAL B/frame | WAL beyond payload B/frame | WAL records/frame | "
             "FPI B/frame | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        s, n = r["frames_sent_by_stream"], r["frames_sent"]
        lines.append(
            f"| {r['room_size']} | {n} ({s['full']}/{s['thumb']}/{s['audio']}) | "
            f"{r['rows_per_frame']:.3f} | {r['deliveries_per_frame']:.2f} | "
            f"{r['payload_per_frame']:.0f} | {r['wal_per_frame']:.0f} | "
            f"{r['overhead_per_frame']:.0f} | {opt(r['wal_records'], n)} | "
            f"{opt(r['fpi_bytes'], n)} | {r['errors']} |")
    return "\n".join(lines)


async def run(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    records = []
    async with open_cluster(workdir) as cluster:
        monitor = await PgConnection.connect(cluster.dsn)
        try:
            try:
                await monitor.simple("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            except PgError as exc:
                print(f"pg_walinspect unavailable ({exc}): no record counts", file=sys.stderr)
            async with open_pgcall(cluster.dsn, args.media_path, workdir / "pgcall.log") as (
                    _, port):
                for size in args.sizes:
                    record = await measure(monitor, f"ws://127.0.0.1:{port}", size, args)
                    print(f"room size {size}: {record['wal_per_frame']:.0f} WAL bytes/frame, "
                          f"{record['verdict']}", file=sys.stderr, flush=True)
                    records.append(record)
        finally:
            monitor.close()
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,8,16",
                        type=lambda t: [int(x) for x in t.split(",")])
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--media-path", choices=("table", "message"), default="table")
    parser.add_argument("--json", type=Path, default=None, help="also write the records here")
    args = parser.parse_args()
    with scratch_dir("pgwal-") as workdir:
        records = trio.run(run, args, workdir)
    print(f"WAL per room frame, {args.rooms} room(s) per size, {args.duration:g} s, "
          f"--media-path {args.media_path}\n")
    print(table(records))
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
