"""pgcall's targets and the verdict of a run on each: PASS, FAIL with the reason the figures
give, or not measured.

Owns: the targets (video latency at 1 and at 10 calls, capacity of at least 15 calls, at most
3 ms added over the floor at p50, and at most 1.5 ms at 10 calls at the median of the rounds
measured there) and the explanation of a miss, from the floor and the CPU
figures. Does not own: where the verdicts appear in the report (``render``, ``findings``).
"""

from __future__ import annotations

import statistics
from typing import Any

from .figures import (
    added_latency,
    added_latency_rounds,
    capacity,
    floor_at,
    floor_latency,
    fmt,
    resources_text,
    step_at,
    steps_of,
    video,
)


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
        f = floor_latency(floor)
        why.append(f"the bare database path alone (floor) takes p50 {fmt(f['p50'], 2)} ms, "
                   f"p99 {fmt(f['p99'], 2)} ms at this rate; pgcall's p50 is "
                   f"{p50 - (f['p50'] or 0):.1f} ms and its p99 {p99 - (f['p99'] or 0):.1f} ms "
                   "above the floor's")
        over = [q for q, limit, got in (("p50", p50_max, f["p50"]), ("p99", p99_max, f["p99"]))
                if got is not None and got > limit]
        if over:
            verb = "misses" if len(over) == 1 else "miss"
            why.append(f"the floor's {' and '.join(over)} alone already {verb} the target: that "
                       "part is the database path on this machine (the INSERT, the COMMIT's WAL "
                       "flush, the walsender), not pgcall")
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


def rounds_target(doc: dict[str, Any], calls: int = 10,
                  most_ms: float = 1.5) -> tuple[str, str, str, str]:
    """The added latency at ``calls``, at the median of every round that measured it: one
    step's median moves by more than this target between identical runs."""
    name = f"added latency over the floor <= {most_ms:g} ms at p50 at {calls} calls"
    added = added_latency_rounds(doc, calls)
    if not added:
        return name, "not measured", "-", ""
    median = statistics.median(added)
    # To the µs the latencies are measured in: a median just over the target must not read
    # as the target itself.
    measured = (f"{median:.3f} ms" if len(added) == 1 else
                f"{median:.3f} ms, the median of {len(added)} rounds "
                f"({', '.join(f'{a:.2f}' for a in added)})")
    if median <= most_ms:
        return name, measured, "PASS", ""
    return name, measured, "FAIL", ("see \"The floor and pgcall's added latency\" for the "
                                    "rounds")


def targets(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [latency_target(doc, 1, 3.0, 8.0), latency_target(doc, 10, 5.0, 25.0),
            capacity_target(doc), floor_target(doc),
            rounds_target(doc, doc["plan"].get("latency_calls", 10))]
