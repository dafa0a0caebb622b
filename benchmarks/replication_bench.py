"""Benchmark of pgcall's replication engine: backlog drain throughput and live latency.

Starts a throw-away embedded PostgreSQL (the same code pgcall runs without ``--dsn``), migrates
a database, and prints two figures next to the targets they are compared with:

(a) drain: a stream is opened first (so its slot exists), then left unread while K frames of
    30 KB random bytes are inserted into ``video_frames``, one transaction per row (as a
    session inserts them). Then the stream is read until all K have been decoded; the figure
    is frames decoded per second by one stream.
(b) live: frames are inserted at a fixed rate while the stream is read in the same process.
    Each transaction carries, in a transactional logical message, the ``time.time_ns()``
    taken just before its COMMIT was sent; the latency is from then to the moment the stream
    hands the decoded transaction out. ``synchronous_commit`` is on (the walsender ships only
    flushed WAL, so ``off`` would add up to the WAL writer's 200 ms delay).

Not part of the test suite. Run from the repository root:
``python benchmarks/replication_bench.py [--frames 3000] [--rate 15] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import trio

from pgcall.pg.binaries import find_bindir
from pgcall.pg.changes import Change, LogicalMessage
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import open_embedded
from pgcall.pg.migrate import migrate
from pgcall.pg.stream import ReplicationStream, open_stream

FRAME_BYTES = 30 * 1024
TARGET_DRAIN_FPS = 5000
TARGET_P50_MS = 3.0
WARMUP_S = 1.0  # live samples of the first second are left out (first Relation, plans)
INSERT = ("INSERT INTO video_frames (session_id, from_id, to_id, seq, width, height, jpeg)"
          " VALUES ($1, 'bench-a', 'bench-b', $2, 640, 360, $3)")


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
            f"Python {platform.python_version()}")


async def fill_backlog(writer: PgConnection, stream: ReplicationStream, frames: int) -> None:
    """Insert ``frames`` frames, one transaction each, while nobody reads ``stream``."""
    session = uuid.uuid4()
    t0 = time.perf_counter()
    for seq in range(frames):
        await writer.execute(INSERT, [session, seq, os.urandom(FRAME_BYTES)], prepare=True)
    insert_s = time.perf_counter() - t0
    print(f"  inserted {frames} frames of {FRAME_BYTES} B, one transaction each, "
          f"in {insert_s:.1f} s ({frames / insert_s:.0f}/s) with no reader")
    # How much of the backlog the walsender has already decoded and sent (into socket
    # buffers) before we start reading: the rest is decoded during the timed drain.
    unsent, unacked = (await writer.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), r.sent_lsn),"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)"
        " FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid"
        " WHERE s.slot_name = $1", [stream.slot]
    )).rows[0]
    print(f"  backlog at start: {float(unacked) / 1e6:.0f} MB of WAL unacknowledged, "
          f"{float(unsent) / 1e6:.0f} MB of it not yet sent by the walsender")


async def read_backlog(stream: ReplicationStream, frames: int) -> tuple[float, float]:
    """Read until ``frames`` frames are decoded; (wall seconds, CPU seconds of this process)."""
    seen = size_ok = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    with trio.fail_after(120):
        async for txn in stream:
            for change in txn.changes:
                if isinstance(change, Change) and change.table == "video_frames":
                    seen += 1
                    size_ok += change.row is not None and len(change.row["jpeg"]) == FRAME_BYTES
            stream.ack(txn.end_lsn)
            if seen >= frames:
                break
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert size_ok == frames, f"{frames - size_ok} frames came back with the wrong size"
    return wall, cpu


async def drain(dsn: str, frames: int) -> None:
    writer = await PgConnection.connect(dsn)
    try:
        async with open_stream(dsn) as stream:
            # The slot exists from here on: everything inserted below waits in it for us.
            await fill_backlog(writer, stream, frames)
            wall, cpu = await read_backlog(stream, frames)
    finally:
        writer.close()
    fps = frames / wall
    print(f"  drained {frames} frames in {wall * 1000:.0f} ms: {fps:,.0f} frames/s, "
          f"{frames * FRAME_BYTES / wall / 1e6:.0f} MB/s "
          f"(this process used {cpu / wall * 100:.0f}% of one core meanwhile)")
    print(f"  target >= {TARGET_DRAIN_FPS:,} frames/s: "
          f"{'met' if fps >= TARGET_DRAIN_FPS else 'NOT met'}")


async def drain_fairness(dsn: str, frames: int) -> None:
    """The same drain with another task in the trio loop: how long it waits for its turn.
    (A reader that never yields would stall every WebSocket of the process meanwhile.)"""
    writer = await PgConnection.connect(dsn)
    gaps: list[float] = []
    try:
        async with open_stream(dsn) as stream:
            await fill_backlog(writer, stream, frames)
            async with trio.open_nursery() as nursery:

                async def other_task() -> None:
                    last = time.perf_counter()
                    while True:
                        await trio.lowlevel.checkpoint()
                        now = time.perf_counter()
                        gaps.append(now - last)
                        last = now

                nursery.start_soon(other_task)
                wall, _ = await read_backlog(stream, frames)
                nursery.cancel_scope.cancel()
    finally:
        writer.close()
    gaps.sort()
    print(f"  drained {frames} frames in {wall * 1000:.0f} ms with another task running: "
          f"it got {len(gaps)} turns, longest wait {gaps[-1] * 1000:.2f} ms, "
          f"p99 {gaps[int(len(gaps) * 0.99)] * 1000:.2f} ms")


async def live(dsn: str, rate: float, seconds: float) -> None:
    session = uuid.uuid4()
    count = int(rate * seconds)
    commit_ns: list[int] = []  # per sample: latency commit-sent -> decoded, ns
    insert_ns: list[int] = []  # per sample: INSERT sent -> decoded, ns (for context)
    started_insert: dict[int, int] = {}
    done = trio.Event()

    async def read(stream_ready: trio.Event) -> None:
        async with open_stream(dsn) as stream:
            stream_ready.set()
            async for txn in stream:
                now = time.time_ns()
                stream.ack(txn.end_lsn)
                for change in txn.changes:
                    if isinstance(change, LogicalMessage) and change.prefix == "bench":
                        seq_text, sent_text = bytes(change.content).decode().split(":")
                        seq = int(seq_text)
                        if seq >= rate * WARMUP_S:
                            commit_ns.append(now - int(sent_text))
                            insert_ns.append(now - started_insert[seq])
                        if seq == count - 1:
                            done.set()
                            return

    writer = await PgConnection.connect(dsn)
    try:
        async with trio.open_nursery() as nursery:
            ready = trio.Event()
            nursery.start_soon(read, ready)
            await ready.wait()
            start = trio.current_time()
            for seq in range(count):
                await trio.sleep_until(start + seq / rate)
                payload = os.urandom(FRAME_BYTES)
                started_insert[seq] = time.time_ns()
                await writer.simple("BEGIN")
                await writer.execute(INSERT, [session, seq, payload], prepare=True)
                sent = time.time_ns()
                # The message and the COMMIT go in one round trip, so ``sent`` is taken just
                # before the COMMIT leaves.
                await writer.simple(f"SELECT pg_logical_emit_message(true, 'bench',"
                                    f" '{seq}:{sent}'); COMMIT")
            with trio.fail_after(30):
                await done.wait()
    finally:
        writer.close()

    def ms(samples: list[int]) -> tuple[float, float, float]:
        q = statistics.quantiles(samples, n=100, method="inclusive")
        return q[49] / 1e6, q[94] / 1e6, q[98] / 1e6

    p50, p95, p99 = ms(commit_ns)
    i50, i95, i99 = ms(insert_ns)
    print(f"  {len(commit_ns)} frames of {FRAME_BYTES} B at {rate:g}/s for {seconds:g} s "
          f"(first {WARMUP_S:g} s left out)")
    print(f"  COMMIT sent -> change decoded: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
          f"p99 {p99:.2f} ms, max {max(commit_ns) / 1e6:.2f} ms")
    print(f"  INSERT sent -> change decoded: p50 {i50:.2f} ms, p95 {i95:.2f} ms, "
          f"p99 {i99:.2f} ms")
    print(f"  target p50 <= {TARGET_P50_MS:g} ms: {'met' if p50 <= TARGET_P50_MS else 'NOT met'}")


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pgbench-"))
    try:
        async with open_embedded(data_dir, find_bindir(None),
                                 extra_settings={"synchronous_commit": "on"}) as server:
            admin = await PgConnection.connect(server.dsn)
            try:
                await admin.simple("CREATE DATABASE bench")
                version = (await admin.execute("SHOW server_version")).rows[0][0]
                sync = (await admin.execute("SHOW synchronous_commit")).rows[0][0]
            finally:
                admin.close()
            dsn = server.dsn.replace("dbname=postgres", "dbname=bench")
            conn = await PgConnection.connect(dsn)
            try:
                await migrate(conn)
            finally:
                conn.close()

            print(f"pgcall replication benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
            print(f"machine: {machine()}")
            print(f"PostgreSQL {version} (embedded, synchronous_commit={sync})")
            print("(a) drain of a backlog by one stream")
            await drain(dsn, args.frames)
            print("(a') the same drain, sharing the trio loop with another task")
            await drain_fairness(dsn, args.frames)
            print("(b) live latency")
            await live(dsn, args.rate, args.seconds)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000, help="backlog size for (a)")
    parser.add_argument("--rate", type=float, default=15.0, help="inserts per second for (b)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of (b)")
    trio.run(main, parser.parse_args())
    sys.exit(0)
