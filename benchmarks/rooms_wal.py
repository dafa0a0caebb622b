"""WAL written per room frame at several room sizes: the database's work per frame must not grow
with the number of receivers, and this shows whether it does.

Starts a throw-away PostgreSQL (pgcall's embedded code) and one pgcall on it, as
``benchmarks/report.py`` does. Then for each room size K, alone on the machine:

1. waits until the reaper has emptied the room frame tables, runs ``VACUUM`` on them (so no
   autovacuum of earlier dead rows lands in the window) and ``CHECKPOINT`` (so each size starts
   alike: the first change of each page after a checkpoint logs the whole page);
2. reads ``pg_current_wal_lsn()`` and the id sequences of ``room_video_frames`` and
   ``room_audio_frames`` (the rows written);
3. runs ``pgcall bench --rooms R --room-size K --duration D --json``;
4. reads them again once the reaper has deleted the run's frames and a ``VACUUM`` has removed
   them, so a frame's WAL covers its INSERT, its TOAST chunks, its DELETE, its vacuuming and
   the room's setup and leaving (a few kB per room).

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
import sys
from pathlib import Path
from typing import Any

import trio
from benchreport.cluster import open_cluster, open_pgcall
from benchreport.roomwal import WalRun, measure
from benchreport.workdir import scratch_dir

from pgcall.pg.conn import PgConnection, PgError


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
                wal_run = WalRun(args.rooms, args.duration, args.procs)
                for size in args.sizes:
                    record = await measure(monitor, f"ws://127.0.0.1:{port}", size, wal_run)
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
