"""What a scale run measures, in a full and in a quick run, and the criteria a step is judged
by. Pure: constants and ``attrs`` classes.

Owns: ``Load`` (the bench's duration, processes and ramp, as options), the plan of each section,
the sequences the capacity sweeps walk (rooms 1, 2, 3, ...; calls 5, 10, 15, ...), the criteria,
and the section names. Does not own: running anything (``rooms``, ``recording``, ``workers``,
``relays``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import attrs

SECTIONS = ("rooms", "recording", "workers", "relays")
MAX_ROOMS = 60  # the rooms sweep gives up here even if every step held
MAX_CALLS = 200


@attrs.frozen
class Criteria:
    """A step holds with every video stream at least ``min_fps`` (a room's speaker, and everyone
    in a room of 4 or fewer), the thumbnails of larger rooms at least ``min_thumb_fps``, video
    p99 (a room's speaker's) at most ``max_p99_ms``, at most ``max_lost`` frames lost in rooms,
    and no error in rooms."""

    min_fps: float = 14.5
    min_thumb_fps: float = 5.0
    max_p99_ms: float = 100.0
    max_lost: int = 0


@attrs.frozen
class Load:
    """How long the bench streams, over how many processes, its start-ups spread over how long."""

    duration_s: float
    procs: int = 1
    ramp_s: float = 0.0

    def args(self) -> list[str]:
        out = ["--duration", f"{self.duration_s:g}"]
        if self.procs != 1:
            out += ["--procs", str(self.procs)]
        if self.ramp_s:
            out += ["--ramp", f"{self.ramp_s:g}"]
        return out


@attrs.frozen
class RoomCase:
    name: str
    rooms: int
    size: int
    load: Load


def room_args(rooms: int, size: int, load: Load) -> list[str]:
    return ["--rooms", str(rooms), "--room-size", str(size), *load.args(), "--json"]


def call_args(calls: int, load: Load, record: bool = False) -> list[str]:
    return ["--calls", str(calls), *load.args(), *(["--record"] if record else []), "--json"]


@attrs.frozen
class RoomsPlan:
    cases: tuple[RoomCase, ...]
    capacity_size: int
    capacity_load: Load
    capacity_fixed: tuple[int, ...] | None  # None: 1, 2, 3, ... until one breaks, one more
    wal_sizes: tuple[int, ...]
    wal_rooms: int
    wal_load: Load


@attrs.frozen
class RecordingPlan:
    calls: int
    load: Load
    rounds: int


@attrs.frozen
class WorkersPlan:
    workers: tuple[int, ...]
    load: Load
    fixed: tuple[int, ...] | None  # None: 5, 10, 15, ... until one breaks, one more


@attrs.frozen
class RelaysPlan:
    relays: tuple[int, ...]
    calls: int
    load: Load


@attrs.frozen
class Plan:
    quick: bool
    serve_args: tuple[str, ...]  # more options of every `pgcall serve`
    rooms: RoomsPlan
    recording: RecordingPlan
    workers: WorkersPlan
    relays: RelaysPlan


FULL = Plan(
    quick=False, serve_args=(),
    rooms=RoomsPlan(
        cases=(RoomCase("one room of 16", 1, 16, Load(30.0)),
               RoomCase("four rooms of 4", 4, 4, Load(30.0, 2, 2.0))),
        capacity_size=8, capacity_load=Load(20.0, 2, 2.0), capacity_fixed=None,
        wal_sizes=(2, 4, 8, 16), wal_rooms=1, wal_load=Load(10.0)),
    recording=RecordingPlan(calls=10, load=Load(12.0, 2, 1.0), rounds=3),
    workers=WorkersPlan(workers=(1, 2), load=Load(12.0, 2, 2.0), fixed=None),
    relays=RelaysPlan(relays=(1, 2, 4), calls=8, load=Load(15.0, 2, 2.0)),
)
# Checks the script in a few minutes: tiny loads, fixed steps, and frames kept 1 s instead of
# 5 s so that the waits between steps are short. Not figures.
QUICK = Plan(
    quick=True, serve_args=("--retain", "1"),
    rooms=RoomsPlan(
        cases=(RoomCase("one room of 6", 1, 6, Load(5.0)),
               RoomCase("two rooms of 4", 2, 4, Load(5.0, 2, 0.5))),
        capacity_size=4, capacity_load=Load(5.0, 2, 0.5), capacity_fixed=(1, 2),
        wal_sizes=(2, 4), wal_rooms=1, wal_load=Load(3.0)),
    recording=RecordingPlan(calls=2, load=Load(4.0, 2, 0.5), rounds=1),
    workers=WorkersPlan(workers=(1, 2), load=Load(4.0, 2, 0.5), fixed=(2,)),
    relays=RelaysPlan(relays=(1, 2), calls=2, load=Load(4.0, 2, 0.5)),
)
CRITERIA = Criteria()


def room_counts() -> Iterator[int]:
    return iter(range(1, MAX_ROOMS + 1))


def worker_calls() -> Iterator[int]:
    return itertools.takewhile(lambda n: n <= MAX_CALLS, itertools.count(5, 5))


def parse_sections(text: str) -> tuple[str, ...]:
    """``rooms,workers`` -> the sections in the run's order; ValueError naming an unknown one."""
    asked = {s.strip() for s in text.split(",") if s.strip()}
    unknown = asked - set(SECTIONS)
    if unknown or not asked:
        raise ValueError(f"sections are {', '.join(SECTIONS)}; not {', '.join(sorted(unknown))}"
                         if unknown else "no section given")
    return tuple(s for s in SECTIONS if s in asked)
