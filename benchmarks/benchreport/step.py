"""One step of a sweep: ``pgcall bench`` with N calls against a running server (pgcall or the
peer), measured.

Owns: waiting for the servers' frame tables to be emptied, vacuumed and checkpointed before
a step, running the load generator as a subprocess while sampling the server's process tree,
its PostgreSQL cluster and the generator, the CPU time of each over the step and per relayed
frame, the step's JSON record, the capacity criterion a step is judged by, and its progress
line. Does not own:
starting the servers (``cluster``, ``peer``) or which steps run (``run``, ``sweep``).
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import trio

from pgcall.pg.conn import ConnectionLost, PgError

from .cluster import child_env, read_all, stop_process
from .figures import fmt, server_of
from .proc import cpu_seconds, per_frame_us
from .sampling import CLK_TCK, Roots, Sampler, read_ticks, summarize_samples
from .servers import Server
from .settings import (
    MAX_P99_MS,
    MIN_FPS,
    SAMPLE_INTERVAL_S,
    SETTLE_TIMEOUT_S,
    UNSEEN_SETTLE_S,
    Plan,
)


@contextlib.contextmanager
def refused_is_skipped() -> Iterator[None]:
    """A statement the server refused (no such tables, a role that may not VACUUM) is skipped;
    a lost connection is not: every later step of the run needs it, and would fail without
    saying why."""
    try:
        yield
    except ConnectionLost:
        raise
    except PgError:
        pass


async def settle(server: Server) -> None:
    """Wait (bounded) until the server's reaper has deleted the previous step's frames; a
    server whose tables the report cannot see gets a fixed pause instead."""
    if server.monitor is not None:
        with refused_is_skipped():  # no such tables: pause as for an unseen server
            for _ in range(int(SETTLE_TIMEOUT_S / SAMPLE_INTERVAL_S)):
                left = (await server.monitor.execute(
                    "SELECT (SELECT count(*) FROM video_frames) + "
                    "(SELECT count(*) FROM audio_frames)")).rows[0][0]
                if not left:
                    return
                await trio.sleep(SAMPLE_INTERVAL_S)
            return
    await trio.sleep(UNSEEN_SETTLE_S)


async def quiesce(servers: Iterable[Server]) -> None:
    """Before a step: every server of the run settled (its reaper done with the steps before),
    then each database the report can see vacuumed of those frames and checkpointed. Steps
    alternate between two servers on one machine's disk: without this, one server's step ran
    while the other's database was still vacuuming and writing back the step before it, and
    each step paid for some of the last one's work, its own or the other server's."""
    servers = list(servers)
    for server in servers:
        await settle(server)
    for server in servers:
        if server.monitor is not None:
            # A database whose role may not VACUUM or CHECKPOINT is left as it is.
            with refused_is_skipped():
                await server.monitor.simple("VACUUM video_frames, audio_frames")
            with refused_is_skipped():
                await server.monitor.simple("CHECKPOINT")


def reaped_children_s() -> float:
    """User + system CPU seconds of this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


async def run_step(server: Server, calls: int, media_path: str, plan: Plan,
                   role: str) -> dict[str, Any]:
    """``pgcall bench`` with ``calls`` calls against ``server``, sampled while it runs, with
    the CPU time of the relay's process tree, of its database cluster and of the load
    generator from just before the generator starts to just after it exited."""
    cmd = [sys.executable, "-m", "pgcall", "bench", "--url", server.url, "--calls", str(calls),
           "--duration", f"{plan.duration_s:g}", "--ramp", f"{plan.ramp_s:g}",
           "--procs", str(plan.procs), "--json"]
    out, err = bytearray(), bytearray()
    measured: Roots = {}
    if server.pid is not None:
        measured[server.role] = (server.pid, True)
    if server.postmaster is not None:
        measured["postgres"] = (server.postmaster, True)
    before, reaped_before = read_ticks(measured), reaped_children_s()
    t0 = trio.current_time()
    proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=child_env())
    sampler = Sampler({**measured, "bench": (proc.pid, True)}, server.monitor,
                      rss_of=server.role if server.pid is not None else None)
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
    after = read_ticks(measured)
    # The generator and its workers, once reaped, are the only children this process reaped
    # during the step: their CPU time is what reaped children's time grew by.
    bench_s = reaped_children_s() - reaped_before
    wall_s = trio.current_time() - t0
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    bench = json.loads(lines[-1]) if lines else None
    seconds = {**cpu_seconds(before, after, CLK_TCK), "bench": bench_s}
    # Every call streams between about ramp + start-up and duration + start-up (>= 0.5 s).
    window = summarize_samples(sampler.samples, plan.ramp_s + 2.0, plan.duration_s + 0.5)
    step: dict[str, Any] = {
        "server": server.role, "calls": calls, "media_path": media_path, "role": role,
        "wall_s": round(wall_s, 2), "bench_exit": proc.returncode, "bench": bench,
        "bench_stderr": err.decode(errors="replace")[-2000:] if bench is None else "",
        "frames_per_s": round(bench["frames_sent"] / plan.duration_s, 1) if bench else None,
        "cpu_s": {k: None if v is None else round(v, 3) for k, v in seconds.items()},
        "cpu_per_frame_us": per_frame_us(seconds, bench["frames_received"] if bench else None),
        "resources": window,
        "resources_whole_step": summarize_samples(sampler.samples, 0.0, wall_s),
        "samples": sampler.samples,
    }
    step["holds"], step["why"] = step_holds(step)
    return step


def step_line(step: dict[str, Any]) -> str:
    b, r, name = step["bench"] or {}, step["resources"], server_of(step)
    lat = b.get("latency_ms", {})
    us = step.get("cpu_per_frame_us", {})
    return (f"{name:>6} {step['media_path']:>7} {step['calls']:3d} calls: video p50 "
            f"{fmt(lat.get('p50'))} p99 {fmt(lat.get('p99'))} ms, min fps "
            f"{fmt(b.get('fps', {}).get('min'))}, CPU {name} {fmt(r.get(f'{name}_cpu_percent'), 0)}"
            f" % postgres {fmt(r.get('postgres_cpu_percent'), 0)} % bench "
            f"{fmt(r.get('bench_cpu_percent'), 0)} % steal {fmt(r.get('steal_cpu_percent'), 0)} %, "
            f"per frame {name} "
            f"{fmt(us.get(name), 0)} us postgres {fmt(us.get('postgres'), 0)} us -> {step['why']}")
