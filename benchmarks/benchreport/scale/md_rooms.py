"""The write-up of section ``rooms``: the rooms targets, the capacity in rooms and the WAL
per room frame. Pure: text from the document's figures only."""

from __future__ import annotations

from ..figures import fmt
from ..markdown import md_table
from .figures import capacity
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
    phasing,
    serve_command,
)

CPU_HEAD = ["pgcall CPU %", "PostgreSQL CPU %", "pgcall µs/frame", "PostgreSQL µs/frame"]


def how(section: Section) -> list[str]:
    m, c = section["media"], section["criteria"]
    return [
        f"One relay, {serve_command(section)}, on a throw-away PostgreSQL (pgcall's embedded "
        "code), and the load generator `pgcall bench --rooms R --room-size K`: one member of "
        f"each room speaks at a time, in turns of {m['turn_s']:g} s (the first "
        f"{m['settle_s']:g} s of a turn left out of the speaker's rate); the speaker sends full "
        f"{m['frame_bytes']}-byte video frames at {m['video_fps']:g} fps and audio; in rooms "
        f"of more than {m['small_room']} the others send {m['thumb_bytes']}-byte thumbnails, "
        f"in rooms of {m['small_room']} or fewer everyone's full layer goes to everyone. "
        f"{phasing(section)} Before each step the script waits for the reaper to empty the "
        "frame tables. "
        + CPU_NOTE, "",
        f"A step **holds** when every room streamed, the speaker's full layer reached every "
        f"receiver at {c['min_fps']:g} fps or more in every measured turn, the others at "
        f"{c['min_fps']:g} fps or more (rooms of {m['small_room']} or fewer: every member's "
        f"full layer at every other) or their thumbnails at {c['min_thumb_fps']:g} fps or more "
        f"(larger rooms), the speaker's video p99 is at most {c['max_p99_ms']:g} ms, at most "
        f"{c['max_lost']} frames were lost and there was no error.", ""]


def room_row(step: Step) -> list[str]:
    b = bench(step)
    return [fmt(b.get("speaker_fps_min"), 2), fmt(b.get("others_fps_min"), 2),
            *latency(step, "speaker_latency_ms"), str(b.get("lost", "-")),
            str(b.get("errors", "-")), frames_per_s(step), *cpu_cells(step), holds(step)]


ROW_HEAD = ["speaker fps min", "others fps min", "speaker p50 ms", "speaker p99 ms", "lost",
            "errors", "frames received/s", *CPU_HEAD, "holds"]


def targets(steps: list[Step]) -> list[str]:
    cases = [s for s in steps if s["case"] != "capacity"]
    if not cases:
        return []
    rows = [[s["case"], bench_command(s), *room_row(s)] for s in cases]
    return ["#### Targets", "", *md_table(["case", "command", *ROW_HEAD], rows)]


def capacity_part(steps: list[Step], fixed: bool) -> list[str]:
    sweep = [s for s in steps if s["case"] == "capacity"]
    if not sweep:
        return []
    size = sweep[0]["room_size"]
    cap, broke = capacity(sweep, "rooms")
    if broke is None:
        verdict = (f"**{cap} rooms of {size}** held, the largest step measured (none broke)."
                   if cap else "no step held or broke.")
    else:
        verdict = (f"**Capacity: {cap or 0} rooms of {size}** (first step that broke: "
                   f"{broke['rooms']} rooms, {broke['why']}).")
    ordered = sorted(sweep, key=lambda s: s["rooms"])
    rows = [[str(s["rooms"]), *room_row(s)] for s in ordered]
    walk = ("the quick run's fixed steps" if fixed else
            "a room more at each step until a step did not hold, and a step more")
    return ["#### Capacity in rooms", "",
            f"Rooms of {size}, R = {', '.join(str(s['rooms']) for s in ordered)} ({walk}); each "
            f"step {bench_command(sweep[0], {'--rooms': 'R'})}. {verdict}", "",
            *md_table(["rooms", *ROW_HEAD], rows)]


def wal_part(records: list[Step]) -> list[str]:
    if not records:
        return []

    def opt(value: int | None, frames: int) -> str:
        return "-" if value is None else f"{value / max(frames, 1):.1f}"

    rows = []
    for r in records:
        s, n = r["frames_sent_by_stream"], r["frames_sent"]
        rows.append([str(r["room_size"]), f"{n} ({s['full']}/{s['thumb']}/{s['audio']})",
                     f"{r['rows_per_frame']:.3f}", f"{r['deliveries_per_frame']:.2f}",
                     f"{r['payload_per_frame']:.0f}", f"{r['wal_per_frame']:.0f}",
                     f"{r['overhead_per_frame']:.0f}", opt(r["wal_records"], n),
                     opt(r["fpi_bytes"], n), str(r["errors"])])
    sizes = ", ".join(str(r["room_size"]) for r in records)
    cmd = bench_command({"bench_args": records[0]["bench_args"], "urls": 1},
                        {"--room-size": "K"})
    return [
        "#### WAL per room frame", "",
        f"For each room size K = {sizes}, alone: wait until the reaper has emptied the room "
        "frame tables, `VACUUM` them, `CHECKPOINT`, read `pg_current_wal_lsn()` and the frame "
        f"tables' id sequences, run {cmd}, and read them again once the reaper has deleted the "
        "run's frames and a `VACUUM` has removed them; a frame's WAL thus covers its INSERT, "
        "its TOAST chunks, its DELETE, its vacuuming and the rooms' setup, and no autovacuum "
        "of an earlier step's rows. Per frame sent: rows written (one whatever the "
        "receivers), deliveries (receivers that got it), payload, WAL, WAL beyond the "
        "payload, and WAL records and full-page-image bytes from `pg_walinspect` (`-` "
        "without it). Larger rooms send mostly thumbnails, so payload and WAL per frame "
        "fall with K; the column to compare is the WAL beyond the payload.", "",
        *md_table(["K", "frames sent (full/thumb/audio)", "rows/frame", "deliveries/frame",
                   "payload B/frame", "WAL B/frame", "WAL beyond payload B/frame",
                   "WAL records/frame", "FPI B/frame", "errors"], rows)]


def rooms_section(section: Section) -> list[str]:
    steps = section.get("steps", [])
    fixed = section["plan"]["capacity_fixed"] is not None
    return ["### Rooms", "", *caveats(section), *measured(section), *how(section),
            *targets(steps), *capacity_part(steps, fixed), *wal_part(section.get("wal", []))]
