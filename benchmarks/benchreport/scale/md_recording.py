"""The write-up of section ``recording``: the same calls with recording off and on, round by
round, and the spread of each figure over the rounds. Pure: text from the document only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..figures import fmt
from ..markdown import md_table
from .figures import spread, us_per_frame
from .mdcommon import (
    Section,
    Step,
    bench,
    bench_command,
    caveats,
    holds,
    latency,
    mb,
    measured,
    media,
    phasing,
    serve_command,
)

FIGURES: list[tuple[str, Callable[[Step], Any], int]] = [
    ("video p50 ms", lambda s: (bench(s).get("latency_ms") or {}).get("p50"), 1),
    ("video p99 ms", lambda s: (bench(s).get("latency_ms") or {}).get("p99"), 1),
    ("slowest stream fps", lambda s: (bench(s).get("fps") or {}).get("min"), 2),
    ("frames lost", lambda s: bench(s).get("lost"), 0),
    ("pgcall µs/frame", lambda s: us_per_frame(s, "pgcall", settled=True), 0),
    ("PostgreSQL µs/frame", lambda s: us_per_frame(s, "postgres", settled=True), 0),
]


def how(section: Section, steps: list[Step]) -> list[str]:
    off = next((s for s in steps if not s["record"]), None)
    on = next((s for s in steps if s["record"]), None)
    cmds = " and ".join(bench_command(s) for s in (off, on) if s is not None)
    settle = [s["settle_wall_s"] for s in steps]
    c = section["criteria"]
    return [
        f"One relay, {serve_command(section)}, kept running for every round; each round runs "
        f"{cmds} ({media(section)} in both directions of each call), in alternating order "
        "(off then on in odd rounds, on then off in even ones). With `--record` every client "
        "says hello with the recording feature and the caller records the call while it "
        "streams; the reaper moves recorded frames into `recorded_frames` once they are older "
        "than `--retain`. **Storage does not accumulate across rounds**: after each recorded "
        "step, once the reaper has moved its frames, the script deletes every recording (its "
        "frames go with it) and runs `VACUUM recorded_frames`; pgcall is not restarted. "
        + phasing(section), "",
        "CPU is utime + stime from `/proc` of pgcall's process tree and of the whole "
        "PostgreSQL cluster, from just before the bench starts until the reaper has emptied "
        "the frame tables after it (moving the frames with recording on, deleting them "
        f"without; that wait took {fmt(min(settle), 1)} to {fmt(max(settle), 1)} s), per frame "
        "the clients received. A step holds with every video stream at "
        f"{c['min_fps']:g} fps or more and video p99 at most {c['max_p99_ms']:g} ms.", ""]


def rounds_table(steps: list[Step]) -> list[str]:
    rows = []
    for s in steps:
        b, stored = bench(s), s.get("stored")
        kept = "-" if not stored else f"{stored['frames']} frames, {mb(stored['table_bytes'])} MB"
        rows.append([str(s["round"]), "on" if s["record"] else "off", *latency(s),
                     fmt((b.get("fps") or {}).get("min"), 2), str(b.get("lost", "-")),
                     str(b.get("errors", "-")),
                     fmt(us_per_frame(s, "pgcall", settled=True), 0),
                     fmt(us_per_frame(s, "postgres", settled=True), 0), kept, holds(s)])
    return md_table(["round", "recording", "video p50 ms", "video p99 ms", "fps min", "lost",
                     "errors", "pgcall µs/frame", "PostgreSQL µs/frame",
                     "recorded (then deleted)", "holds"], rows)


def spread_table(steps: list[Step]) -> list[str]:
    def cell(values: dict[str, float | None], digits: int) -> str:
        return (f"{fmt(values['min'], digits)} / {fmt(values['median'], digits)} / "
                f"{fmt(values['max'], digits)}")

    rows = []
    for name, pick, digits in FIGURES:
        off = spread(pick(s) for s in steps if not s["record"])
        on = spread(pick(s) for s in steps if s["record"])
        diff = (None if off["median"] is None or on["median"] is None
                else on["median"] - off["median"])
        rows.append([name, cell(off, digits), cell(on, digits), fmt(diff, digits)])
    n_off = sum(1 for s in steps if not s["record"])
    n_on = len(steps) - n_off
    return [f"Over the rounds ({n_off} off, {n_on} on): min / median / max, and the median "
            "with recording on minus the median with it off.", "",
            *md_table(["figure", "off", "on", "on - off (medians)"], rows)]


def recording_section(section: Section) -> list[str]:
    steps = section.get("steps", [])
    head = ["### Recording on and off", "", *caveats(section), *measured(section)]
    if not steps:
        return head
    return [*head, *how(section, steps), *rounds_table(steps), *spread_table(steps)]
