"""``pgcall bench``: options, the live progress line, and the final report.

Owns: the bench's command-line options, turning them into a plan, the progress line (only on a
terminal), the human report and the ``--json`` object, and the exit code (0 PASS, 1 FAIL).
Does not own: running calls (``runner``, ``client``) or computing figures (``stats``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs
import trio

from .client import AUDIO_FPS, CallPlan
from .runner import Assignment, assign_calls, cpu_seconds, run_local, run_workers
from .stats import (
    Criteria,
    Latency,
    Progress,
    Summary,
    WorkerReport,
    summarize,
    summary_json,
)

EXIT_PASS, EXIT_FAIL = 0, 1
MIN_FRAME_BYTES = 12  # FF D8, the 8-byte send time, FF D9


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
        return value
    return parse


def _frame_bytes(text: str) -> int:
    value = int(text)
    if value < MIN_FRAME_BYTES:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_FRAME_BYTES}, not {text!r}")
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
    p.add_argument("--url", type=_ws_url, default="ws://127.0.0.1:9000",
                   help="pgcall (or pg-relay) WebSocket URL (default ws://127.0.0.1:9000)")
    p.add_argument("--calls", type=_positive(int), default=1, metavar="N",
                   help="video calls to run at once, 2 clients each (default 1)")
    p.add_argument("--duration", type=_positive(float), default=10.0, metavar="SECONDS",
                   help="how long each call streams (default 10)")
    p.add_argument("--fps", type=_positive(float), default=15.0,
                   help="video frames per second per direction (default 15)")
    p.add_argument("--frame-bytes", type=_frame_bytes, default=30000, metavar="BYTES",
                   help=f"video frame size, at least {MIN_FRAME_BYTES} (default 30000)")
    p.add_argument("--audio", action=argparse.BooleanOptionalAction, default=True,
                   help=f"also send audio, {AUDIO_FPS} frames/s of 1600 bytes (default on)")
    p.add_argument("--ramp", type=_non_negative, default=0.0, metavar="SECONDS",
                   help="spread the call start-ups over this long (default 0)")
    p.add_argument("--procs", type=_positive(int), default=1, metavar="N",
                   help="worker processes to spread the calls over (default 1: this one)")
    p.add_argument("--min-fps", type=_positive(float), default=None, metavar="FPS",
                   help="PASS needs every video stream at least this (default fps - 0.5)")
    p.add_argument("--max-p99-ms", type=_positive(float), default=100.0, metavar="MS",
                   help="PASS needs video p99 latency at most this (default 100)")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object instead of text")


def run_bench(args: argparse.Namespace) -> int:
    """Run the bench the options describe; print the report; 0 on PASS, 1 on FAIL."""
    plan = CallPlan(url=args.url, duration_s=args.duration, fps=args.fps,
                    frame_bytes=args.frame_bytes, audio=args.audio)
    criteria = Criteria(min_fps=args.min_fps if args.min_fps is not None else args.fps - 0.5,
                        max_p99_ms=args.max_p99_ms, video_streams=2 * args.calls)
    line = ProgressLine(sys.stdout) if sys.stdout.isatty() else None
    assignments = assign_calls(args.calls, args.procs, args.ramp)
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    try:
        report = trio.run(_execute, plan, assignments, line)
    except KeyboardInterrupt:
        print("\npgcall bench: interrupted", file=sys.stderr)
        return 130  # the shell's code for SIGINT
    wall_s = time.monotonic() - wall_start
    if len(assignments) > 1:  # the workers counted their own CPU; add the parent's
        report = attrs.evolve(report, cpu_s=report.cpu_s + cpu_seconds() - cpu_start)
    if line is not None:
        line.clear()
    summary = summarize(report, criteria, calls=args.calls, duration_s=args.duration,
                        wall_s=wall_s)
    if args.json:
        print(json.dumps(summary_json(summary)))
    else:
        print(format_report(summary))
    return EXIT_PASS if summary.verdict.passed else EXIT_FAIL


async def _execute(plan: CallPlan, assignments: list[Assignment],
                   line: ProgressLine | None) -> WorkerReport:
    def keep(p: Progress) -> None:
        if line is not None:
            line.latest = p

    async with trio.open_nursery() as nursery:
        if line is not None:
            nursery.start_soon(line.run)
        if len(assignments) == 1:
            report = await run_local(plan, assignments[0], keep)
        else:
            report = await run_workers(plan, assignments, keep)
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
    "clients, stamp each frame with its send time, and report latency, frame rates and "
    "losses, then PASS or FAIL against --min-fps and --max-p99-ms.")
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
