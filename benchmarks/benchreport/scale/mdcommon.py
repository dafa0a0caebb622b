"""What every section of the scale write-up says the same way: when, where and by what command
it was measured, the caveats of a quick or unfinished run, the commands of pgcall and of the
bench, and the cells of the tables. Pure: text from the document's figures only.

Owns: those lines and cells. Does not own: any section's own text (``md_*``).
"""

from __future__ import annotations

import shlex
from typing import Any

from ..figures import fmt
from .figures import cpu_percent, us_per_frame

Section = dict[str, Any]
Step = dict[str, Any]


def caveats(section: Section) -> list[str]:
    lines = []
    if section["quick"]:
        lines += ["> **Quick check run (`--quick`)**: tiny loads for a few seconds, to check the "
                  "script. These are not figures.", ""]
    if not section["complete"]:
        lines += ["> **Incomplete**: the run stopped before the end of this section.", ""]
    return lines


def measured(section: Section) -> list[str]:
    m, pg = section["machine"], section["postgres"]
    load = ", ".join(f"{x:g}" for x in m["loadavg_at_start"])
    took = f" in {section['wall_s']:.0f} s" if section.get("wall_s") is not None else ""
    return [
        f"Measured {section['date_utc']} UTC by `{section['command']}`{took}, on {m['cores']} "
        f"cores ({m['cpu']}), {m['memory']} RAM, {m['kernel']}, load average {load} at the "
        f"start, the load generator on the same machine; PostgreSQL "
        f"{pg.get('server_version', '?')} (synchronous_commit={pg.get('synchronous_commit', '?')}"
        f", fsync={pg.get('fsync', '?')}, shared_buffers={pg.get('shared_buffers', '?')}, "
        f"max_wal_size={pg.get('max_wal_size', '?')}, wal_level={pg.get('wal_level', '?')}); "
        f"pgcall {m['pgcall']}, Python {m['python']}, trio {m['trio']}.", ""]


def serve_command(section: Section, workers: str | None = None) -> str:
    extra = [*section["serve_args"], *([] if workers is None else ["--workers", workers])]
    return ("`" + shlex.join(["pgcall", "serve", "--dsn", "DSN", "--port", "PORT",
                              "--log-level", "warning", "--media-path", "table", *extra]) + "`")


def bench_command(step: Step, placeholders: dict[str, str] | None = None) -> str:
    """The step's bench command, ``--url URL`` once per relay; an option's value replaced where
    ``placeholders`` says (``{"--calls": "N"}``)."""
    args = list(step["bench_args"])
    for option, name in (placeholders or {}).items():
        if option in args:
            args[args.index(option) + 1] = name
    urls = (["--url", "URL"] if step["urls"] == 1 else
            [a for i in range(step["urls"]) for a in ("--url", f"URL{i + 1}")])
    return "`" + " ".join(["pgcall", "bench", *urls, *args]) + "`"


def media(section: Section) -> str:
    m = section["media"]
    return (f"video frames of {m['frame_bytes']} bytes at {m['video_fps']:g} fps and audio "
            f"frames of {m['audio_bytes']} bytes at {m['audio_fps']}/s")


def phasing(section: Section) -> str:
    """How the bench's streams were timed against each other in this section's run, and
    which WebSocket client it used."""
    if section["media"].get("stream_phases"):
        client = ("" if section["media"].get("bench_client") == "own" else
                  " The load generator of this run (before 2026-11-30) used trio-websocket's "
                  "client, which cost it more CPU per frame than its own does now and added its "
                  "own turns to the latencies (`docs/performance.md`, \"The load generator's "
                  "own share\").")
        return ("Each stream is sent at its own fixed pseudo-random point of its frame "
                "interval, as people's cameras and microphones are not in step." + client)
    return ("The load generator of this run (before 2026-11-30) sent the streams of a call or "
            "a room in step, every frame due in the same instant as the others': its "
            "latencies include their queueing behind each other.")


def bench(step: Step) -> dict[str, Any]:
    return step.get("bench") or {}


def latency(step: Step, key: str = "latency_ms") -> list[str]:
    lat = bench(step).get(key) or {}
    return [fmt(lat.get("p50")), fmt(lat.get("p99"))]


def holds(step: Step) -> str:
    return "yes" if step["holds"] else f"**no**: {step['why']}"


def cpu_cells(step: Step, names: tuple[str, ...] = ("pgcall", "postgres"),
              settled: bool = False) -> list[str]:
    """CPU in % of one core over the bench, then µs per frame received, of each name."""
    return ([fmt(cpu_percent(step, n), 0) for n in names]
            + [fmt(us_per_frame(step, n, settled), 0) for n in names])


def frames_per_s(step: Step) -> str:
    b = bench(step)
    got, span = b.get("frames_received"), b.get("duration_s")
    return fmt(None if got is None or not span else got / span, 0)


def mb(value: float | None) -> str:
    return fmt(None if value is None else value / 1e6, 1)


CPU_NOTE = ("CPU is utime + stime from `/proc`, read just before the bench starts and when it "
            "exits: of pgcall's whole process tree, of the whole PostgreSQL cluster (the "
            "postmaster and every process under it, walsenders included); \"%\" is of one core "
            "over the bench's wall-clock time, \"µs/frame\" per frame the clients received.")
