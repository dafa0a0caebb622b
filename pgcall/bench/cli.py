"""``pgcall bench``: options, the live progress line, and the final report.

Owns: the bench's command-line options, turning them into a plan (calls, or rooms with
``--rooms``), the progress line (only on a terminal), the human report of calls and the
``--json`` object, and the exit code (0 PASS, 1 FAIL). Does not own: running calls or rooms
(``runner``, ``client``, ``roomrunner``, ``roomclient``), computing figures (``stats``,
``roomstats``) or the room report (``roomreport``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import attrs
import trio

from .client import AUDIO_FPS, CallPlan
from .roommember import MIN_FRAME_BYTES as MIN_ROOM_FRAME_BYTES
from .roommember import RoomPlan
from .roomreport import RoomCriteria, format_room_report, room_summary_json, summarize_rooms
from .roomrunner import run_room_workers, run_rooms_local
from .roomstats import is_small
from .runner import Assignment, assign_calls, cpu_seconds, run_local, run_workers
from .stats import (
    Criteria,
    Latency,
    Progress,
    Summary,
    summarize,
    summary_json,
)

EXIT_PASS, EXIT_FAIL = 0, 1
EXIT_USAGE = 2  # argparse's code for bad arguments
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT
MIN_FRAME_BYTES = 12  # FF D8, the 8-byte send time, FF D9
DEFAULT_URL = "ws://127.0.0.1:9000"


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
        return value
    return parse


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {text!r}")
        return value
    return parse


_frame_bytes = _at_least(MIN_FRAME_BYTES)


def _room_size(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 2-100, not {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text!r}")
    return value


def _ws_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"must be a WebSocket URL such as ws://127.0.0.1:9000, not {text!r}")
    return text


def add_bench_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``pgcall bench`` (see ``--help``)."""
    p = parser
    p.add_argument("--url", dest="urls", type=_ws_url, action="append", default=None,
                   metavar="URL",
                   help=f"pgcall (or pg-relay) WebSocket URL (default {DEFAULT_URL}); repeat "
                        "it to spread the clients over several relays, round-robin: a call's "
                        "caller and callee, and a room's members, then connect to different "
                        "URLs")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--calls", type=_positive(int), default=1, metavar="N",
                      help="video calls to run at once, 2 clients each (default 1)")
    load.add_argument("--rooms", type=_positive(int), default=None, metavar="R",
                      help="video rooms of --room-size members instead of calls")
    p.add_argument("--duration", type=_positive(float), default=10.0, metavar="SECONDS",
                   help="how long each call or room streams (default 10)")
    p.add_argument("--fps", type=_positive(float), default=15.0,
                   help="video frames per second per direction (default 15)")
    p.add_argument("--frame-bytes", type=_frame_bytes, default=30000, metavar="BYTES",
                   help=f"video frame size, at least {MIN_FRAME_BYTES} (default 30000)")
    p.add_argument("--audio", action=argparse.BooleanOptionalAction, default=True,
                   help=f"also send audio in calls, {AUDIO_FPS} frames/s of 1600 bytes "
                        "(default on; a room's speaker always sends it: the server finds the "
                        "speaker by it)")
    p.add_argument("--ramp", type=_non_negative, default=0.0, metavar="SECONDS",
                   help="spread the start-ups of calls or rooms over this long (default 0)")
    p.add_argument("--procs", type=_positive(int), default=1, metavar="N",
                   help="worker processes to spread the calls or rooms over (default 1: this "
                        "one)")
    p.add_argument("--min-fps", type=_positive(float), default=None, metavar="FPS",
                   help="PASS needs every video stream at least this (default fps - 0.5); "
                        "in rooms, the speaker's full layer, and everyone's in rooms of 4 or "
                        "fewer")
    p.add_argument("--max-p99-ms", type=_positive(float), default=100.0, metavar="MS",
                   help="PASS needs video p99 latency (in rooms, the speaker's) at most this "
                        "(default 100)")
    p.add_argument("--record", action="store_true",
                   help="record every call and room (each client says it shows the recording "
                        "indicator, then one starts recording)")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object instead of text")
    r = p.add_argument_group("rooms", "with --rooms: one member speaks at a time, in turns")
    r.add_argument("--room-size", type=_room_size, default=16, metavar="K",
                   help="members per room, 2-100 (default 16)")
    r.add_argument("--turn", type=_positive(float), default=4.0, metavar="SECONDS",
                   help="how long each member speaks before the next one does (default 4)")
    r.add_argument("--settle", type=_non_negative, default=1.0, metavar="SECONDS",
                   help="left out of each turn's speaker rate: the switch takes a few "
                        "hundred ms by design (default 1)")
    r.add_argument("--thumb-bytes", type=_at_least(MIN_ROOM_FRAME_BYTES), default=3500,
                   metavar="BYTES", help="thumbnail frame size (default 3500)")
    r.add_argument("--min-thumb-fps", type=_positive(float), default=5.0, metavar="FPS",
                   help="PASS in a room of more than 4 needs every thumbnail at least this "
                        "(default 5); the speaker, and everyone in smaller rooms, --min-fps")
    r.add_argument("--max-lost", type=_at_least(0), default=0, metavar="FRAMES",
                   help="PASS needs at most this many frames lost (default 0)")


def bench_urls(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``--url`` options in order, or the default one."""
    return tuple(args.urls or (DEFAULT_URL,))


def run_bench(args: argparse.Namespace) -> int:
    """Run the bench the options describe; print the report; 0 on PASS, 1 on FAIL."""
    if args.rooms is not None:
        return _run_rooms(args)
    plan = CallPlan(urls=bench_urls(args), duration_s=args.duration, fps=args.fps,
                    frame_bytes=args.frame_bytes, audio=args.audio, record=args.record)
    criteria = Criteria(min_fps=_min_fps(args), max_p99_ms=args.max_p99_ms,
                        video_streams=2 * args.calls)
    measured = _measure(run_local, run_workers, plan,
                        assign_calls(args.calls, args.procs, args.ramp))
    if measured is None:
        return EXIT_INTERRUPTED
    report, wall_s = measured
    summary = summarize(report, criteria, calls=args.calls, duration_s=args.duration,
                        wall_s=wall_s)
    print(json.dumps(summary_json(summary)) if args.json else format_report(summary))
    return EXIT_PASS if summary.verdict.passed else EXIT_FAIL


def _min_fps(args: argparse.Namespace) -> float:
    return float(args.min_fps if args.min_fps is not None else args.fps - 0.5)


def _run_rooms(args: argparse.Namespace) -> int:
    if args.frame_bytes < MIN_ROOM_FRAME_BYTES:
        print(f"pgcall bench: --frame-bytes must be at least {MIN_ROOM_FRAME_BYTES} with "
              "--rooms", file=sys.stderr)
        return EXIT_USAGE
    plan = RoomPlan(urls=bench_urls(args), duration_s=args.duration, room_size=args.room_size,
                    fps=args.fps, frame_bytes=args.frame_bytes, thumb_bytes=args.thumb_bytes,
                    turn_s=args.turn, settle_s=args.settle, record=args.record)
    small = is_small(args.room_size)
    criteria = RoomCriteria(rooms=args.rooms, min_speaker_fps=_min_fps(args),
                            min_others_fps=_min_fps(args) if small else args.min_thumb_fps,
                            max_p99_ms=args.max_p99_ms, max_lost=args.max_lost)
    measured = _measure(run_rooms_local, run_room_workers, plan,
                        assign_calls(args.rooms, args.procs, args.ramp))
    if measured is None:
        return EXIT_INTERRUPTED
    report, wall_s = measured
    summary = summarize_rooms(report, criteria, room_size=args.room_size,
                              duration_s=args.duration, turn_s=args.turn,
                              settle_s=args.settle, wall_s=wall_s)
    print(json.dumps(room_summary_json(summary)) if args.json else format_room_report(summary))
    return EXIT_PASS if summary.verdict.passed else EXIT_FAIL


def _measure(local: Callable[..., Awaitable[Any]], workers: Callable[..., Awaitable[Any]],
             plan: Any, assignments: list[Assignment]) -> tuple[Any, float] | None:
    """Run the plan (here, or in one worker per assignment) with the progress line on a
    terminal: (the merged worker report, wall-clock seconds), or None if interrupted."""
    line = ProgressLine(sys.stdout) if sys.stdout.isatty() else None
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    try:
        report = trio.run(_execute, local if len(assignments) == 1 else workers, plan,
                          assignments[0] if len(assignments) == 1 else assignments, line)
    except KeyboardInterrupt:
        print("\npgcall bench: interrupted", file=sys.stderr)
        return None
    wall_s = time.monotonic() - wall_start
    if len(assignments) > 1:  # the workers counted their own CPU; add the parent's
        report = attrs.evolve(report, cpu_s=report.cpu_s + cpu_seconds() - cpu_start)
    if line is not None:
        line.clear()
    return report, wall_s


async def _execute(run: Callable[..., Awaitable[Any]], plan: Any, share: Any,
                   line: ProgressLine | None) -> Any:
    def keep(p: Progress) -> None:
        if line is not None:
            line.latest = p

    async with trio.open_nursery() as nursery:
        if line is not None:
            nursery.start_soon(line.run)
        report = await run(plan, share, keep)
        nursery.cancel_scope.cancel()
    return report


class ProgressLine:
    """``\\r``-updated line, once a second: elapsed, frames/s out and in over the last second,
    video p50 so far, errors. Workers report on their own ticks; the line uses the latest."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = self.last_at = time.monotonic()
        self.last = self.latest = Progress()

    async def run(self) -> None:
        while True:
            await trio.sleep(1.0)
            self.show(self.latest)

    def show(self, p: Progress) -> None:
        now = time.monotonic()
        span = max(now - self.last_at, 1e-3)
        p50 = p.p50_ms()
        self.out.write(
            f"\r{now - self.start:6.1f} s  out {(p.sent - self.last.sent) / span:7.1f} f/s  "
            f"in {(p.received - self.last.received) / span:7.1f} f/s  "
            f"video p50 {'-' if p50 is None else f'~{p50:.0f}'} ms  errors {p.errors}  ")
        self.out.flush()
        self.last, self.last_at = p, now

    def clear(self) -> None:
        self.out.write("\r" + " " * 79 + "\r")
        self.out.flush()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _latency_line(name: str, lat: Latency) -> str:
    return (f"{name:<15} p50 {_ms(lat.p50)}  p95 {_ms(lat.p95)}  p99 {_ms(lat.p99)}  "
            f"max {_ms(lat.max)} ms")


def format_report(s: Summary) -> str:
    lines = [
        f"pgcall bench: {s.calls} call(s), {s.duration_s:g} s of media each, "
        f"{s.wall_s:.1f} s wall clock",
        _latency_line("video latency", s.latency_ms),
        _latency_line("audio latency", s.audio_latency_ms),
        f"video fps       min {_ms(s.fps_min)}  median {_ms(s.fps_median)} "
        f"over {s.video_streams} stream(s)",
        f"frames          sent {s.frames_sent}  received {s.frames_received}  lost {s.lost}  "
        f"reordered {s.reordered}  duplicated {s.duplicates}  sent late {s.late_sends}",
        f"errors          {s.errors}",
    ]
    lines += [f"  {count:6d} x {text}" for text, count in s.error_counts.items()]
    lines += [f"bench CPU       {s.bench_cpu_percent:.0f} % (all bench processes)",
              s.verdict.text]
    return "\n".join(lines)


BENCH_DESCRIPTION = (
    "Load-test a pgcall or pg-relay server: run video calls between pairs of WebSocket "
    "clients (or, with --rooms, pgcall's video rooms), stamp each frame with its send time, "
    "and report latency, frame rates and losses, then PASS or FAIL against the thresholds.")
BENCH_EPILOG = (f"Exit status: {EXIT_PASS} PASS, {EXIT_FAIL} FAIL (a criterion was missed), "
                "2 bad options, 130 interrupted.")


def build_bench_parser() -> argparse.ArgumentParser:
    """The parser of ``pgcall bench``."""
    parser = argparse.ArgumentParser(prog="pgcall bench", usage="pgcall bench [options]",
                                     description=BENCH_DESCRIPTION, epilog=BENCH_EPILOG)
    add_bench_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(build_bench_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
