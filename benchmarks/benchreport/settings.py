"""The fixed settings of a report run: the capacity criterion, the media load the bench sends,
the sampling, the plans of a full and of a quick run, and where the checkout is.

Owns: constants, ``Plan``, the order of the sweep and the progress log on stderr. Does not own:
anything that starts a process, measures or renders.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import attrs

BENCHMARKS = Path(__file__).resolve().parent.parent
REPO = BENCHMARKS.parent
ENTRY = BENCHMARKS / "report.py"  # the command line; the floor writer runs it again
HOST = "127.0.0.1"
MAX_P99_MS = 100.0  # a step holds with video p99 <= this ...
MIN_FPS = 14.5  # ... and every video stream delivering at least this
VIDEO_FPS, AUDIO_FPS = 15, 20  # per direction, as the bench sends
FRAME_BYTES, AUDIO_BYTES = 30000, 1600
POOL_SIZE = 8  # pgcall's default pool (config.Config.pool_size); the floor writer uses as many
SAMPLE_INTERVAL_S = 0.5
WARMUP_S = 1.0  # floor samples of the first second are left out (first plans, relation cache)
SETTLE_TIMEOUT_S = 20.0  # between steps, wait up to this for the reaper to empty the tables
UNSEEN_SETTLE_S = 8.0  # between steps of a peer whose database the report cannot see
MAX_CALLS = 200
FLOOR_PREFIX = "pgcall.floor"
PG_DBNAME, FLOOR_DBNAME = "pgcall", "floor"


@attrs.frozen
class Plan:
    quick: bool
    duration_s: float
    ramp_s: float
    procs: int
    floor_calls: tuple[int, ...]
    compare_calls: tuple[int, ...]
    fixed_sweep: tuple[int, ...] | None  # None: sweep until a step breaks, then one more
    # The latency over the floor at ``latency_calls`` is measured this many times in all: the
    # sweep's step and floor, then rounds of floor, pgcall and peer at that rate. One step's
    # median moved by more than a millisecond between identical runs on this machine; the
    # verdict takes the median of the rounds (``figures.added_latency_rounds``).
    latency_calls: int = 10
    latency_rounds: int = 1


FULL = Plan(False, 15.0, 2.0, 2, (1, 10), (1, 10, 20), None, 10, 3)
QUICK = Plan(True, 5.0, 0.5, 2, (1, 2), (1, 2), (1, 2), 2, 1)


def sweep_calls() -> Iterator[int]:
    yield from (1, 2, 5, 10, 15, 20, 25, 30)
    yield from range(40, MAX_CALLS + 1, 10)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
