"""The reproducible latency and capacity report of pgcall: ``docs/benchmarks.{md,png,json}``.

Owns: one whole measurement run and its write-up. It starts a throw-away PostgreSQL (pgcall's
own embedded code, in a temporary directory) and pgcall as a subprocess on it, then

1. the floor: a bare replication consumer (no pgcall, no WebSocket) reads back 30 KB frames that
   a separate writer process inserts, one transaction per frame on a pool of connections, at
   the rate of 1 call and of 10 calls; the latency is COMMIT sent -> change decoded;
2. the sweep: ``pgcall bench`` with 1, 2, 5, 10, 15, 20, 25, 30, 40, ... calls until a step
   breaks (video p99 > 100 ms or a stream below 14.5 fps) and one step more, sampling the CPU
   of pgcall, of the whole PostgreSQL cluster and of the load generator from ``/proc``,
   pgcall's RSS, and the WAL written (``pg_current_wal_lsn()``);
3. the media paths: 1, 10 and 20 calls again with pgcall restarted with ``--media-path
   message``;

and writes every raw figure to ``benchmarks.json``, a chart to ``benchmarks.png`` and the
report, generated from those figures only, to ``benchmarks.md``. Does not own: the load
generator (``pgcall.bench``) or anything pgcall does.

Run from the repository root on an otherwise idle machine: ``python3 benchmarks/report.py``
(about ten minutes). ``--quick`` runs 1 and 2 calls for 5 s to check the script;
``--render-only`` rewrites the .md and .png from an existing ``benchmarks.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import trio

import pgcall
from pgcall.bench.stats import Latency
from pgcall.pg.binaries import find_bindir
from pgcall.pg.changes import LogicalMessage
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import EmbeddedPostgres, open_embedded
from pgcall.pg.migrate import migrate
from pgcall.pg.pool import Pool
from pgcall.pg.stream import open_stream

SELF = Path(__file__).resolve()
REPO = SELF.parent.parent
HOST = "127.0.0.1"
MAX_P99_MS = 100.0  # a step holds with video p99 <= this ...
MIN_FPS = 14.5  # ... and every video stream delivering at least this
VIDEO_FPS, AUDIO_FPS = 15, 20  # per direction, as the bench sends
FRAME_BYTES, AUDIO_BYTES = 30000, 1600
POOL_SIZE = 8  # pgcall's default pool (config.Config.pool_size); the floor writer uses as many
SAMPLE_INTERVAL_S = 0.5
WARMUP_S = 1.0  # floor samples of the first second are left out (first plans, relation cache)
SETTLE_TIMEOUT_S = 20.0  # between steps, wait up to this for the reaper to empty the tables
MAX_CALLS = 200
FLOOR_PREFIX = "pgcall.floor"
PG_DBNAME, FLOOR_DBNAME = "pgcall", "floor"

# pg-relay on the same class of machine (2 cores, load generator on the same box):
# calls -> (p50, p99) ms; it collapsed at 12 calls with a p50 of 1.2 s.
PG_RELAY = {1: (4.3, 9.7), 5: (5.1, 16.0), 10: (12.5, 74.0)}
PG_RELAY_COLLAPSE = (12, 1200.0)
PG_RELAY_CPU = {"PostgreSQL": 74, "load client": 61, "relay": 56}  # % of one core


@attrs.frozen
class Plan:
    quick: bool
    duration_s: float
    ramp_s: float
    procs: int
    floor_calls: tuple[int, ...]
    compare_calls: tuple[int, ...]
    fixed_sweep: tuple[int, ...] | None  # None: sweep until a step breaks, then one more


FULL = Plan(False, 15.0, 2.0, 2, (1, 10), (1, 10, 20), None)
QUICK = Plan(True, 5.0, 0.5, 2, (1, 2), (1, 2), (1, 2))


def sweep_calls() -> Iterator[int]:
    yield from (1, 2, 5, 10, 15, 20, 25, 30)
    yield from range(40, MAX_CALLS + 1, 10)


def child_env() -> dict[str, str]:
    """Subprocesses import pgcall from this checkout."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- /proc sampling ---------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, own CPU ticks, reaped children's CPU ticks) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()  # the name may hold spaces and parentheses
    ppid, utime, stime, cutime, cstime = (int(fields[i]) for i in (1, 11, 12, 13, 14))
    return ppid, utime + stime, cutime + cstime


def process_table() -> dict[int, tuple[int, int, int]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := read_stat(int(name))) is not None:
            table[int(name)] = st
    return table


def tree_ticks(table: dict[int, tuple[int, int, int]], root: int) -> int | None:
    """CPU ticks of a process and all its descendants, living or reaped: a child that exits
    moves its ticks into its parent's reaped-children count, so the sum never goes back."""
    if root not in table:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1] + table[pid][2]
        todo.extend(children.get(pid, ()))
    return total


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler:
    """Every ``SAMPLE_INTERVAL_S``: CPU ticks of named processes (own, or with descendants),
    the RSS of one of them, and the cluster's WAL position."""

    def __init__(self, roots: dict[str, tuple[int, bool]], wal: PgConnection,
                 rss_of: str | None = None) -> None:
        self.roots, self.wal, self.rss_of = roots, wal, rss_of
        self.samples: list[dict[str, Any]] = []

    async def take(self, t0: float) -> None:
        t = trio.current_time() - t0
        table = process_table()
        ticks = {}
        for name, (pid, tree) in self.roots.items():
            st = table.get(pid)
            ticks[name] = tree_ticks(table, pid) if tree else (st[1] if st else None)
        rss = rss_kib(self.roots[self.rss_of][0]) if self.rss_of else None
        lsn = (await self.wal.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")).rows[0][0]
        self.samples.append({"t": round(t, 3), "ticks": ticks, "rss_kib": rss, "wal": lsn})

    async def run(self, t0: float) -> None:
        for k in itertools.count():
            await trio.sleep_until(t0 + k * SAMPLE_INTERVAL_S)
            await self.take(t0)


def summarize_samples(samples: list[dict[str, Any]], w0: float, w1: float) -> dict[str, Any]:
    """CPU % of one core per process and WAL bytes/s between the first and the last sample
    inside [w0, w1] (seconds since the start); the whole span if the window holds < 2."""
    inside = [s for s in samples if w0 <= s["t"] <= w1]
    if len(inside) < 2:
        inside = samples
    out: dict[str, Any] = {"window_s": [inside[0]["t"], inside[-1]["t"]] if inside else None}
    if len(inside) < 2:
        return out
    names = inside[0]["ticks"].keys()
    for name in names:
        have = [s for s in inside if s["ticks"].get(name) is not None]
        if len(have) >= 2 and have[-1]["t"] > have[0]["t"]:
            span = have[-1]["t"] - have[0]["t"]
            used = (have[-1]["ticks"][name] - have[0]["ticks"][name]) / CLK_TCK
            out[f"{name}_cpu_percent"] = round(100 * used / span, 1)
        else:
            out[f"{name}_cpu_percent"] = None
    span = inside[-1]["t"] - inside[0]["t"]
    out["wal_bytes_per_s"] = round((inside[-1]["wal"] - inside[0]["wal"]) / span)
    rss = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
    if rss:
        out["rss_mib_max"] = round(max(rss) / 1024, 1)
        out["rss_mib_end"] = round(rss[-1] / 1024, 1)
    return out


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def read_all(stream: trio.abc.ReceiveStream | None, into: bytearray) -> None:
    if stream is not None:
        async for chunk in stream:
            into += chunk


async def stop_process(proc: trio.Process, timeout_s: float = 10.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(timeout_s):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def http_status(port: int, path: str) -> int | None:
    try:
        stream = await trio.open_tcp_stream(HOST, port)
    except OSError:
        return None
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        head = await stream.receive_some(4096)
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _append_fd(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.asynccontextmanager
async def open_pgcall(dsn: str, media_path: str, log_path: Path) -> AsyncIterator[
        tuple[trio.Process, int]]:
    """pgcall on a free port, once /healthz answers 200; SIGTERM on the way out."""
    port = free_port()
    cmd = [sys.executable, "-m", "pgcall", "serve", "--dsn", dsn, "--host", HOST,
           "--port", str(port), "--log-level", "warning", "--media-path", media_path]
    fd = _append_fd(log_path)
    try:
        proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.DEVNULL, stdout=fd,
                                                stderr=subprocess.STDOUT, env=child_env())
    finally:
        os.close(fd)
    try:
        with trio.fail_after(60):
            while await http_status(port, "/healthz") != 200:
                if proc.poll() is not None:
                    raise RuntimeError(f"pgcall exited with {proc.returncode}:\n"
                                       f"{_tail(log_path)}")
                await trio.sleep(0.1)
        yield proc, port
    finally:
        with trio.CancelScope(shield=True):
            await stop_process(proc)


# --- the database -----------------------------------------------------------------------------


@attrs.frozen
class Cluster:
    server: EmbeddedPostgres
    dsn: str  # the database pgcall uses
    floor_dsn: str  # the database the floor uses
    settings: dict[str, str]


def with_dbname(dsn: str, dbname: str) -> str:
    return " ".join(p for p in dsn.split() if not p.startswith("dbname=")) + f" dbname={dbname}"


async def prepare_cluster(server: EmbeddedPostgres) -> Cluster:
    admin = await PgConnection.connect(server.dsn)
    try:
        for name in (PG_DBNAME, FLOOR_DBNAME):
            await admin.simple(f"CREATE DATABASE {name}")
        settings = {}
        for name in ("server_version", "synchronous_commit", "fsync", "wal_level",
                     "shared_buffers", "max_wal_size", "wal_compression"):
            settings[name] = (await admin.execute(f"SHOW {name}")).rows[0][0]
    finally:
        admin.close()
    dsn, floor_dsn = with_dbname(server.dsn, PG_DBNAME), with_dbname(server.dsn, FLOOR_DBNAME)
    for target in (dsn, floor_dsn):
        conn = await PgConnection.connect(target)
        try:
            await migrate(conn)
        finally:
            conn.close()
    return Cluster(server, dsn, floor_dsn, settings)


async def settle(monitor: PgConnection) -> None:
    """Wait (bounded) until the reaper has deleted the previous step's frames."""
    for _ in range(int(SETTLE_TIMEOUT_S / SAMPLE_INTERVAL_S)):
        left = (await monitor.execute("SELECT (SELECT count(*) FROM video_frames) + "
                                      "(SELECT count(*) FROM audio_frames)")).rows[0][0]
        if not left:
            return
        await trio.sleep(SAMPLE_INTERVAL_S)


# --- the floor --------------------------------------------------------------------------------

_NOISE = os.urandom(1 << 20)
INSERT = {
    "video": "INSERT INTO video_frames (session_id, from_id, to_id, seq, width, height, jpeg) "
             "VALUES ($1, $2, $3, $4, 640, 360, $5)",
    "audio": "INSERT INTO audio_frames (session_id, from_id, to_id, seq, sample_rate, channels, "
             "rms, pcm16le) VALUES ($1, $2, $3, $4, 16000, 1, 0.1, $5)",
}


def _payload(kind: str, seq: int) -> bytes:
    size = FRAME_BYTES if kind == "video" else AUDIO_BYTES
    start = (seq * 7919) % (len(_NOISE) - size)
    return _NOISE[start:start + size]


async def floor_writer(dsn: str, calls: int, duration_s: float) -> dict[str, int]:
    """The writer side of the floor, in its own process: per call, video at 15 fps and audio at
    20 fps in both directions, each frame one transaction on a pooled connection. Each carries,
    in a transactional logical message, the time the INSERT and the COMMIT were sent."""
    rng = random.Random(calls)
    phases = [rng.random() / VIDEO_FPS for _ in range(calls)]  # calls do not start in lockstep
    counts = {"sent": 0, "late": 0}
    pool = Pool(dsn, POOL_SIZE)
    start = trio.current_time() + 0.3

    async def stream(call: int, direction: str, kind: str, fps: int) -> None:
        session = uuid.uuid4()
        ids = (f"floor-{call}-a", f"floor-{call}-b")[::1 if direction == "a>b" else -1]
        for seq in itertools.count():
            due = start + phases[call] + seq / fps
            if due >= start + duration_s:
                return
            if trio.current_time() - due > 0.002:
                counts["late"] += 1
            await trio.sleep_until(due)
            async with pool.connection() as conn:
                await conn.simple("BEGIN")
                t_insert = time.monotonic_ns()
                await conn.execute(INSERT[kind], [session, *ids, seq, _payload(kind, seq)],
                                   prepare=True)
                t_commit = time.monotonic_ns()
                # The message and the COMMIT leave in one round trip, just after t_commit.
                await conn.simple(f"SELECT pg_logical_emit_message(true, '{FLOOR_PREFIX}', "
                                  f"'{kind}:{seq}:{t_insert}:{t_commit}'); COMMIT")
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


def consume(changes: Any, now: int, commit_us: dict[str, list[int]],
            insert_us: dict[str, list[int]]) -> bool:
    """Record the floor latencies of one transaction; True once the writer's "end" arrived."""
    fps = {"video": VIDEO_FPS, "audio": AUDIO_FPS}
    ended = False
    for change in changes:
        if not (isinstance(change, LogicalMessage) and change.prefix == FLOOR_PREFIX):
            continue
        text = bytes(change.content).decode()
        if text == "end":
            ended = True
            continue
        kind, seq, t_insert, t_commit = text.split(":")
        if int(seq) >= fps[kind] * WARMUP_S:
            commit_us[kind].append((now - int(t_commit)) // 1000)
            insert_us[kind].append((now - int(t_insert)) // 1000)
    return ended


async def measure_floor(cluster: Cluster, monitor: PgConnection, calls: int,
                        plan: Plan) -> dict[str, Any]:
    commit_us: dict[str, list[int]] = {"video": [], "audio": []}
    insert_us: dict[str, list[int]] = {"video": [], "audio": []}
    out, err = bytearray(), bytearray()
    arg = json.dumps({"dsn": cluster.floor_dsn, "calls": calls, "duration_s": plan.duration_s})
    async with open_stream(cluster.floor_dsn) as stream:  # the slot exists before any insert
        t0 = trio.current_time()
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(SELF), "--floor-writer", arg],
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
                        async for txn in stream:
                            now = time.monotonic_ns()
                            stream.ack(txn.end_lsn)
                            if consume(txn.changes, now, commit_us, insert_us):
                                break
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
        "samples": {k: len(v) for k, v in commit_us.items()},
        "commit_to_decoded_ms": {k: attrs.asdict(Latency.of(v)) for k, v in commit_us.items()},
        "insert_to_decoded_ms": {k: attrs.asdict(Latency.of(v)) for k, v in insert_us.items()},
        "resources": resources,
    }


async def truncate_floor(cluster: Cluster) -> None:
    """Drop the floor's frames (its stream is closed): they would only weigh on the cache."""
    conn = await PgConnection.connect(cluster.floor_dsn)
    try:
        await conn.simple("TRUNCATE video_frames, audio_frames")
    finally:
        conn.close()


# --- one step of pgcall -----------------------------------------------------------------------


def step_holds(step: dict[str, Any]) -> tuple[bool, str]:
    """The capacity criterion: every planned video stream ran at >= MIN_FPS, p99 <= MAX_P99."""
    b = step.get("bench")
    if b is None:
        return False, "the bench produced no figures"
    problems = []
    if b["video_streams"] < 2 * step["calls"]:
        problems.append(f"only {b['video_streams']} of {2 * step['calls']} video streams ran")
    if b["fps"]["min"] is None or b["fps"]["min"] < MIN_FPS:
        problems.append(f"slowest stream {fmt(b['fps']['min'])} fps < {MIN_FPS:g}")
    p99 = b["latency_ms"]["p99"]
    if p99 is None or p99 > MAX_P99_MS:
        problems.append(f"p99 {fmt(p99)} ms > {MAX_P99_MS:g} ms")
    return not problems, "; ".join(problems) or "holds"


async def run_step(url: str, pgcall_pid: int, cluster: Cluster, monitor: PgConnection,
                   calls: int, media_path: str, plan: Plan, role: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pgcall", "bench", "--url", url, "--calls", str(calls),
           "--duration", f"{plan.duration_s:g}", "--ramp", f"{plan.ramp_s:g}",
           "--procs", str(plan.procs), "--json"]
    out, err = bytearray(), bytearray()
    t0 = trio.current_time()
    proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=child_env())
    sampler = Sampler({"pgcall": (pgcall_pid, False), "postgres": (cluster.server.pid, True),
                       "bench": (proc.pid, True)}, monitor, rss_of="pgcall")
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run, t0)
            async with trio.open_nursery() as readers:  # to the end of both pipes
                readers.start_soon(read_all, proc.stdout, out)
                readers.start_soon(read_all, proc.stderr, err)
            await proc.wait()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await stop_process(proc)
    wall_s = trio.current_time() - t0
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    bench = json.loads(lines[-1]) if lines else None
    # Every call streams between about ramp + start-up and duration + start-up (>= 0.5 s).
    window = summarize_samples(sampler.samples, plan.ramp_s + 2.0, plan.duration_s + 0.5)
    step: dict[str, Any] = {
        "calls": calls, "media_path": media_path, "role": role, "wall_s": round(wall_s, 2),
        "bench_exit": proc.returncode, "bench": bench,
        "bench_stderr": err.decode(errors="replace")[-2000:] if bench is None else "",
        "frames_per_s": round(bench["frames_sent"] / plan.duration_s, 1) if bench else None,
        "resources": window,
        "resources_whole_step": summarize_samples(sampler.samples, 0.0, wall_s),
        "samples": sampler.samples,
    }
    step["holds"], step["why"] = step_holds(step)
    return step


def step_line(step: dict[str, Any]) -> str:
    b, r = step["bench"] or {}, step["resources"]
    lat = b.get("latency_ms", {})
    return (f"{step['media_path']:>7} {step['calls']:3d} calls: video p50 {fmt(lat.get('p50'))} "
            f"p99 {fmt(lat.get('p99'))} ms, min fps {fmt(b.get('fps', {}).get('min'))}, "
            f"CPU pgcall {fmt(r.get('pgcall_cpu_percent'), 0)} % postgres "
            f"{fmt(r.get('postgres_cpu_percent'), 0)} % bench {fmt(r.get('bench_cpu_percent'), 0)}"
            f" % -> {step['why']}")


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model, mem = "?", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"cores": os.cpu_count(), "cpu": model, "memory": mem,
            "kernel": f"Linux {platform.release()}", "python": platform.python_version(),
            "trio": trio.__version__, "pgcall": pgcall.__version__,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


class Report:
    """The JSON document, written after every step so an interrupted run keeps its figures."""

    def __init__(self, plan: Plan, path: Path) -> None:
        self.path = path
        self.doc: dict[str, Any] = {
            "complete": False, "quick": plan.quick,
            "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            "machine": machine(), "plan": attrs.asdict(plan),
            "criteria": {"max_p99_ms": MAX_P99_MS, "min_fps": MIN_FPS},
            "postgres": {}, "floor": [], "steps": [],
        }

    def save(self) -> None:
        self.path.write_text(json.dumps(self.doc, indent=1) + "\n")


async def run_report(plan: Plan, report: Report, workdir: Path) -> None:
    async with open_embedded(workdir / "data", find_bindir(None)) as server:
        cluster = await prepare_cluster(server)
        report.doc["postgres"] = cluster.settings
        monitor = await PgConnection.connect(cluster.dsn)
        try:
            for calls in plan.floor_calls:
                floor = await measure_floor(cluster, monitor, calls, plan)
                report.doc["floor"].append(floor)
                report.save()
                await truncate_floor(cluster)
                v = floor["commit_to_decoded_ms"]["video"]
                log(f"  floor {calls:3d} calls: COMMIT -> decoded p50 {fmt(v['p50'], 2)} "
                    f"p95 {fmt(v['p95'], 2)} p99 {fmt(v['p99'], 2)} ms")
            await sweep_path(plan, report, cluster, monitor, workdir, "table")
            await sweep_path(plan, report, cluster, monitor, workdir, "message")
        finally:
            monitor.close()
    report.doc["complete"] = True
    report.save()


async def sweep_path(plan: Plan, report: Report, cluster: Cluster, monitor: PgConnection,
                     workdir: Path, media_path: str) -> None:
    async with open_pgcall(cluster.dsn, media_path, workdir / f"pgcall-{media_path}.log") as (
            proc, port):
        url = f"ws://{HOST}:{port}"

        async def step(calls: int, role: str) -> dict[str, Any]:
            await settle(monitor)
            result = await run_step(url, proc.pid, cluster, monitor, calls, media_path, plan,
                                    role)
            report.doc["steps"].append(result)
            report.save()
            log("  " + step_line(result))
            return result

        if media_path == "message":
            for calls in plan.compare_calls:
                await step(calls, "compare")
            return
        done: set[int] = set()
        if plan.fixed_sweep is not None:
            for calls in plan.fixed_sweep:
                await step(calls, "sweep")
                done.add(calls)
        else:
            broke = False
            for calls in sweep_calls():
                result = await step(calls, "sweep")
                done.add(calls)
                if broke:
                    break  # the step after the first one that broke
                broke = not result["holds"]
        for calls in plan.compare_calls:
            if calls not in done:  # the sweep broke before it: measured for the comparison
                await step(calls, "compare")


# --- analysis (pure: from the JSON document) --------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def steps_of(doc: dict[str, Any], media_path: str) -> list[dict[str, Any]]:
    return sorted((s for s in doc["steps"] if s["media_path"] == media_path),
                  key=lambda s: s["calls"])


def step_at(doc: dict[str, Any], media_path: str, calls: int) -> dict[str, Any] | None:
    return next((s for s in steps_of(doc, media_path) if s["calls"] == calls), None)


def floor_at(doc: dict[str, Any], calls: int) -> dict[str, Any] | None:
    return next((f for f in doc["floor"] if f["calls"] == calls), None)


def video(step: dict[str, Any] | None, q: str) -> float | None:
    if step is None or step["bench"] is None:
        return None
    return step["bench"]["latency_ms"][q]


def capacity(doc: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """The largest N of the table path with the criterion held, and the first step that broke."""
    table = steps_of(doc, "table")
    held = [s["calls"] for s in table if s["holds"]]
    broke = next((s for s in table if not s["holds"]), None)
    return (max(held) if held else 0), broke


def added_latency(doc: dict[str, Any], calls: int) -> float | None:
    """pgcall's video p50 over the floor's COMMIT -> decoded p50 at the same rate."""
    floor, step = floor_at(doc, calls), step_at(doc, "table", calls)
    p50, base = video(step, "p50"), floor and floor["commit_to_decoded_ms"]["video"]["p50"]
    return None if p50 is None or base is None else p50 - base


def cpu(step: dict[str, Any], name: str) -> float | None:
    return step["resources"].get(f"{name}_cpu_percent")


def cpu_total(step: dict[str, Any]) -> float:
    return sum(cpu(step, n) or 0.0 for n in ("pgcall", "postgres", "bench"))


def per_frame_us(step: dict[str, Any], name: str) -> float | None:
    share, rate = cpu(step, name), step.get("frames_per_s")
    return None if share is None or not rate else share / 100 * 1e6 / rate


def resources_text(step: dict[str, Any], cores: int) -> str:
    return (f"pgcall {fmt(cpu(step, 'pgcall'), 0)} %, PostgreSQL "
            f"{fmt(cpu(step, 'postgres'), 0)} %, load generator {fmt(cpu(step, 'bench'), 0)} % "
            f"of a core (together {cpu_total(step):.0f} % of the machine's {100 * cores} %)")


def latency_target(doc: dict[str, Any], calls: int, p50_max: float,
                   p99_max: float) -> tuple[str, str, str, str]:
    name = f"{calls} call{'s' if calls > 1 else ''}: p50 <= {p50_max:g} ms, p99 <= {p99_max:g} ms"
    step = step_at(doc, "table", calls)
    p50, p99 = video(step, "p50"), video(step, "p99")
    if step is None or p50 is None or p99 is None:
        return name, "not measured", "-", "this run has no such step"
    measured = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    if p50 <= p50_max and p99 <= p99_max:
        return name, measured, "PASS", ""
    why = []
    floor = floor_at(doc, calls)
    if floor is not None:
        f = floor["commit_to_decoded_ms"]["video"]
        why.append(f"the bare database path alone (floor) takes p50 {fmt(f['p50'], 2)} ms, "
                   f"p99 {fmt(f['p99'], 2)} ms at this rate; pgcall's p50 is "
                   f"{p50 - (f['p50'] or 0):.1f} ms and its p99 {p99 - (f['p99'] or 0):.1f} ms "
                   "above the floor's")
        over = [q for q, limit, got in (("p50", p50_max, f["p50"]), ("p99", p99_max, f["p99"]))
                if got is not None and got > limit]
        if over:
            verb = "misses" if len(over) == 1 else "miss"
            why.append(f"the floor's {' and '.join(over)} alone already {verb} the target: that "
                       "part is the database path on this machine (the COMMIT's WAL flush, the "
                       "walsender), not pgcall")
    why.append(f"CPU during the step: {resources_text(step, doc['machine']['cores'])}")
    return name, measured, "FAIL", "; ".join(why)


def capacity_target(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    cap, broke = capacity(doc)
    name = "capacity >= 15 calls"
    if not steps_of(doc, "table"):
        return name, "not measured", "-", ""
    measured = f"{cap} calls"
    if cap >= 15:
        return name, measured, "PASS", ""
    if broke is None:
        return name, measured, "-", "the sweep stopped before any step broke (quick run)"
    return name, measured, "FAIL", (f"at {broke['calls']} calls: {broke['why']}; CPU: "
                                    f"{resources_text(broke, doc['machine']['cores'])}")


def floor_target(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    name = "added latency over the floor <= 3 ms at p50"
    parts, ok = [], True
    for calls in (f["calls"] for f in doc["floor"]):
        extra = added_latency(doc, calls)
        if extra is None:
            continue
        parts.append(f"{extra:.1f} ms at {calls} call{'s' if calls > 1 else ''}")
        ok = ok and extra <= 3.0
    if not parts:
        return name, "not measured", "-", ""
    why = "" if ok else ("pgcall's own path (WebSocket in, parse, INSERT on the pool, hub, "
                         "outbox, WebSocket out) costs more than 3 ms at the median; see the "
                         "CPU figures of the step")
    return name, ", ".join(parts), "PASS" if ok else "FAIL", why


def targets(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [latency_target(doc, 1, 3.0, 8.0), latency_target(doc, 10, 5.0, 25.0),
            capacity_target(doc), floor_target(doc)]


# --- the markdown -----------------------------------------------------------------------------


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def latency_rows(steps: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in steps:
        b = s["bench"]
        if b is None:
            rows.append([str(s["calls"]), *["-"] * 10, "no figures"])
            continue
        v, a = b["latency_ms"], b["audio_latency_ms"]
        rows.append([str(s["calls"]), fmt(v["p50"]), fmt(v["p95"]), fmt(v["p99"]),
                     fmt(v["max"]), fmt(a["p50"]), fmt(a["p99"]), fmt(b["fps"]["min"]),
                     fmt(b["fps"]["median"]), str(b["lost"]), str(b["errors"]),
                     "yes" if s["holds"] else f"**no**: {s['why']}"])
    return rows


LATENCY_HEAD = ["calls", "video p50", "p95", "p99", "max", "audio p50", "audio p99",
                "fps min", "fps median", "lost", "errors", "holds"]
RESOURCE_HEAD = ["calls", "frames/s", "pgcall CPU %", "pgcall RSS MiB (max)",
                 "PostgreSQL CPU %", "WAL MB/s", "load generator CPU %", "total CPU %"]


def resource_rows(steps: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in steps:
        r = s["resources"]
        wal = r.get("wal_bytes_per_s")
        rows.append([str(s["calls"]), fmt(s["frames_per_s"], 0), fmt(cpu(s, "pgcall"), 0),
                     fmt(r.get("rss_mib_max"), 0), fmt(cpu(s, "postgres"), 0),
                     fmt(None if wal is None else wal / 1e6, 1), fmt(cpu(s, "bench"), 0),
                     f"{cpu_total(s):.0f}"])
    return rows


def method_section(doc: dict[str, Any]) -> list[str]:
    p = doc["plan"]
    return [
        "## Method", "",
        f"Everything runs on one machine: a throw-away PostgreSQL (pgcall's embedded code, "
        f"default settings below), one pgcall process (`--dsn` of that server, "
        f"`--log-level warning`) and the load generator `pgcall bench`. Each step is "
        f"`pgcall bench --calls N --duration {p['duration_s']:g} --ramp {p['ramp_s']:g} "
        f"--procs {p['procs']} --json`: N calls of two clients, each streaming "
        f"{FRAME_BYTES}-byte video frames at {VIDEO_FPS} fps and {AUDIO_BYTES}-byte audio frames "
        f"at {AUDIO_FPS}/s in both directions, so N calls are {2 * (VIDEO_FPS + AUDIO_FPS)} x N "
        "frames/s. Latency is from the sender's write to the receiver's read of the WebSocket "
        "message, on one clock (both clients of a call live in the same process). Percentiles "
        "are nearest-rank.", "",
        f"A step **holds** when every planned video stream delivered at least {MIN_FPS:g} fps "
        f"and the video p99 is at most {MAX_P99_MS:g} ms. The sweep goes 1, 2, 5, 10, 15, 20, "
        "25, 30, 40, ... calls until a step does not hold, and runs one step more; **capacity** "
        "is the largest N that held. Between steps the script waits for the reaper to empty "
        "the frame tables.", "",
        f"While a step runs, `/proc` is sampled every {SAMPLE_INTERVAL_S:g} s: CPU of pgcall, "
        "of the whole PostgreSQL cluster (postmaster and every backend, including the "
        "walsender), of the load generator (all its processes), pgcall's RSS, and "
        "`pg_current_wal_lsn()` for the WAL written. CPU is in % of one core; the figures in "
        f"the tables are taken over the window when every call streams (from {p['ramp_s']:g} "
        f"+ 2 s to {p['duration_s']:g} + 0.5 s after the step starts); `benchmarks.json` also "
        "has them over the whole step, and every sample.", "",
        "**The floor** is what the database path alone costs: a writer process inserts the "
        "same frames at the same total rate as N calls (video and audio, both directions, one "
        f"transaction per frame on a pool of {POOL_SIZE} connections, as pgcall does), and a "
        "bare logical replication consumer in the script's own process (the same pgoutput "
        "stream pgcall opens, but no hub and no WebSocket) reads them back. Each transaction "
        "carries "
        "in a transactional logical message the time its COMMIT was sent; the floor is COMMIT "
        f"sent -> change decoded, first {WARMUP_S:g} s left out. INSERT sent -> decoded is in "
        "the JSON as well.", "",
        "**Media paths**: pgcall is restarted with `--media-path message` and steps "
        f"{', '.join(str(c) for c in p['compare_calls'])} are repeated. `table` INSERTs each "
        "frame into `video_frames`/`audio_frames` (pg-relay's way); `message` sends it with "
        "`pg_logical_emit_message(true, ...)`, which reaches the stream the same way at COMMIT "
        "but stores nothing.", "",
    ]


def machine_section(doc: dict[str, Any]) -> list[str]:
    m, pg = doc["machine"], doc["postgres"]
    load = ", ".join(f"{x:g}" for x in m["loadavg_at_start"])
    return [
        "## Machine", "",
        f"* {m['cores']} cores ({m['cpu']}), {m['memory']} RAM, {m['kernel']}; the load "
        "generator runs on the same machine",
        f"* load average when the run started: {load}",
        f"* PostgreSQL {pg.get('server_version', '?')} (synchronous_commit="
        f"{pg.get('synchronous_commit', '?')}, fsync={pg.get('fsync', '?')}, shared_buffers="
        f"{pg.get('shared_buffers', '?')}, max_wal_size={pg.get('max_wal_size', '?')}, "
        f"wal_compression={pg.get('wal_compression', '?')})",
        f"* pgcall {m['pgcall']}, Python {m['python']}, trio {m['trio']}",
        f"* date: {doc['date_utc']} UTC", "",
    ]


def floor_section(doc: dict[str, Any]) -> list[str]:
    rows = []
    for f in doc["floor"]:
        c, i = f["commit_to_decoded_ms"]["video"], f["insert_to_decoded_ms"]["video"]
        a = f["commit_to_decoded_ms"]["audio"]
        extra = added_latency(doc, f["calls"])
        rows.append([str(f["calls"]), str(sum(f["rate_per_s"].values())), fmt(c["p50"], 2),
                     fmt(c["p95"], 2), fmt(c["p99"], 2), fmt(a["p50"], 2), fmt(i["p50"], 2),
                     fmt(f["resources"].get("postgres_cpu_percent"), 0),
                     fmt(video(step_at(doc, "table", f["calls"]), "p50"), 1),
                     fmt(extra, 1)])
    return ["## The floor and pgcall's added latency", "",
            *md_table(["rate of N calls", "frames/s", "video COMMIT->decoded p50", "p95", "p99",
                       "audio p50", "video INSERT->decoded p50", "PostgreSQL CPU %",
                       "pgcall video p50", "pgcall added at p50"], rows),
            "Latencies in ms. \"pgcall added\" is pgcall's end-to-end video p50 at the same "
            "rate minus the floor's COMMIT -> decoded p50: the WebSocket in and out, parsing, "
            "the pool, the hub and the outbox, and the INSERT's own execution.", ""]


def compare_section(doc: dict[str, Any]) -> list[str]:
    rows, faster, compared = [], True, 0
    for calls in doc["plan"]["compare_calls"]:
        t, m = step_at(doc, "table", calls), step_at(doc, "message", calls)
        if t is None or m is None:
            continue
        for name, s in (("table", t), ("message", m)):
            b = s["bench"] or {"fps": {}}
            wal = s["resources"].get("wal_bytes_per_s")
            rows.append([str(calls), name, fmt(video(s, "p50")), fmt(video(s, "p99")),
                         fmt(b["fps"].get("min")), fmt(cpu(s, "pgcall"), 0),
                         fmt(cpu(s, "postgres"), 0),
                         fmt(None if wal is None else wal / 1e6, 1),
                         "yes" if s["holds"] else "no"])
        tp, mp = (video(t, "p50"), video(t, "p99")), (video(m, "p50"), video(m, "p99"))
        if None in tp or None in mp:
            continue
        compared += 1
        faster = faster and mp[0] <= tp[0] and mp[1] <= tp[1] and (m["holds"] or not t["holds"])
    out = ["## Media paths compared", "",
           *md_table(["calls", "path", "video p50", "p99", "fps min", "pgcall CPU %",
                      "PostgreSQL CPU %", "WAL MB/s", "holds"], rows)]
    speed = ("`message` was at least as fast as `table` at every compared step"
             if faster and compared else
             "`message` was not faster than `table` at every compared step (slower at p50 or "
             "p99 somewhere)" if compared else "the paths could not be compared")
    out += [
        f"**Recommendation: `table` stays the default.** In this run {speed}. "
        "The two paths do not keep the same guarantees: `message` stores nothing, so frames "
        "can only come from pgcall itself, and external producers that INSERT frames into "
        "`video_frames`/`audio_frames` (pg-relay's AI worker) work only with `table`; nothing "
        "is kept for `--retain` either. `message` is an option for deployments that need "
        "neither" + (", and it buys the difference above." if faster and compared else "."),
        ""]
    return out


def batching_section(doc: dict[str, Any]) -> list[str]:
    table = steps_of(doc, "table")
    if not table:
        return []
    cap, broke = capacity(doc)
    ref = step_at(doc, "table", cap) or table[-1]
    payload = (2 * VIDEO_FPS * FRAME_BYTES + 2 * AUDIO_FPS * AUDIO_BYTES) / (
        2 * (VIDEO_FPS + AUDIO_FPS))
    wal = ref["resources"].get("wal_bytes_per_s")
    wal_frame = wal / ref["frames_per_s"] if wal and ref["frames_per_s"] else None
    pg_us, app_us = per_frame_us(ref, "postgres"), per_frame_us(ref, "pgcall")
    lines = [
        "## Would batching frames help?", "",
        "pgcall INSERTs each frame in its own transaction on a pooled connection. Batching "
        "several frames per round trip (one transaction or one multi-row INSERT) saves, per "
        "frame, the per-transaction work: a round trip, the commit record and its WAL flush, "
        "and the walsender's BEGIN/COMMIT per transaction. It does not shrink the WAL of the "
        "payload, the decoding of each row, or pgcall's WebSocket work, and PostgreSQL already "
        f"flushes the commits that are in flight together (the pool holds up to {POOL_SIZE}).",
        "",
        f"From the figures, at {ref['calls']} calls ({fmt(ref['frames_per_s'], 0)} frames/s): "
        f"pgcall spent {fmt(app_us, 0)} µs of CPU per frame, PostgreSQL {fmt(pg_us, 0)} µs, "
        f"and each frame wrote {fmt(wal_frame and wal_frame / 1000, 1)} kB of WAL for "
        f"{payload / 1000:.1f} kB of payload on average.",
    ]
    floors = sorted(doc["floor"], key=lambda f: f["calls"])
    if len(floors) >= 2:
        lo, hi = floors[0], floors[-1]
        lo_p50 = lo["commit_to_decoded_ms"]["video"]["p50"]
        hi_p50 = hi["commit_to_decoded_ms"]["video"]["p50"]
        lines[-1] += (f" The floor went from p50 {fmt(lo_p50, 2)} ms at {lo['calls']} call(s) "
                      f"to {fmt(hi_p50, 2)} ms at "
                      f"{hi['calls']} calls: that is how much the database path itself slows "
                      "down with the transaction rate.")
    limit = broke or table[-1]
    app, pg, total = cpu(limit, "pgcall") or 0, cpu(limit, "postgres") or 0, cpu_total(limit)
    cores = 100 * (doc["machine"]["cores"] or 1)
    where = (f"At {limit['calls']} calls" + (" (the first step that broke)" if broke else "")
             + f": {resources_text(limit, doc['machine']['cores'])}. ")
    if app >= 85:
        verdict = ("pgcall's single thread was the limit. Batching would help only by the "
                   "share of that thread spent issuing one INSERT per frame; it does not touch "
                   "the WebSocket side. Expect a modest gain; measure it with this sweep.")
    elif total >= 0.9 * cores and pg >= app:
        verdict = ("The cores were saturated and PostgreSQL was the largest user: batching, "
                   "which cuts PostgreSQL's per-transaction work, is worth trying. Done "
                   "opportunistically (send together only frames already queued while the "
                   "pool is busy) it adds no latency at low load.")
    elif total >= 0.9 * cores:
        verdict = ("The cores were saturated by the three processes together (the load "
                   "generator shares them): batching would reduce PostgreSQL's share by its "
                   "per-transaction part only, and the rest stays.")
    else:
        verdict = ("No process and not the machine was saturated, so the limit is latency "
                   "rather than throughput; batching that waits to fill a batch would add "
                   "delay to every frame and is not indicated by these figures.")
    return [*lines, "", where + verdict, ""]


def relay_section(doc: dict[str, Any]) -> list[str]:
    rows = []
    for calls, (p50, p99) in PG_RELAY.items():
        step = step_at(doc, "table", calls)
        rows.append([str(calls), f"{p50:g} / {p99:g}",
                     f"{fmt(video(step, 'p50'))} / {fmt(video(step, 'p99'))}"])
    cap, _ = capacity(doc)
    n, p50 = PG_RELAY_COLLAPSE
    rows.append(["capacity", f"< {n} (collapsed at {n} calls, p50 {p50 / 1000:g} s)",
                 f"{cap} calls" if steps_of(doc, "table") else "-"])
    cpu_text = ", ".join(f"{k} ~{v} %" for k, v in PG_RELAY_CPU.items())
    return ["## pg-relay on the same class of machine, and pgcall's targets", "",
            *md_table(["calls", "pg-relay p50 / p99 ms", "pgcall p50 / p99 ms"], rows),
            f"pg-relay's measurement on a 2-core machine with the load generator on the same box "
            f"reported {cpu_text} of a core; pgcall's CPU per step is in the resource table "
            "above.", "",
            *md_table(["target", "measured", "result", "why"],
                      [list(t) for t in targets(doc)])]


def render_markdown(doc: dict[str, Any]) -> str:
    cap, broke = capacity(doc)
    lines = ["# pgcall: latency and capacity", "",
             "Generated by `benchmarks/report.py` from `benchmarks.json`; do not edit by hand, "
             "run the script again.", ""]
    if doc["quick"]:
        lines += ["> **Quick check run (`--quick`)**: 1 and 2 calls for a few seconds, to "
                  "check the script. These are not the report's figures.", ""]
    if not doc["complete"]:
        lines += ["> **Incomplete run**: the script stopped before the end.", ""]
    lines += ["## Summary", ""]
    if broke is not None:
        lines.append(f"* **Capacity: {cap} calls** on {doc['machine']['cores']} cores with the "
                     f"load generator on the same machine (first step that broke: "
                     f"{broke['calls']} calls, {broke['why']}).")
    else:
        lines.append(f"* Largest step measured that held: {cap} calls (no step broke).")
    for name, measured, result, _ in targets(doc):
        lines.append(f"* {name}: {measured}" + (f" - **{result}**" if result != "-" else ""))
    lines += ["", "![p50 and p99 latency and the slowest stream's fps against the number of "
              "calls](benchmarks.png)", ""]
    lines += machine_section(doc) + method_section(doc)
    for path in ("table", "message"):
        steps = steps_of(doc, path)
        if not steps:
            continue
        title = ("`table` (the default)" if path == "table" else "`message`")
        lines += [f"## Results: media path {title}", "", "Latency in ms.", "",
                  *md_table(LATENCY_HEAD, latency_rows(steps)),
                  *md_table(RESOURCE_HEAD, resource_rows(steps))]
    lines += floor_section(doc) + compare_section(doc) + batching_section(doc)
    lines += relay_section(doc)
    return "\n".join(lines).rstrip() + "\n"


# --- the chart --------------------------------------------------------------------------------


def render_chart(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    colors = {"table": "tab:blue", "message": "tab:orange"}
    for path_name, color in colors.items():
        steps = [s for s in steps_of(doc, path_name) if s["bench"] is not None]
        if not steps:
            continue
        x = [s["calls"] for s in steps]
        for q, style in (("p50", "-o"), ("p99", "--s")):
            top.plot(x, [video(s, q) for s in steps], style, color=color,
                     label=f"{path_name} {q}")
        bottom.plot(x, [s["bench"]["fps"]["min"] for s in steps], "-o", color=color,
                    label=f"{path_name}: slowest stream")
    floors = sorted(doc["floor"], key=lambda f: f["calls"])
    if floors:
        x = [f["calls"] for f in floors]
        for q, style in (("p50", ":"), ("p99", "-.")):
            top.plot(x, [f["commit_to_decoded_ms"]["video"][q] for f in floors], style,
                     color="gray", marker="x", label=f"floor {q} (no pgcall)")
    calls = sorted({s["calls"] for s in doc["steps"]} | {f["calls"] for f in floors})
    bottom.set_xticks(calls)
    top.axhline(MAX_P99_MS, color="red", linewidth=0.8, label=f"p99 limit {MAX_P99_MS:g} ms")
    bottom.axhline(MIN_FPS, color="red", linewidth=0.8, label=f"{MIN_FPS:g} fps")
    top.set_yscale("log")
    top.set_ylabel("video latency, ms (log)")
    bottom.set_ylabel("delivered fps, slowest stream")
    bottom.set_xlabel("calls (2 clients each, 15 fps video + audio both ways)")
    bottom.set_ylim(0, VIDEO_FPS + 1)
    title = f"pgcall on {doc['machine']['cores']} cores, {doc['date_utc']} UTC"
    top.set_title(title + (" (quick check run)" if doc["quick"] else ""))
    for ax in (top, bottom):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- entry points -----------------------------------------------------------------------------


def render(doc: dict[str, Any], out: Path) -> None:
    render_chart(doc, out / "benchmarks.png")
    (out / "benchmarks.md").write_text(render_markdown(doc))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 and 2 calls for 5 s: checks the script, not the figures")
    parser.add_argument("--out", type=Path, default=REPO / "docs",
                        help="where benchmarks.{json,md,png} go (default docs/)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the .md and .png from the existing benchmarks.json")
    parser.add_argument("--floor-writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_writer:
        a = json.loads(args.floor_writer)
        counts = trio.run(floor_writer, a["dsn"], a["calls"], a["duration_s"])
        print(json.dumps(counts), flush=True)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render_only:
        render(json.loads((args.out / "benchmarks.json").read_text()), args.out)
        return 0
    plan = QUICK if args.quick else FULL
    report = Report(plan, args.out / "benchmarks.json")
    workdir = Path(tempfile.mkdtemp(prefix="pgcr-"))  # short: Unix socket paths < 107 bytes
    workdir.chmod(0o711)  # run as root, the server runs as another user and must get in
    log(f"pgcall report ({'quick' if plan.quick else 'full'}), working in {workdir}")
    try:
        trio.run(run_report, plan, report, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    render(report.doc, args.out)
    log(f"wrote {args.out}/benchmarks.json, benchmarks.md and benchmarks.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
