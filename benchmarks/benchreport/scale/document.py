"""``benchmarks-scale.json``: one object per section, each saying when, where, how and with
what it was measured, saved after every step so an interrupted run keeps its figures.

Owns: reading an existing document (a run of some sections keeps the others), starting a
section's object (date, machine, PostgreSQL settings, pgcall's options, the bench's media, the
criteria and the plan of the section), and writing the file. Does not own: the figures
(``rooms``, ``recording``, ``workers``, ``relays``) or the write-up (``markdown``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs

from pgcall.bench.cli import build_bench_parser
from pgcall.bench.client import AUDIO_BYTES, AUDIO_FPS
from pgcall.bench.roomstats import SMALL_ROOM

from ..run import machine
from .plan import CRITERIA, Plan

FORMAT = 1


def bench_media() -> dict[str, Any]:
    """The media the bench sends when no option says otherwise (its defaults)."""
    d = vars(build_bench_parser().parse_args([]))
    return {"video_fps": d["fps"], "frame_bytes": d["frame_bytes"], "audio_fps": AUDIO_FPS,
            "audio_bytes": AUDIO_BYTES, "thumb_bytes": d["thumb_bytes"], "turn_s": d["turn"],
            "settle_s": d["settle"], "small_room": SMALL_ROOM,
            "stream_phases": True,  # each stream at its own phase (``bench.client.stream_phase``)
            "bench_client": "own"}  # the generator's own WebSocket client (``bench.wsclient``)


class ScaleDoc:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc: dict[str, Any] = {"format": FORMAT, "sections": {}}
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("format") == FORMAT:
                self.doc = old

    def begin(self, name: str, plan: Plan, postgres: dict[str, str],
              command: str) -> dict[str, Any]:
        """A fresh object for section ``name``, in place of an older one."""
        section = {
            "complete": False, "quick": plan.quick, "command": command,
            "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            "machine": machine(), "postgres": postgres, "serve_args": list(plan.serve_args),
            "media": bench_media(), "criteria": attrs.asdict(CRITERIA),
            "plan": attrs.asdict(getattr(plan, name)),
        }
        self.doc["sections"][name] = section
        self.save()
        return section

    def save(self) -> None:
        self.path.write_text(json.dumps(self.doc, indent=1) + "\n")
