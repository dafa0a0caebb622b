"""Section ``relays``: 1, 2, 4 relays on one database at the same load, and what the database
sends each of them.

For each relay count N: N separate ``pgcall serve --dsn`` processes, each on its own port; the
bench is given every relay's URL (``--url`` repeated: a call's caller and callee on different
relays); each relay's ``/metrics`` is read once the tables are empty before the step and again
after it, for the bytes its walsender sent it (``pgcall_replication_bytes_total``), the media
frames it wrote and the media frames it read from its stream; its CPU is its process tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..figures import fmt
from ..settings import log
from .env import Env, Relay, open_relays
from .figures import egress
from .measure import bench_step, settle
from .metrics import scrape
from .plan import CRITERIA, call_args
from .promtext import growth
from .verdicts import call_holds

METRICS = {"replication_bytes": "pgcall_replication_bytes_total",
           "frames_written": "pgcall_frames_written_total",
           "frames_in": "pgcall_frames_in_total"}


async def relays_step(env: Env, relays: list[Relay], calls: int,
                      args: list[str]) -> dict[str, Any]:
    target = env.target(relays)
    await settle(env.monitor)
    before = [await scrape(r.port) for r in relays]
    step = {"relays": len(relays), "calls": calls, **await bench_step(target, args)}
    after = [await scrape(r.port) for r in relays]
    step["per_relay"] = []
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        grown = growth(b, a, METRICS.values())
        name = "pgcall" if len(relays) == 1 else f"relay{i + 1}"
        step["per_relay"].append({
            "name": name, **{k: int(grown[m]) for k, m in METRICS.items()},
            "cpu_s": step["cpu_s"].get(name), "cpu_s_settled": step["cpu_s_settled"].get(name)})
    return step


async def run_relays(env: Env, section: dict[str, Any], save: Callable[[], None]) -> None:
    plan = env.plan.relays
    section["steps"] = []
    for count in plan.relays:
        async with open_relays(env, f"relays{count}", count) as relays:
            step = await relays_step(env, relays, plan.calls, call_args(plan.calls, plan.load))
        step["holds"], step["why"] = call_holds(step["bench"], plan.calls, CRITERIA)
        section["steps"].append(step)
        save()
        e = egress(step)
        log(f"  {count} relay(s), {plan.calls} calls: database egress "
            f"{(e['egress_bytes'] or 0) / 1e6:.1f} MB (every relay every frame: "
            f"{fmt(None if e['naive_bytes'] is None else e['naive_bytes'] / 1e6)} MB), "
            f"frames written {e['frames_written']}, read by relays {e['frames_in']} -> "
            f"{step['why']}")
    section["complete"] = True
    save()
