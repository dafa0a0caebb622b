"""One step of the sweep: ``pgcall bench`` with N calls against a running pgcall, measured.

Owns: waiting for the reaper to empty the frame tables before a step, running the load
generator as a subprocess while sampling pgcall, the PostgreSQL cluster and the generator, the
step's JSON record, the capacity criterion a step is judged by, and its progress line. Does not
own: starting pgcall or PostgreSQL (``cluster``) or which steps run (``run``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import trio

from pgcall.pg.conn import PgConnection

from .cluster import Cluster, child_env, read_all, stop_process
from .figures import fmt
from .sampling import Sampler, summarize_samples
from .settings import MAX_P99_MS, MIN_FPS, SAMPLE_INTERVAL_S, SETTLE_TIMEOUT_S, Plan


async def settle(monitor: PgConnection) -> None:
    """Wait (bounded) until the reaper has deleted the previous step's frames."""
    for _ in range(int(SETTLE_TIMEOUT_S / SAMPLE_INTERVAL_S)):
        left = (await monitor.execute("SELECT (SELECT count(*) FROM video_frames) + "
                                      "(SELECT count(*) FROM audio_frames)")).rows[0][0]
        if not left:
            return
        await trio.sleep(SAMPLE_INTERVAL_S)


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
