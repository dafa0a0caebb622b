"""Section ``rooms``: the rooms feature's targets on one relay.

Runs (a) and (b), the plan's room cases (one room of 16; four rooms of 4), then (c) the
capacity sweep of rooms of ``capacity_size`` (1, 2, 3, ... rooms until a step breaks, and one
step more), then (d) the WAL written per room frame at each of ``wal_sizes``
(``roomwal.measure``), all against one pgcall. Each step's record: the room case, its figures
from ``measure.bench_step`` and whether it held (``verdicts.room_holds``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pgcall.pg.conn import PgError

from ..figures import fmt
from ..roomwal import WalRun, measure
from ..settings import log
from ..sweep import SweepState, interleave
from .env import Env, open_relays
from .figures import cpu_percent
from .measure import Target, bench_step
from .plan import CRITERIA, Load, room_args, room_counts
from .verdicts import room_holds


async def room_step(target: Target, case: str, rooms: int, size: int,
                    load: Load) -> dict[str, Any]:
    step = {"case": case, "rooms": rooms, "room_size": size,
            **await bench_step(target, room_args(rooms, size, load))}
    step["holds"], step["why"] = room_holds(step["bench"], rooms, size, CRITERIA)
    b = step["bench"] or {}
    log(f"  {case}: {rooms} x {size}: speaker fps min {fmt(b.get('speaker_fps_min'))}, others "
        f"{fmt(b.get('others_fps_min'))}, speaker p99 "
        f"{fmt((b.get('speaker_latency_ms') or {}).get('p99'))} ms, lost {b.get('lost')}, "
        f"pgcall {fmt(cpu_percent(step, 'pgcall'), 0)} % -> {step['why']}")
    return step


async def run_rooms(env: Env, section: dict[str, Any], save: Callable[[], None]) -> None:
    plan = env.plan.rooms
    section.update(steps=[], wal=[])
    try:
        await env.monitor.simple("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    except PgError as exc:
        log(f"  pg_walinspect unavailable ({exc}): no WAL record counts")
    async with open_relays(env, "rooms") as relays:
        target = env.target(relays)
        for case in plan.cases:
            section["steps"].append(await room_step(target, case.name, case.rooms, case.size,
                                                    case.load))
            save()
        state = SweepState(plan.capacity_fixed)
        for rooms, _ in interleave(plan.capacity_fixed or room_counts(), {"rooms": state}):
            step = await room_step(target, "capacity", rooms, plan.capacity_size,
                                   plan.capacity_load)
            section["steps"].append(step)
            state.record(rooms, step["holds"])
            save()
        wal_run = WalRun(plan.wal_rooms, plan.wal_load.duration_s, plan.wal_load.procs)
        for size in plan.wal_sizes:
            record = await measure(env.monitor, relays[0].url, size, wal_run)
            record["bench_args"] = wal_run.bench_args(size)
            section["wal"].append(record)
            save()
            log(f"  WAL at room size {size}: {record['wal_per_frame']:.0f} bytes per frame, "
                f"{record['overhead_per_frame']:.0f} beyond the payload")
    section["complete"] = True
    save()
