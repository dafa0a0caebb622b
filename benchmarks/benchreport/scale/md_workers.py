"""The write-up of section ``workers``: the capacity in calls of ``pgcall serve --workers 1``
and ``--workers 2``, step by step. Pure: text from the document's figures only."""

from __future__ import annotations

from ..figures import fmt
from ..markdown import md_table
from .figures import by, capacity
from .mdcommon import (
    CPU_NOTE,
    Section,
    Step,
    bench,
    bench_command,
    caveats,
    cpu_cells,
    frames_per_s,
    holds,
    latency,
    measured,
    media,
    phasing,
    serve_command,
)


def how(section: Section, steps: list[Step]) -> list[str]:
    c, fixed = section["criteria"], section["plan"]["fixed"] is not None
    walk = ("the quick run's fixed steps" if fixed else
            "N = 5, 10, 15, ... until a step does not hold, and a step more, for each")
    return [
        f"One relay at a time, {serve_command(section, 'W')} with W = 1 and W = 2 (W worker "
        "processes on one port, the kernel spreading the connections over them; each worker "
        "its own replication stream), started afresh for every step so that only the "
        f"configuration measured runs; each step {bench_command(steps[0], {'--calls': 'N'})} "
        f"({media(section)} in both directions of each call), {walk}, the two configurations' "
        "steps interleaved (W = 1 at N calls, W = 2 at N, then the next N). pgcall's CPU is its "
        "whole process tree, the parent and its workers. " + phasing(section) + " "
        + CPU_NOTE, "",
        f"A step **holds** with every video stream at {c['min_fps']:g} fps or more and video "
        f"p99 at most {c['max_p99_ms']:g} ms; **capacity** is the largest N that held.", ""]


def verdicts(steps: list[Step]) -> list[str]:
    lines = []
    for workers, mine in sorted(by(steps, lambda s: s["workers"]).items()):
        cap, broke = capacity(mine, "calls")
        if broke is None:
            text = (f"{cap} calls held, the largest step measured (none broke)" if cap
                    else "no step held or broke")
        else:
            text = (f"**capacity {cap or 0} calls** (first step that broke: {broke['calls']} "
                    f"calls, {broke['why']})")
        lines.append(f"* `--workers {workers}`: {text}.")
    return [*lines, ""]


ROW_HEAD = ["calls", "workers", "video p50 ms", "video p99 ms", "fps min", "lost", "errors",
            "frames received/s", "pgcall CPU %", "PostgreSQL CPU %", "pgcall µs/frame",
            "PostgreSQL µs/frame", "holds"]


def steps_table(steps: list[Step]) -> list[str]:
    rows = []
    for s in sorted(steps, key=lambda s: (s["calls"], s["workers"])):
        b = bench(s)
        rows.append([str(s["calls"]), str(s["workers"]), *latency(s),
                     fmt((b.get("fps") or {}).get("min"), 2), str(b.get("lost", "-")),
                     str(b.get("errors", "-")), frames_per_s(s), *cpu_cells(s), holds(s)])
    return md_table(ROW_HEAD, rows)


def workers_section(section: Section) -> list[str]:
    steps = section.get("steps", [])
    head = ["### Workers", "", *caveats(section), *measured(section)]
    if not steps:
        return head
    return [*head, *how(section, steps), *verdicts(steps), *steps_table(steps)]
