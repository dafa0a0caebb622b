"""What recording costs on disk, and what the tables look like after a long recording.

Starts a throw-away PostgreSQL (pgcall's embedded code) and one pgcall on it (``--retain``
at its default, 5 s, the reaper every 2 s, autovacuum at PostgreSQL's defaults), then runs
``pgcall bench --record`` for one scenario: one 1:1 video call (``--scenario call``) or one
room of 4 (``--scenario room4``), every frame recorded. Every ``--sample-every`` seconds it
prints, and at the end tabulates:

* the size of ``recorded_frames`` (heap, TOAST, indexes) and the recorded payload bytes;
* the live frame tables (``video_frames``, ``audio_frames``, ``room_*``): total size with their
  TOAST, live and dead tuples, autovacuum runs - whether the hot path stays small while the
  reaper moves and deletes a stream of frames for the whole run;

and at the end, once the reaper has moved the last frames: storage per minute of recording,
``pgstattuple`` of the tables when the extension is there, and what deleting the recording
and a plain ``VACUUM`` give back.

Not part of the test suite. From the repository root, alone on the machine for figures that
involve time: ``python3 benchmarks/recording_storage.py --scenario call --duration 3600
[--sample-every 300] [--frame-bytes 30000] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio
from benchreport.cluster import child_env, open_cluster, open_pgcall
from benchreport.workdir import scratch_dir

from pgcall.pg.conn import PgConnection, PgError

HOT_TABLES = ("video_frames", "audio_frames", "room_video_frames", "room_audio_frames")
SETTLE_TIMEOUT_S = 60.0
POLL_S = 1.0
SCENARIOS = {
    "call": ["--calls", "1"],
    "room4": ["--rooms", "1", "--room-size", "4"],
}
TABLE_STATS = """
SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
       coalesce(pg_total_relation_size(c.reltoastrelid), 0), pg_indexes_size(c.oid),
       s.n_live_tup, s.n_dead_tup, s.autovacuum_count, s.vacuum_count,
       coalesce(ts.n_dead_tup, 0)
FROM pg_class c
JOIN pg_stat_user_tables s ON s.relid = c.oid
LEFT JOIN pg_stat_all_tables ts ON ts.relid = c.reltoastrelid
WHERE c.relname = ANY($1)
"""
STAT_KEYS = ("total", "heap", "toast", "indexes", "live", "dead", "autovacuums", "vacuums",
             "toast_dead")


async def table_stats(conn: PgConnection) -> dict[str, dict[str, int]]:
    res = await conn.execute(TABLE_STATS, [[*HOT_TABLES, "recorded_frames"]])
    return {str(r[0]): {k: int(v or 0) for k, v in zip(STAT_KEYS, r[1:], strict=True)}
            for r in res.rows}


async def recorded(conn: PgConnection) -> tuple[int, int, float]:
    """(frames, payload bytes, seconds spanned) of every recorded frame."""
    row = (await conn.execute(
        "SELECT count(*), coalesce(sum(length(payload)), 0), "
        "coalesce(extract(epoch FROM max(at) - min(at)), 0) FROM recorded_frames")).rows[0]
    return int(row[0]), int(row[1]), float(row[2])


async def hot_rows(conn: PgConnection) -> int:
    return int((await conn.execute(
        "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in HOT_TABLES))).rows[0][0])


async def settle(conn: PgConnection) -> None:
    """Wait (bounded) until the reaper has moved or deleted every frame of the run."""
    for _ in range(int(SETTLE_TIMEOUT_S / POLL_S)):  # PostgreSQL offers no event for this
        if not await hot_rows(conn):
            return
        await trio.sleep(POLL_S)


async def pgstattuple(conn: PgConnection, table: str) -> dict[str, float] | None:
    try:
        res = await conn.execute("SELECT table_len, tuple_percent, dead_tuple_percent, "
                                 "free_percent FROM pgstattuple($1)", [table])
    except PgError:
        return None
    keys = ("table_len", "tuple_percent", "dead_tuple_percent", "free_percent")
    return dict(zip(keys, (float(v) for v in res.rows[0]), strict=True))


async def sampler(conn: PgConnection, every_s: float, started: float,
                  samples: list[dict[str, Any]]) -> None:
    while True:
        await trio.sleep(every_s)
        frames, payload, _ = await recorded(conn)
        sample = {"t_s": round(time.monotonic() - started), "recorded_frames": frames,
                  "recorded_payload": payload, "tables": await table_stats(conn)}
        samples.append(sample)
        print(json.dumps(sample), file=sys.stderr, flush=True)


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pgcall", "bench", "--url", url, *SCENARIOS[args.scenario],
           "--duration", f"{args.duration:g}", "--frame-bytes", str(args.frame_bytes),
           "--record", "--json"]
    done = await trio.run_process(cmd, capture_stdout=True, stderr=subprocess.STDOUT,
                                  check=False, env=child_env())
    lines = [ln for ln in done.stdout.decode(errors="replace").splitlines()
             if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the bench printed no figures:\n{done.stdout.decode()[-2000:]}")
    return dict(json.loads(lines[-1]))


async def after_delete(conn: PgConnection) -> dict[str, Any]:
    """Delete every recording (its frames go by the cascade), then VACUUM: the space becomes
    free for new rows but stays in the files (only VACUUM FULL would shrink them)."""
    before = (await table_stats(conn))["recorded_frames"]
    t0 = time.monotonic()
    await conn.execute("DELETE FROM recordings")
    deleted_s = time.monotonic() - t0
    t0 = time.monotonic()
    await conn.simple("VACUUM recorded_frames")
    vacuum_s = time.monotonic() - t0
    after = (await table_stats(conn))["recorded_frames"]
    return {"total_before": before["total"], "delete_s": round(deleted_s, 2),
            "vacuum_s": round(vacuum_s, 2), "total_after_vacuum": after["total"],
            "pgstattuple_after_vacuum": await pgstattuple(conn, "recorded_frames")}


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    async with open_cluster(workdir) as cluster:
        conn = await PgConnection.connect(cluster.dsn)
        try:
            try:
                await conn.simple("CREATE EXTENSION IF NOT EXISTS pgstattuple")
            except PgError as exc:
                print(f"pgstattuple unavailable ({exc})", file=sys.stderr)
            async with open_pgcall(cluster.dsn, "table", workdir / "pgcall.log") as (_, port):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sampler, conn, args.sample_every, time.monotonic(),
                                       samples)
                    result = await bench(f"ws://127.0.0.1:{port}", args)
                    nursery.cancel_scope.cancel()
                await settle(conn)
                frames, payload, span_s = await recorded(conn)
                tables = await table_stats(conn)
                stat = {t: await pgstattuple(conn, t) for t in ("recorded_frames", *HOT_TABLES)}
                deleted = await after_delete(conn)
        finally:
            conn.close()
    minutes = max(span_s, 1.0) / 60
    stored = tables["recorded_frames"]["total"]
    return {
        "scenario": args.scenario, "duration_s": args.duration, "frame_bytes": args.frame_bytes,
        "bench": {k: result.get(k) for k in ("verdict", "frames_sent", "frames_received",
                                             "errors", "latency_ms", "speaker_latency_ms")},
        "recorded_frames": frames, "recorded_payload_bytes": payload,
        "recorded_span_s": round(span_s, 1), "recorded_frames_total_bytes": stored,
        "mb_per_minute": round(stored / minutes / 1e6, 2),
        "payload_mb_per_minute": round(payload / minutes / 1e6, 2),
        "overhead_percent": round(100 * (stored - payload) / max(payload, 1), 1),
        "tables_at_end": tables, "pgstattuple_at_end": stat, "after_delete": deleted,
        "samples": samples,
    }


def summary(r: dict[str, Any]) -> str:
    lines = [f"scenario {r['scenario']}, {r['duration_s']:g} s, video frames of "
             f"{r['frame_bytes']} bytes: {r['bench']['verdict']}",
             f"recorded: {r['recorded_frames']} frames over {r['recorded_span_s']} s, "
             f"payload {r['payload_mb_per_minute']} MB/min, on disk {r['mb_per_minute']} MB/min "
             f"(+{r['overhead_percent']}% heap, TOAST and index overhead)",
             "", "| t (s) | recorded_frames MB | hot tables MB (total) | hot dead tuples "
             "(heap/TOAST) | hot autovacuums |", "|---:|---:|---:|---:|---:|"]
    for s in r["samples"]:
        hot = [s["tables"][t] for t in HOT_TABLES if t in s["tables"]]
        lines.append(f"| {s['t_s']} | {s['tables']['recorded_frames']['total'] / 1e6:.1f} | "
                     f"{sum(h['total'] for h in hot) / 1e6:.1f} | "
                     f"{sum(h['dead'] for h in hot)}/{sum(h['toast_dead'] for h in hot)} | "
                     f"{sum(h['autovacuums'] for h in hot)} |")
    d = r["after_delete"]
    lines += ["", f"DELETE of the recording: {d['delete_s']} s; VACUUM: {d['vacuum_s']} s; "
              f"recorded_frames {d['total_before'] / 1e6:.1f} MB before, "
              f"{d['total_after_vacuum'] / 1e6:.1f} MB after (free for reuse: "
              f"{(d['pgstattuple_after_vacuum'] or {}).get('free_percent', '?')}%)"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="call")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--sample-every", type=float, default=60.0)
    parser.add_argument("--frame-bytes", type=int, default=30000)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with scratch_dir("pgrec-") as workdir:
        record = trio.run(run, args, workdir)
    print(summary(record))
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
