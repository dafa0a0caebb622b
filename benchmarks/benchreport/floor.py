"""The floor: what the database path alone costs, without pgcall and without WebSockets.

Owns: the writer (run in its own process through the entry script's hidden
``--floor-writer JSON`` mode) that inserts the frames of N calls at their rate, one transaction
per frame on a pool, each with a logical message carrying when its INSERT and its COMMIT were
sent; the bare replication consumer in this process that reads them back and records
COMMIT -> decoded and INSERT -> decoded; one floor measurement with its resources; and emptying
the floor's tables afterwards. Does not own: the cluster (``cluster``) or the report's order of
measurements (``run``).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import attrs
import trio

from pgcall.bench.client import stream_phase
from pgcall.bench.stats import Latency
from pgcall.pg.changes import LogicalMessage
from pgcall.pg.conn import PgConnection
from pgcall.pg.pool import Pool
from pgcall.pg.stream import ReplicationStream, open_stream

from .cluster import Cluster, child_env, read_all, stop_process
from .sampling import Sampler, summarize_samples
from .settings import (
    AUDIO_BYTES,
    AUDIO_FPS,
    ENTRY,
    FLOOR_PREFIX,
    FRAME_BYTES,
    POOL_SIZE,
    VIDEO_FPS,
    WARMUP_S,
    Plan,
)

_NOISE = os.urandom(1 << 20)
INSERT = {
    "video": "INSERT INTO video_frames (session_id, from_id, to_id, seq, width, height, jpeg) "
             "VALUES ($1, $2, $3, $4, 640, 360, $5)",
    "audio": "INSERT INTO audio_frames (session_id, from_id, to_id, seq, sample_rate, channels, "
             "rms, pcm16le) VALUES ($1, $2, $3, $4, 16000, 1, 0.1, $5)",
}


# After the INSERT, in its transaction: the writer's stamp and the server's clock (µs since the
# epoch) once the INSERT has been executed, just before the COMMIT.
STAMP_SQL = ("SELECT pg_logical_emit_message(true, $1, $2 || ':' || "
             "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)")


def _payload(kind: str, seq: int) -> bytes:
    size = FRAME_BYTES if kind == "video" else AUDIO_BYTES
    start = (seq * 7919) % (len(_NOISE) - size)
    return _NOISE[start:start + size]


async def floor_writer(dsn: str, calls: int, duration_s: float) -> dict[str, int]:
    """The writer side of the floor, in its own process: per call, video at 15 fps and audio at
    20 fps in both directions, each frame one transaction on a pooled connection, sent in one
    round trip as pgcall sends a batch (``PgConnection.execute_batch``: the INSERT and a
    logical message, one implicit transaction). The message carries when the writer sent the
    transaction and, from the server's clock, when the INSERT had been executed."""
    counts = {"sent": 0, "late": 0}
    pool = Pool(dsn, POOL_SIZE)
    start = trio.current_time() + 0.3

    async def stream(call: int, direction: str, kind: str, fps: int) -> None:
        session = uuid.uuid4()
        ids = (f"floor-{call}-a", f"floor-{call}-b")[::1 if direction == "a>b" else -1]
        # Each stream at its own phase, as the load generator's (``stream_phase``).
        phase = stream_phase(call, "a" if direction == "a>b" else "b", kind, fps)
        for seq in itertools.count():
            due = start + phase + seq / fps
            if due >= start + duration_s:
                return
            if trio.current_time() - due > 0.002:
                counts["late"] += 1
            await trio.sleep_until(due)
            row = (session, *ids, seq, _payload(kind, seq))
            async with pool.connection() as conn:
                stamp = f"{kind}:{seq}:{time.monotonic_ns()}"
                await conn.execute_batch([(INSERT[kind], row), (STAMP_SQL, (FLOOR_PREFIX, stamp))])
            counts["sent"] += 1

    try:
        async with trio.open_nursery() as nursery:
            for call in range(calls):
                for direction in ("a>b", "b>a"):
                    nursery.start_soon(stream, call, direction, "video", VIDEO_FPS)
                    nursery.start_soon(stream, call, direction, "audio", AUDIO_FPS)
        async with pool.connection() as conn:
            await conn.simple(f"SELECT pg_logical_emit_message(true, '{FLOOR_PREFIX}', 'end')")
    finally:
        pool.close()
    return counts


@attrs.define
class FloorSamples:
    """The floor's latencies in µs, per kind: the transaction sent -> decoded (the floor), and
    its INSERT executed -> decoded (the commit, the walsender and the decoding)."""
    sent_us: dict[str, list[int]] = attrs.Factory(lambda: {"video": [], "audio": []})
    inserted_us: dict[str, list[int]] = attrs.Factory(lambda: {"video": [], "audio": []})


def consume(changes: Any, now_ns: int, wall_ns: int, samples: FloorSamples) -> bool:
    """Record the floor latencies of one transaction, decoded at ``now_ns`` (the monotonic
    clock the writer stamps with) and ``wall_ns`` (the wall clock, the server's
    ``clock_timestamp()``); True once the writer's "end" arrived."""
    fps = {"video": VIDEO_FPS, "audio": AUDIO_FPS}
    ended = False
    for change in changes:
        if not (isinstance(change, LogicalMessage) and change.prefix == FLOOR_PREFIX):
            continue
        text = bytes(change.content).decode()
        if text == "end":
            ended = True
            continue
        kind, seq, sent_ns, inserted_us = text.split(":")
        if int(seq) >= fps[kind] * WARMUP_S:
            samples.sent_us[kind].append((now_ns - int(sent_ns)) // 1000)
            samples.inserted_us[kind].append(wall_ns // 1000 - int(inserted_us))
    return ended


async def read_back(stream: ReplicationStream, samples: FloorSamples) -> None:
    """Read the writer's frames back from ``stream`` into ``samples``, until its "end"."""
    async for txn in stream:
        now_ns, wall_ns = time.monotonic_ns(), time.time_ns()
        stream.ack(txn.end_lsn)
        if consume(txn.changes, now_ns, wall_ns, samples):
            return


async def measure_floor(cluster: Cluster, monitor: PgConnection, calls: int,
                        plan: Plan) -> dict[str, Any]:
    samples = FloorSamples()
    out, err = bytearray(), bytearray()
    arg = json.dumps({"dsn": cluster.floor_dsn, "calls": calls, "duration_s": plan.duration_s})
    async with open_stream(cluster.floor_dsn) as stream:  # the slot exists before any insert
        t0 = trio.current_time()
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(ENTRY), "--floor-writer", arg],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=child_env())
        sampler = Sampler({"postgres": (cluster.server.pid, True), "writer": (proc.pid, True),
                           "consumer": (os.getpid(), False)}, monitor)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sampler.run, t0)
                async with trio.open_nursery() as inner:
                    inner.start_soon(read_all, proc.stdout, out)
                    inner.start_soon(read_all, proc.stderr, err)

                    async def watch_writer() -> None:
                        # A writer that fails never sends "end": stop reading then.
                        if await proc.wait() != 0:
                            inner.cancel_scope.cancel()

                    inner.start_soon(watch_writer)
                    with trio.fail_after(plan.duration_s + 60):
                        await read_back(stream, samples)
                await proc.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await stop_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"floor writer failed: {err.decode(errors='replace')[-2000:]}")
    counts = json.loads(out.decode().strip().splitlines()[-1])
    resources = summarize_samples(sampler.samples, WARMUP_S + 1.0, plan.duration_s)
    return {
        "calls": calls, "duration_s": plan.duration_s,
        "rate_per_s": {"video": 2 * VIDEO_FPS * calls, "audio": 2 * AUDIO_FPS * calls},
        "frames_sent": counts["sent"], "late_sends": counts["late"],
        "samples": {k: len(v) for k, v in samples.sent_us.items()},
        "sent_to_decoded_ms": {k: attrs.asdict(Latency.of(v))
                               for k, v in samples.sent_us.items()},
        "inserted_to_decoded_ms": {k: attrs.asdict(Latency.of(v))
                                   for k, v in samples.inserted_us.items()},
        "resources": resources,
    }


async def truncate_floor(cluster: Cluster) -> None:
    """Drop the floor's frames (its stream is closed): they would only weigh on the cache."""
    conn = await PgConnection.connect(cluster.floor_dsn)
    try:
        await conn.simple("TRUNCATE video_frames, audio_frames")
    finally:
        conn.close()
