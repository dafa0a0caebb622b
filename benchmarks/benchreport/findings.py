"""The sections of the report that interpret pgcall's figures: the floor and pgcall's added
latency, the two media paths compared, where the limit is, and the targets'
verdicts.

Owns: those four sections. Does not own: the verdicts themselves (``targets``), the sections
that only state the setup and the results (``markdown``), or the comparison with a peer
measured in the same run (``sidebyside``).
"""

from __future__ import annotations

from typing import Any

from .figures import (
    PEER,
    PGCALL,
    added_in_round,
    added_latency,
    capacity,
    cpu,
    cpu_per_frame,
    cpu_total,
    floor_in_one_trip,
    floor_latency,
    floor_p50,
    fmt,
    label,
    latency_rounds,
    peer_of,
    per_frame_us,
    resources_text,
    step_at,
    steps_of,
    video,
)
from .markdown import md_table
from .settings import AUDIO_BYTES, AUDIO_FPS, FRAME_BYTES, VIDEO_FPS
from .targets import targets

FLOOR_NOTE = {
    True: "The floor is a frame's transaction sent (its INSERT and COMMIT in one round trip, "
          "as pgcall sends a batch) until its change is decoded; \"INSERT done\" starts from "
          "the server's clock once the INSERT has run (the commit, the walsender and the "
          "decoding). \"pgcall added\" is pgcall's end-to-end video p50 at the same rate minus "
          "the floor's p50: the WebSocket in and out, parsing, the frame writer's queue, the "
          "hub and the outbox.",
    False: "The floor is COMMIT sent -> decoded (this report's writer sent the INSERT in a "
           "round trip of its own). \"pgcall added\" is pgcall's end-to-end video p50 at the "
           "same rate minus the floor's p50: the WebSocket in and out, parsing, the pool, the "
           "hub and the outbox, and the INSERT's own execution.",
}


def floor_section(doc: dict[str, Any]) -> list[str]:
    one_trip = floor_in_one_trip(doc)
    # The floor, then from where the JSON's second latency starts: the INSERT done (one round
    # trip), or the INSERT sent in a round trip before the COMMIT's (older reports).
    start, second = (("sent", "inserted_to_decoded_ms") if one_trip
                     else ("COMMIT", "insert_to_decoded_ms"))
    rows = []
    for f in doc["floor"]:
        v, a = floor_latency(f), floor_latency(f, "audio")
        rows.append([str(f["calls"]), str(sum(f["rate_per_s"].values())), fmt(v["p50"], 2),
                     fmt(v["p95"], 2), fmt(v["p99"], 2), fmt(a["p50"], 2),
                     fmt(floor_p50(f, second), 2),
                     fmt(f["resources"].get("postgres_cpu_percent"), 0),
                     fmt(video(step_at(doc, "table", f["calls"]), "p50"), 1),
                     fmt(added_latency(doc, f["calls"]), 1)])
    return ["## The floor and pgcall's added latency", "",
            *md_table(["rate of N calls", "frames/s", f"video {start}->decoded p50", "p95",
                       "p99", "audio p50",
                       f"video INSERT{' done' if one_trip else ''}->decoded p50",
                       "PostgreSQL CPU %", "pgcall video p50", "pgcall added at p50"], rows),
            "Latencies in ms. " + FLOOR_NOTE[one_trip], "",
            *rounds_section(doc)]


def rounds_section(doc: dict[str, Any]) -> list[str]:
    """The rounds at the latency target's rate, when there were more than the sweep's."""
    calls = doc["plan"].get("latency_calls", 10)
    rounds = latency_rounds(doc, calls)
    if len(rounds) < 2:
        return []
    peer = label(doc, PEER) if peer_of(doc) else None
    # With the one-round-trip floor, also the floor's part after the INSERT, and pgcall's p50
    # over that: the added latency had the INSERT's execution been counted as pgcall's.
    after = floor_in_one_trip(doc)
    head = ["round", "floor video p50", *(["INSERT done->decoded p50"] if after else []),
            "pgcall video p50", "pgcall added", *(["added over INSERT done"] if after else []),
            "pgcall CPU per frame µs", "steal %", *([f"{peer} video p50"] if peer else [])]
    rows = []
    for r in rounds:
        p50 = video(r.get(PGCALL), "p50")
        inserted = floor_p50(r["floor"], "inserted_to_decoded_ms")
        over = None if p50 is None or inserted is None else p50 - inserted
        rows.append([str(r["round"]), fmt(floor_latency(r["floor"])["p50"], 2),
                     *([fmt(inserted, 2)] if after else []),
                     fmt(p50), fmt(added_in_round(r)), *([fmt(over)] if after else []),
                     fmt(cpu_per_frame(r.get(PGCALL), "server"), 0),
                     fmt(None if r.get(PGCALL) is None else cpu(r[PGCALL], "steal"), 0),
                     *([fmt(video(r.get(PEER), "p50"))] if peer else [])])
    return [f"### At {calls} calls, {len(rounds)} rounds", "",
            "Round 1 is the sweep's step and the floor measured before it; each further "
            "round measures the floor again (both servers idle), then pgcall, then "
            f"{'the peer, ' if peer else ''}each step settled first as in the sweep. A "
            "single step's median moved by more than a millisecond between identical runs "
            "on this machine, so the target on the added latency is judged on the median of "
            "the rounds. \"steal\" is CPU the virtual machine's host took while pgcall's step "
            "ran (`/proc/stat`), in % of one core.", "",
            *md_table(head, rows)]


def compare_section(doc: dict[str, Any]) -> list[str]:
    rows, faster, compared = [], True, 0
    for calls in doc["plan"]["compare_calls"]:
        t, m = step_at(doc, "table", calls), step_at(doc, "message", calls)
        if t is None or m is None:
            continue
        for name, s in (("table", t), ("message", m)):
            b = s["bench"] or {"fps": {}}
            wal = s["resources"].get("wal_bytes_per_s")
            rows.append([str(calls), name, fmt(video(s, "p50")), fmt(video(s, "p99")),
                         fmt(b["fps"].get("min")), fmt(cpu(s, "pgcall"), 0),
                         fmt(cpu(s, "postgres"), 0),
                         fmt(None if wal is None else wal / 1e6, 1),
                         "yes" if s["holds"] else "no"])
        t50, t99, m50, m99 = video(t, "p50"), video(t, "p99"), video(m, "p50"), video(m, "p99")
        if t50 is None or t99 is None or m50 is None or m99 is None:
            continue
        compared += 1
        faster = faster and m50 <= t50 and m99 <= t99 and (m["holds"] or not t["holds"])
    out = ["## Media paths compared", "",
           *md_table(["calls", "path", "video p50", "p99", "fps min", "pgcall CPU %",
                      "PostgreSQL CPU %", "WAL MB/s", "holds"], rows)]
    speed = ("`message` was at least as fast as `table` at every compared step"
             if faster and compared else
             "`message` was not faster than `table` at every compared step (slower at p50 or "
             "p99 somewhere)" if compared else "the paths could not be compared")
    out += [
        f"**Recommendation: `table` stays the default.** In this run {speed}. "
        "The two paths do not keep the same guarantees: `message` stores nothing, so frames "
        "can only come from pgcall itself, and external producers that INSERT frames into "
        "`video_frames`/`audio_frames` (pg-relay's AI worker) work only with `table`; nothing "
        "is kept for `--retain` either. `message` is an option for deployments that need "
        "neither" + (", and it buys the difference above." if faster and compared else "."),
        ""]
    return out


def limit_section(doc: dict[str, Any]) -> list[str]:
    """Where the first step that broke spent the machine, and what that says about the limit."""
    table = steps_of(doc, "table")
    if not table:
        return []
    cap, broke = capacity(doc)
    ref = step_at(doc, "table", cap) or table[-1]
    payload = (2 * VIDEO_FPS * FRAME_BYTES + 2 * AUDIO_FPS * AUDIO_BYTES) / (
        2 * (VIDEO_FPS + AUDIO_FPS))
    wal = ref["resources"].get("wal_bytes_per_s")
    wal_frame = wal / ref["frames_per_s"] if wal and ref["frames_per_s"] else None
    pg_us, app_us = per_frame_us(ref, "postgres"), per_frame_us(ref, "pgcall")
    lines = [
        "## Where the limit is", "",
        "pgcall writes the frames that arrive while a batch is being written in one "
        "transaction (libpq's pipeline mode: one round trip, one commit and one WAL flush per "
        "batch; `docs/performance.md`), so an idle server writes each frame at once and a busy "
        "one several per commit.",
        "",
        f"From the figures, at {ref['calls']} calls ({fmt(ref['frames_per_s'], 0)} frames/s): "
        f"pgcall spent {fmt(app_us, 0)} µs of CPU per frame, PostgreSQL {fmt(pg_us, 0)} µs, "
        f"and each frame wrote {fmt(wal_frame and wal_frame / 1000, 1)} kB of WAL for "
        f"{payload / 1000:.1f} kB of payload on average.",
    ]
    floors = sorted(doc["floor"], key=lambda f: f["calls"])
    if len(floors) >= 2:
        lo, hi = floors[0], floors[-1]
        lo_p50, hi_p50 = floor_latency(lo)["p50"], floor_latency(hi)["p50"]
        lines[-1] += (f" The floor went from p50 {fmt(lo_p50, 2)} ms at {lo['calls']} call(s) "
                      f"to {fmt(hi_p50, 2)} ms at "
                      f"{hi['calls']} calls: that is how much the database path itself slows "
                      "down with the transaction rate.")
    limit = broke or table[-1]
    app, pg, total = cpu(limit, "pgcall") or 0, cpu(limit, "postgres") or 0, cpu_total(limit)
    cores = 100 * (doc["machine"]["cores"] or 1)
    where = (f"At {limit['calls']} calls" + (" (the first step that broke)" if broke else "")
             + f": {resources_text(limit, doc['machine']['cores'])}. ")
    if app >= 85:
        verdict = ("pgcall's one process was the limit: `--workers N` runs one per core "
                   "(see \"Workers\" below).")
    elif total >= 0.9 * cores and pg >= app:
        verdict = ("The cores were saturated and PostgreSQL was the largest user: the database "
                   "path (commits, WAL, the walsender's decoding) is the limit here.")
    elif total >= 0.9 * cores:
        verdict = ("The cores were saturated by the three processes together: the load "
                   "generator shares them, so a load generator on another machine would move "
                   "the limit.")
    else:
        verdict = ("No process and not the machine was saturated: the limit is latency (the "
                   "queues between the processes, each waiting its turn for a core) rather "
                   "than throughput.")
    return [*lines, "", where + verdict, ""]


def targets_section(doc: dict[str, Any]) -> list[str]:
    return ["## pgcall's targets", "",
            *md_table(["target", "measured", "result", "why"],
                      [list(t) for t in targets(doc)])]
