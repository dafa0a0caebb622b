"""Arithmetic on the recorded steps of a scale run, for the markdown. Pure.

Owns: a step's CPU as a share of one core and per frame received, the spread (min, median, max)
of a figure over rounds, the capacity of a sweep (the largest step that held, the first that
broke), the order of the recording rounds, and the egress comparison of a relays step: the
walsenders' bytes against what they would be if every relay received every frame. Does not own:
measuring (``measure``) or wording (``md_*``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any

Step = dict[str, Any]


def frames_received(step: Step) -> int | None:
    bench = step.get("bench")
    return None if bench is None else bench.get("frames_received")


def cpu_percent(step: Step, name: str) -> float | None:
    """``name``'s CPU in % of one core, from just before the bench started to its exit."""
    seconds, wall = step["cpu_s"].get(name), step.get("bench_wall_s")
    return None if seconds is None or not wall else 100 * seconds / wall


def us_per_frame(step: Step, name: str, settled: bool = False) -> float | None:
    """µs of ``name``'s CPU per frame the clients received: over the bench, or (``settled``)
    over the bench and the wait until the reaper had emptied the frame tables."""
    seconds = step["cpu_s_settled" if settled else "cpu_s"].get(name)
    frames = frames_received(step)
    return None if seconds is None or not frames else seconds * 1e6 / frames


def spread(values: Iterable[float | None]) -> dict[str, float | None]:
    """min, median and max of the values that are there (None where there are none)."""
    have = [v for v in values if v is not None]
    if not have:
        return {"min": None, "median": None, "max": None, "n": 0}
    return {"min": min(have), "median": statistics.median(have), "max": max(have),
            "n": len(have)}


def capacity(steps: Iterable[Step], key: str) -> tuple[int | None, Step | None]:
    """The largest ``step[key]`` that held (None if none did), and the first step that broke,
    in the order of ``key``."""
    ordered = sorted(steps, key=lambda s: s[key])
    held = [s[key] for s in ordered if s["holds"]]
    broke = next((s for s in ordered if not s["holds"]), None)
    return (max(held) if held else None), broke


def recording_order(rounds: int) -> list[tuple[int, bool]]:
    """(round, recording on) in the order to run: off then on in the first round, on then off
    in the second, and so on, so neither always comes first."""
    order = []
    for r in range(rounds):
        first = r % 2 == 1
        order += [(r + 1, first), (r + 1, not first)]
    return order


def by(steps: Iterable[Step], pick: Callable[[Step], Any]) -> dict[Any, list[Step]]:
    out: dict[Any, list[Step]] = {}
    for s in steps:
        out.setdefault(pick(s), []).append(s)
    return out


def egress(step: Step) -> dict[str, float | None]:
    """A relays step's database egress against the naive one.

    ``egress_bytes``: what the walsenders sent all relays (the sum of their
    ``pgcall_replication_bytes_total`` growth); ``frames_in``: media frames the relays read
    from their streams; ``frames_written``: media frames written to PostgreSQL by all relays
    (every frame sent once). A frame reaching a relay costs ``egress_bytes / frames_in`` bytes
    (the stream's other messages included), so every relay receiving every frame would cost
    ``relays x frames_written x`` that: ``naive_bytes``. ``ratio``: measured / naive."""
    relays = step["per_relay"]
    out: dict[str, float | None] = {
        "relays": len(relays),
        "egress_bytes": sum(r["replication_bytes"] for r in relays),
        "frames_in": sum(r["frames_in"] for r in relays),
        "frames_written": sum(r["frames_written"] for r in relays),
    }
    frames_in, written = out["frames_in"], out["frames_written"]
    per_frame = None if not frames_in else (out["egress_bytes"] or 0) / frames_in
    out["bytes_per_frame_in"] = per_frame
    out["naive_bytes"] = None if per_frame is None else len(relays) * (written or 0) * per_frame
    naive = out["naive_bytes"]
    out["ratio"] = None if not naive else (out["egress_bytes"] or 0) / naive
    return out
