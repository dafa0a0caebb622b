"""Section ``workers``: capacity in calls of ``pgcall --workers 1`` and ``--workers 2``.

Both sweep 5, 10, 15, ... calls until a step breaks, and one step more, their steps
interleaved (1 worker at N calls, 2 workers at N, then the next N). pgcall is started afresh
for each step, so that only the configuration measured runs (an idle relay still decodes the
whole WAL); its CPU is the whole process tree, the parent and its workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..figures import fmt
from ..settings import log
from ..sweep import SweepState, interleave
from .env import Env, open_relays
from .figures import cpu_percent
from .measure import bench_step
from .plan import CRITERIA, call_args, worker_calls
from .verdicts import call_holds


async def run_workers(env: Env, section: dict[str, Any], save: Callable[[], None]) -> None:
    plan = env.plan.workers
    section["steps"] = []
    states = {str(w): SweepState(plan.fixed) for w in plan.workers}
    for calls, name in interleave(plan.fixed or worker_calls(), states):
        workers = int(name)
        async with open_relays(env, f"workers{workers}", workers=workers) as relays:
            step = {"workers": workers, "calls": calls,
                    **await bench_step(env.target(relays), call_args(calls, plan.load))}
        step["holds"], step["why"] = call_holds(step["bench"], calls, CRITERIA)
        states[name].record(calls, step["holds"])
        section["steps"].append(step)
        save()
        lat = (step["bench"] or {}).get("latency_ms", {})
        log(f"  --workers {workers}, {calls:3d} calls: video p50 {fmt(lat.get('p50'))} p99 "
            f"{fmt(lat.get('p99'))} ms, CPU pgcall {fmt(cpu_percent(step, 'pgcall'), 0)} % "
            f"postgres {fmt(cpu_percent(step, 'postgres'), 0)} % -> {step['why']}")
    section["complete"] = True
    save()
