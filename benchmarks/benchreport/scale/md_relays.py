"""The write-up of section ``relays``: 1, 2 and 4 relays on one database at the same load, what
the walsenders sent each relay and in total against every relay receiving every frame, and
each relay's CPU. Pure: text from the document's figures only."""

from __future__ import annotations

from ..figures import fmt
from ..markdown import md_table
from .figures import cpu_percent, egress, us_per_frame
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


def how(section: Section, steps: list[Step]) -> list[str]:
    c = section["criteria"]
    counts = ", ".join(str(s["relays"]) for s in steps)
    widest = max(steps, key=lambda s: s["urls"])
    return [
        f"R = {counts} separate relays, each {serve_command(section)} on its own port and the "
        "same database, started afresh for each R; the same load at every R, "
        f"{bench_command(widest)} ({media(section)} in both directions of each call), the "
        "bench given every relay's URL so that it spreads its clients over them (a call's two "
        "clients on different relays when there are several). Before and after each step "
        "(once the reaper has emptied the frame tables) the script reads every relay's "
        "`/metrics`: `pgcall_replication_bytes_total` (the bytes its walsender sent it, its "
        "share of the database's egress), `pgcall_frames_written_total` (media frames it wrote "
        "to PostgreSQL) and `pgcall_frames_in_total` (media frames it read from its "
        "replication stream). CPU is utime + stime from `/proc` of each relay's process tree "
        "and of the whole PostgreSQL cluster, in % of one core over the bench. "
        + phasing(section), "",
        "**Every relay every frame** is what the walsenders would send if each relay received "
        "every frame written: R x frames written x the measured bytes per frame read. The "
        "point to check: the database's egress follows the receivers (frames read by the "
        "relays stay those the clients need, whatever R), not R x frames. A step holds with "
        f"every video stream at {c['min_fps']:g} fps or more and video p99 at most "
        f"{c['max_p99_ms']:g} ms.", ""]


TOTAL_HEAD = ["relays", "video p50 ms", "video p99 ms", "fps min", "frames written",
              "frames read by relays", "egress MB", "egress B/frame read",
              "every relay every frame MB", "egress / that", "relays' CPU % (sum)",
              "PostgreSQL CPU %", "PostgreSQL µs/frame", "holds"]


def totals_table(steps: list[Step]) -> list[str]:
    rows = []
    for s in steps:
        e = egress(s)
        relay_cpu = [cpu_percent(s, r["name"]) for r in s["per_relay"]]
        cpu_sum = None if any(v is None for v in relay_cpu) else sum(
            v for v in relay_cpu if v is not None)
        rows.append([str(s["relays"]), *latency(s), fmt((bench(s).get("fps") or {}).get("min"), 2),
                     str(e["frames_written"]), str(e["frames_in"]), mb(e["egress_bytes"]),
                     fmt(e["bytes_per_frame_in"], 0), mb(e["naive_bytes"]), fmt(e["ratio"], 2),
                     fmt(cpu_sum, 0), fmt(cpu_percent(s, "postgres"), 0),
                     fmt(us_per_frame(s, "postgres"), 0), holds(s)])
    return md_table(TOTAL_HEAD, rows)


def per_relay_table(steps: list[Step]) -> list[str]:
    rows = []
    for s in steps:
        for r in s["per_relay"]:
            rows.append([str(s["relays"]), r["name"], mb(r["replication_bytes"]),
                         str(r["frames_written"]), str(r["frames_in"]),
                         fmt(cpu_percent(s, r["name"]), 0)])
    return ["Each relay:", "",
            *md_table(["relays", "relay", "walsender sent MB", "frames written",
                       "frames read", "CPU %"], rows)]


def finding(steps: list[Step]) -> list[str]:
    """The egress at each R against the one relay's, when R = 1 was measured."""
    first = next((s for s in steps if s["relays"] == 1), None)
    if first is None or not egress(first)["egress_bytes"]:
        return []
    base = egress(first)["egress_bytes"] or 0
    parts = []
    for s in steps:
        e = egress(s)
        parts.append(f"{s['relays']} relay{'s' if s['relays'] > 1 else ''}: "
                     f"{mb(e['egress_bytes'])} MB ({fmt((e['egress_bytes'] or 0) / base, 2)} x)")
    return ["Database egress at the same load, against one relay's: " + "; ".join(parts)
            + ".", ""]


def relays_section(section: Section) -> list[str]:
    steps = sorted(section.get("steps", []), key=lambda s: s["relays"])
    head = ["### Several relays on one database", "", *caveats(section), *measured(section)]
    if not steps:
        return head
    return [*head, *how(section, steps), *finding(steps), *totals_table(steps),
            *per_relay_table(steps)]
