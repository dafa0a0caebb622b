"""Running a bench's calls: in this process, or spread over worker processes.

Owns: the ramp (when each call starts), which process runs which call (both ends of a call
always in the same process, so latency is measured on one clock), running worker processes
(``gather_workers``, also used for rooms), the worker command
``python -m pgcall.bench.runner PLAN_JSON`` and the line-per-message JSON it writes on
stdout (``{"progress": ...}`` about once a second, then one ``{"report": ...}``), and each
process's own CPU time. Does not own: what a call does (``client``) or the arithmetic
(``stats``).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import sys
from array import array
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import trio

from .client import CallPlan, run_call
from .stats import (
    KINDS,
    Progress,
    Recorder,
    StreamKey,
    StreamResult,
    WorkerReport,
    combine_progress,
    merge_reports,
)

PROGRESS_INTERVAL_S = 1.0
Assignment = list[tuple[int, float]]  # (call index, start offset in seconds)
OnProgress = Callable[[Progress], None]


def assign_calls(calls: int, procs: int, ramp_s: float) -> list[Assignment]:
    """Call i starts ramp_s * i / calls after the start, on process i mod procs. No process
    gets an empty share: with fewer calls than processes, fewer processes are used."""
    procs = max(1, min(procs, calls))
    shares: list[Assignment] = [[] for _ in range(procs)]
    for i in range(calls):
        shares[i % procs].append((i, ramp_s * i / calls))
    return shares


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_local(plan: CallPlan, assignment: Assignment, on_progress: OnProgress) -> \
        WorkerReport:
    """Run a share of the calls in this process; ``on_progress`` gets cumulative counters
    about once a second. CPU time counted is this process's own during the run."""
    recorder = Recorder()
    cpu_start = cpu_seconds()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick, recorder.progress, on_progress)
        async with trio.open_nursery() as calls:
            for call, offset in assignment:
                calls.start_soon(run_call, plan, call, start + offset, recorder)
        nursery.cancel_scope.cancel()
    on_progress(recorder.progress())
    return recorder.report(active_s=plan.duration_s, cpu_s=cpu_seconds() - cpu_start)


async def tick(progress: Callable[[], Progress], on_progress: OnProgress) -> None:
    """Pass ``progress()`` on every PROGRESS_INTERVAL_S, until cancelled."""
    while True:
        await trio.sleep(PROGRESS_INTERVAL_S)
        on_progress(progress())


async def run_workers(plan: CallPlan, assignments: list[Assignment],
                      on_progress: OnProgress) -> WorkerReport:
    """One worker process per assignment; their reports merged. A worker that fails counts
    as an error rather than stopping the others."""
    args = [{"plan": attrs.asdict(plan), "calls": a} for a in assignments]
    results = await gather_workers("pgcall.bench.runner", args, on_progress)
    return merge_reports(
        report_from_json(raw) if raw is not None else WorkerReport(errors={failure: 1})
        for raw, failure in results)


async def gather_workers(module: str, args: list[dict[str, Any]], on_progress: OnProgress
                         ) -> list[tuple[dict[str, Any] | None, str]]:
    """Run ``python -m module ARG_JSON`` once per argument, all at once; pass their combined
    progress on. For each worker, in order: (its report's JSON, "") or (None, why it failed)."""
    latest = [Progress() for _ in args]
    results: list[tuple[dict[str, Any] | None, str]] = [(None, "")] * len(args)

    def update(index: int, progress: Progress) -> None:
        latest[index] = progress
        on_progress(combine_progress(latest))

    async def one(index: int) -> None:
        results[index] = await _run_worker(module, args[index], index, update)

    async with trio.open_nursery() as nursery:
        for index in range(len(args)):
            nursery.start_soon(one, index)
    return results


async def _run_worker(module: str, arg: dict[str, Any], index: int,
                      update: Callable[[int, Progress], None]
                      ) -> tuple[dict[str, Any] | None, str]:
    cmd = [sys.executable, "-m", module, json.dumps(arg)]
    # The worker must import pgcall from wherever this process did (a checkout, a venv, or
    # the directory a zipapp unpacked to), so it gets this process's import path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    report: dict[str, Any] | None = None
    async with trio.open_nursery() as nursery:
        proc: trio.Process = await nursery.start(
            partial(trio.run_process, cmd, stdout=subprocess.PIPE, check=False, env=env))
        assert proc.stdout is not None
        buffer = b""
        async for chunk in proc.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.startswith(b"{"):
                    continue  # not ours (a library printing to stdout)
                message = json.loads(line)
                if "progress" in message:
                    update(index, progress_from_json(message["progress"]))
                else:
                    report = message["report"]
    if report is None or proc.returncode != 0:
        return None, f"bench worker {index} exited with code {proc.returncode}"
    return report, ""


# --- the worker's wire format (JSON lines on stdout) ---------------------------------------


def progress_to_json(p: Progress) -> dict[str, Any]:
    return {"sent": p.sent, "received": p.received, "errors": p.errors,
            "buckets": [[k, v] for k, v in p.buckets.items()]}


def progress_from_json(d: dict[str, Any]) -> Progress:
    return Progress(d["sent"], d["received"], d["errors"], {k: v for k, v in d["buckets"]})


def report_to_json(r: WorkerReport) -> dict[str, Any]:
    # Latency samples travel as base64 of int64 arrays: a minute of 100 calls is ~10^6 samples.
    return {
        "streams": [[*attrs.astuple(s.key), s.sent, s.received, s.lost, s.reordered,
                     s.duplicates, s.late, s.active_s] for s in r.streams],
        "latency_us": {k: base64.b64encode(array("q", r.latency_us.get(k, ())).tobytes())
                       .decode("ascii") for k in KINDS},
        "errors": r.errors, "cpu_s": r.cpu_s,
    }


def report_from_json(d: dict[str, Any]) -> WorkerReport:
    streams = tuple(StreamResult(StreamKey(*row[:3]), *row[3:]) for row in d["streams"])
    latency: dict[str, tuple[int, ...]] = {}
    for kind in KINDS:
        samples = array("q")
        samples.frombytes(base64.b64decode(d["latency_us"][kind]))
        latency[kind] = tuple(samples)
    return WorkerReport(streams=streams, latency_us=latency, errors=dict(d["errors"]),
                        cpu_s=float(d["cpu_s"]))


def emit(key: str, value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({key: value}) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """The worker: run the calls named in the JSON argument, report on stdout."""
    args = json.loads((sys.argv[1:] if argv is None else argv)[0])
    plan = CallPlan(**args["plan"])
    assignment = [(int(c), float(o)) for c, o in args["calls"]]
    report = trio.run(run_local, plan, assignment,
                      lambda p: emit("progress", progress_to_json(p)))
    emit("report", report_to_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
