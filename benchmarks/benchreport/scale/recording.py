"""Section ``recording``: the same calls with and without ``--record``, interleaved, in rounds.

One pgcall runs every round. After a recorded step, once the reaper has moved the step's
frames into ``recorded_frames`` (``measure.bench_step`` waits for the hot tables to empty), the
step records what was stored, then every recording is deleted (its frames go with it) and
``recorded_frames`` is vacuumed, so storage does not accumulate from round to round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pgcall.pg.conn import PgConnection

from ..figures import fmt
from ..settings import log
from .env import Env, open_relays
from .figures import recording_order, us_per_frame
from .measure import bench_step
from .plan import CRITERIA, call_args
from .verdicts import call_holds

STORED = ("SELECT (SELECT count(*) FROM recordings), count(*), "
          "coalesce(sum(length(payload)), 0), pg_total_relation_size('recorded_frames') "
          "FROM recorded_frames")


async def clear_recordings(monitor: PgConnection) -> dict[str, int]:
    """What the recordings hold now; then delete them all and VACUUM their frames' table."""
    row = (await monitor.execute(STORED)).rows[0]
    await monitor.execute("DELETE FROM recordings")
    await monitor.simple("VACUUM recorded_frames")
    return dict(zip(("recordings", "frames", "payload_bytes", "table_bytes"),
                    (int(v) for v in row), strict=True))


async def run_recording(env: Env, section: dict[str, Any], save: Callable[[], None]) -> None:
    plan = env.plan.recording
    section["steps"] = []
    async with open_relays(env, "recording") as relays:
        target = env.target(relays)
        await clear_recordings(env.monitor)  # an earlier run's recordings, if any
        for round_no, record in recording_order(plan.rounds):
            step = {"round": round_no, "record": record, "calls": plan.calls,
                    **await bench_step(target, call_args(plan.calls, plan.load, record))}
            step["holds"], step["why"] = call_holds(step["bench"], plan.calls, CRITERIA)
            step["stored"] = await clear_recordings(env.monitor) if record else None
            section["steps"].append(step)
            save()
            b = step["bench"] or {}
            log(f"  round {round_no}, recording {'on ' if record else 'off'}: video p50 "
                f"{fmt(b.get('latency_ms', {}).get('p50'))} p99 "
                f"{fmt(b.get('latency_ms', {}).get('p99'))} ms, fps min "
                f"{fmt(b.get('fps', {}).get('min'))}, per frame pgcall "
                f"{fmt(us_per_frame(step, 'pgcall', settled=True), 0)} us, postgres "
                f"{fmt(us_per_frame(step, 'postgres', settled=True), 0)} us -> {step['why']}")
    section["complete"] = True
    save()
