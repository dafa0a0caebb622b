"""The markdown tables of the report and its sections that state what was run and measured.

Owns: the table syntax, the latency and resource tables of a server's media path, and the
``Machine`` and ``Method`` sections (with the peer's lines when the run measured one). Does not
own: the sections that interpret the figures (``findings``, ``sidebyside``), the summary and
the order of the sections (``render``).
"""

from __future__ import annotations

from typing import Any

from .figures import cpu, cpu_total, floor_in_one_trip, fmt
from .settings import (
    AUDIO_BYTES,
    AUDIO_FPS,
    FRAME_BYTES,
    MAX_P99_MS,
    MIN_FPS,
    POOL_SIZE,
    SAMPLE_INTERVAL_S,
    VIDEO_FPS,
    WARMUP_S,
)


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def latency_rows(steps: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in steps:
        b = s["bench"]
        if b is None:
            rows.append([str(s["calls"]), *["-"] * 10, "no figures"])
            continue
        v, a = b["latency_ms"], b["audio_latency_ms"]
        rows.append([str(s["calls"]), fmt(v["p50"]), fmt(v["p95"]), fmt(v["p99"]),
                     fmt(v["max"]), fmt(a["p50"]), fmt(a["p99"]), fmt(b["fps"]["min"]),
                     fmt(b["fps"]["median"]), str(b["lost"]), str(b["errors"]),
                     "yes" if s["holds"] else f"**no**: {s['why']}"])
    return rows


LATENCY_HEAD = ["calls", "video p50", "p95", "p99", "max", "audio p50", "audio p99",
                "fps min", "fps median", "lost", "errors", "holds"]
def resource_head(name: str) -> list[str]:
    return ["calls", "frames/s", f"{name} CPU %", f"{name} RSS MiB (max)", "PostgreSQL CPU %",
            "WAL MB/s", "load generator CPU %", "total CPU %"]


RESOURCE_HEAD = resource_head("pgcall")


def resource_rows(steps: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in steps:
        r = s["resources"]
        wal = r.get("wal_bytes_per_s")
        rows.append([str(s["calls"]), fmt(s["frames_per_s"], 0), fmt(cpu(s, "server"), 0),
                     fmt(r.get("rss_mib_max"), 0), fmt(cpu(s, "postgres"), 0),
                     fmt(None if wal is None else wal / 1e6, 1), fmt(cpu(s, "bench"), 0),
                     f"{cpu_total(s):.0f}"])
    return rows


def method_section(doc: dict[str, Any]) -> list[str]:
    p = doc["plan"]
    return [
        "## Method", "",
        f"Everything runs on one machine: a throw-away PostgreSQL (pgcall's embedded code, "
        f"default settings below), one pgcall process (`--dsn` of that server, "
        f"`--log-level warning`) and the load generator `pgcall bench`. Each step is "
        f"`pgcall bench --calls N --duration {p['duration_s']:g} --ramp {p['ramp_s']:g} "
        f"--procs {p['procs']} --json`: N calls of two clients, each streaming "
        f"{FRAME_BYTES}-byte video frames at {VIDEO_FPS} fps and {AUDIO_BYTES}-byte audio frames "
        f"at {AUDIO_FPS}/s in both directions, so N calls are {2 * (VIDEO_FPS + AUDIO_FPS)} x N "
        "frames/s. Latency is from the sender's write to the receiver's read of the WebSocket "
        "message, on one clock (both clients of a call live in the same process). Percentiles "
        "are nearest-rank. " + phases(p) + " " + bench_client(p), "",
        f"A step **holds** when every planned video stream delivered at least {MIN_FPS:g} fps "
        f"and the video p99 is at most {MAX_P99_MS:g} ms. The sweep goes 1, 2, 5, 10, 15, 20, "
        "25, 30, 40, ... calls until a step does not hold, and runs one step more; **capacity** "
        "is the largest N that held. " + between_steps(p), "",
        f"While a step runs, `/proc` is sampled every {SAMPLE_INTERVAL_S:g} s: CPU of pgcall, "
        "of the whole PostgreSQL cluster (postmaster and every backend, including the "
        "walsender), of the load generator (all its processes), pgcall's RSS, and "
        "`pg_current_wal_lsn()` for the WAL written. CPU is in % of one core; the figures in "
        f"the tables are taken over the window when every call streams (from {p['ramp_s']:g} "
        f"+ 2 s to {p['duration_s']:g} + 0.5 s after the step starts); `benchmarks.json` also "
        "has them over the whole step, and every sample.", "",
        "**The floor** is what the database path alone costs: a writer process inserts the "
        "same frames at the same total rate as N calls (video and audio, both directions, one "
        f"transaction per frame on a pool of {POOL_SIZE} connections: no batching, so the floor "
        "is the database path a frame takes alone, not pgcall's batches), and a "
        "bare logical replication consumer in the script's own process (the same pgoutput "
        "stream pgcall opens, but no hub and no WebSocket) reads them back. "
        + floor_method(doc), "",
        "**Media paths**: pgcall is restarted with `--media-path message` and steps "
        f"{', '.join(str(c) for c in p['compare_calls'])} are repeated. `table` INSERTs each "
        "frame into `video_frames`/`audio_frames` (pg-relay's way); `message` sends it with "
        "`pg_logical_emit_message(true, ...)`, which reaches the stream the same way at COMMIT "
        "but stores nothing.", "",
        *peer_method(doc),
        *SCALE_METHOD,
    ]


SCALE_METHOD = [
    "**Scale-out** (rooms, recording on and off, `--workers`, several relays on one database) "
    "is measured by another script, `python3 benchmarks/scale.py` from the repository root on "
    "an otherwise idle machine (about half an hour; `--sections rooms,recording,workers,"
    "relays` runs some of them, `--quick` checks the script in a few minutes and is no "
    "figure). It writes `benchmarks-scale.json` and renders this file again with its "
    "sections at the end (`--render-only` does only that); `benchmarks/report.py` keeps them.",
    ""]


def between_steps(plan: dict[str, Any]) -> str:
    if not plan.get("quiesce"):
        return "Between steps the script waits for the reaper to empty the frame tables."
    return ("Before each step the script waits for the reaper of every server in the run to "
            "empty its frame tables, then runs `VACUUM` on those tables and `CHECKPOINT` on "
            "each database it can see: steps of two servers alternate on one machine, and "
            "without this a step ran while the other server's database still vacuumed and "
            "wrote back the step before it.")


def phases(plan: dict[str, Any]) -> str:
    if not plan.get("stream_phases"):
        return ("A call's four streams (video and audio, each way) were sent in step: their "
                "frames fell due in the same instant.")
    return ("Each of a call's four streams (video and audio, each way) starts at its own fixed "
            "pseudo-random point of its first frame interval, as two people's cameras and "
            "microphones are not in step (the floor's writer does the same); before "
            "2026-11-30 they were sent in step, each frame beside three others, which added "
            "their queueing behind each other to every latency measured.")


def bench_client(plan: dict[str, Any]) -> str:
    if plan.get("bench_client") != "own":
        return ("The load generator's clients used trio-websocket (a reader task per socket "
                "handing each message to the receiving task through a channel).")
    return ("The load generator's clients use its own WebSocket client (wsproto on the "
            "socket: the receiving task reads its messages itself, and a write the kernel "
            "takes at once makes no task switch); until 2026-11-30 they used "
            "trio-websocket, with which the generator spent more CPU per frame than the relay "
            "it measured and added its own turns to every latency (`docs/performance.md`, "
            "\"The load generator's own share\").")


def peer_method(doc: dict[str, Any]) -> list[str]:
    peer = doc.get("peer")
    if peer is None:
        return []
    return [
        f"**{peer['name']}** is swept in the same run by the same `pgcall bench` command, its "
        "steps interleaved with pgcall's `table` steps (pgcall at N calls, then "
        f"{peer['name']} at N, then the next N), each server until one of its steps breaks and "
        "one step more; " + (
            "before every step, of either server, both settle as above (a fixed pause for a "
            "peer whose tables the script cannot see). " if doc["plan"].get("quiesce") else
            "between its steps the script waits for its frame tables to empty (a fixed pause "
            "if it cannot see them). ") + "Each server's CPU is also taken over the "
        "whole step: its relay's process tree (the pid and all its descendants) and all the "
        "processes of its PostgreSQL cluster, whose postmaster is found from a database "
        "connection (`SHOW data_directory` and its `postmaster.pid`, else the parent of the "
        "connection's own backend); divided by the frames the clients received, that is the "
        "CPU per relayed frame.", "",
    ]


def peer_machine(doc: dict[str, Any]) -> list[str]:
    peer = doc.get("peer")
    if peer is None:
        return []
    pg = peer.get("postgres") or {}
    line = f"* {peer['name']}'s PostgreSQL: " + (
        f"{pg.get('server_version', '?')} (synchronous_commit={pg.get('synchronous_commit', '?')}"
        f", fsync={pg.get('fsync', '?')}, shared_buffers={pg.get('shared_buffers', '?')}, "
        f"max_wal_size={pg.get('max_wal_size', '?')}, "
        f"wal_compression={pg.get('wal_compression', '?')})" if pg else "not seen by the report")
    started = peer.get("started")
    if started:
        line += f"; {peer['name']} run as `{started['command']}` with Node {started['node']}"
    return [line]


def machine_section(doc: dict[str, Any]) -> list[str]:
    m, pg = doc["machine"], doc["postgres"]
    load = ", ".join(f"{x:g}" for x in m["loadavg_at_start"])
    return [
        "## Machine", "",
        f"* {m['cores']} cores ({m['cpu']}), {m['memory']} RAM, {m['kernel']}; the load "
        "generator runs on the same machine",
        f"* load average when the run started: {load}",
        f"* PostgreSQL {pg.get('server_version', '?')} (synchronous_commit="
        f"{pg.get('synchronous_commit', '?')}, fsync={pg.get('fsync', '?')}, shared_buffers="
        f"{pg.get('shared_buffers', '?')}, max_wal_size={pg.get('max_wal_size', '?')}, "
        f"wal_compression={pg.get('wal_compression', '?')})",
        f"* pgcall {m['pgcall']}, Python {m['python']}, trio {m['trio']}",
        *peer_machine(doc),
        f"* date: {doc['date_utc']} UTC", "",
    ]


def floor_method(doc: dict[str, Any]) -> str:
    if not floor_in_one_trip(doc):  # a report made before the one-round-trip writer
        return ("Each transaction carries in a transactional logical message the time its "
                f"COMMIT was sent; the floor is COMMIT sent -> change decoded, first "
                f"{WARMUP_S:g} s left out. INSERT sent -> decoded is in the JSON as well.")
    return ("Each transaction is sent in one round trip, as pgcall sends its batches (libpq's "
            "pipeline mode: the INSERT, then a transactional logical message, then the "
            "commit), and the message carries when the writer sent it; the floor is sent -> "
            f"change decoded, first {WARMUP_S:g} s left out. The message also carries the "
            "server's clock once the INSERT has run: INSERT done -> decoded (the commit, the "
            "walsender, the decoding). Reports before 2026-11-30 sent the INSERT and the "
            "COMMIT in two round trips and took the floor from the COMMIT's send, which left "
            "the INSERT's execution out of the floor and put a third round trip per frame on "
            "the database.")
