"""The report of a room bench: worker reports and their wire format, the verdict, the summary,
its ``--json`` object and its text. Pure.

Owns: ``RoomRecorder`` (what one process's rooms report to, live), ``RoomWorkerReport`` (one
process's room figures, errors and CPU time) and merging them;
the worker's JSON form; the criteria a room run passes by (``RoomCriteria``) and the verdict;
``RoomSummary``, ``room_summary_json`` (the call bench's keys, with the call-only ones null,
plus the room figures) and ``format_room_report``. Does not own: the per-room arithmetic
(``roomstats``), running anything (``roomrunner``) or the command line (``cli``).
"""

from __future__ import annotations

import base64
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from .roomstats import LATENCY_CLASSES, STREAMS, RoomFigures, combine, is_small
from .stats import Latency, Progress, Verdict, median


class RoomRecorder:
    """What one bench process measures of its rooms: each room's figures once it is over,
    the errors (counted by their text), and live counters for the progress line."""

    def __init__(self) -> None:
        self.rooms: list[RoomFigures] = []
        self.errors: Counter[str] = Counter()
        self._sent = self._received = 0
        self._buckets: Counter[int] = Counter()

    def error(self, text: str) -> None:
        self.errors[text] += 1

    def sent(self) -> None:
        self._sent += 1

    def received(self, video_latency_us: int | None) -> None:
        self._received += 1
        if video_latency_us is not None:
            self._buckets[video_latency_us // 1000] += 1

    def progress(self) -> Progress:
        return Progress(self._sent, self._received, sum(self.errors.values()),
                        dict(self._buckets))

    def report(self, cpu_s: float) -> RoomWorkerReport:
        return RoomWorkerReport(figures=combine(self.rooms), errors=dict(self.errors),
                                cpu_s=cpu_s)


@attrs.frozen
class RoomWorkerReport:
    figures: RoomFigures = attrs.field(factory=RoomFigures)
    errors: dict[str, int] = attrs.field(factory=dict)
    cpu_s: float = 0.0


def merge_room_reports(reports: Iterable[RoomWorkerReport]) -> RoomWorkerReport:
    reports = list(reports)
    errors: Counter[str] = Counter()
    for r in reports:
        errors.update(r.errors)
    return RoomWorkerReport(figures=combine(r.figures for r in reports), errors=dict(errors),
                            cpu_s=sum(r.cpu_s for r in reports))


def room_report_to_json(r: RoomWorkerReport) -> dict[str, Any]:
    f = r.figures
    figures = attrs.asdict(f)
    # Latency samples as base64 of int64 arrays, as the call bench's workers send them.
    figures["latency_us"] = {c: base64.b64encode(array("q", f.latency_us[c]).tobytes())
                             .decode("ascii") for c in LATENCY_CLASSES}
    return {"figures": figures, "errors": r.errors, "cpu_s": r.cpu_s}


def room_report_from_json(d: dict[str, Any]) -> RoomWorkerReport:
    raw = dict(d["figures"])
    latency: dict[str, tuple[int, ...]] = {}
    for c in LATENCY_CLASSES:
        samples = array("q")
        samples.frombytes(base64.b64decode(raw["latency_us"][c]))
        latency[c] = tuple(samples)
    raw["latency_us"] = latency
    for name in ("speaker_fps", "others_fps", "receiver_bytes_per_s"):
        raw[name] = tuple(raw[name])
    return RoomWorkerReport(figures=RoomFigures(**raw), errors=dict(d["errors"]),
                            cpu_s=float(d["cpu_s"]))


@attrs.frozen
class RoomCriteria:
    """A passing room run: every room streamed, the current speaker's full layer at least
    ``min_speaker_fps`` at every receiver in every measured turn, the others at least
    ``min_others_fps`` (full layers in a small room, thumbnails in a large one), the
    speaker's p99 latency at most ``max_p99_ms``, at most ``max_lost`` frames lost, no error."""

    rooms: int
    min_speaker_fps: float
    min_others_fps: float
    max_p99_ms: float
    max_lost: int = 0


def _slowest(name: str, values: Sequence[float], floor: float, what: str) -> str | None:
    if not values:
        return f"no {name} rate was measured"
    if min(values) >= floor:
        return None
    slow = sum(1 for v in values if v < floor)
    return f"{name} below {floor:g} fps in {slow} {what} (slowest {min(values):.1f})"


def room_verdict(c: RoomCriteria, f: RoomFigures, p99_ms: float | None,
                 errors: int) -> Verdict:
    problems = []
    if f.rooms < c.rooms:
        problems.append(f"only {f.rooms} of {c.rooms} rooms streamed")
    for problem in (_slowest("speaker", f.speaker_fps, c.min_speaker_fps, "receiver-turn(s)"),
                    _slowest("others", f.others_fps, c.min_others_fps, "stream(s)")):
        if problem:
            problems.append(problem)
    if p99_ms is None:
        problems.append("no speaker frame was delivered")
    elif p99_ms > c.max_p99_ms:
        problems.append(f"speaker p99 {p99_ms:.1f} ms > {c.max_p99_ms:g} ms")
    lost = sum(f.lost.values())
    if lost > c.max_lost:
        problems.append(f"{lost} frame(s) lost")
    if errors:
        problems.append(f"{errors} error(s)")
    if problems:
        return Verdict(False, "FAIL: " + "; ".join(problems))
    nothing = "nothing lost" if c.max_lost == 0 else f"at most {c.max_lost} lost"
    return Verdict(True, f"PASS: speaker >= {c.min_speaker_fps:g} fps, others >= "
                         f"{c.min_others_fps:g} fps, speaker p99 <= {c.max_p99_ms:g} ms, "
                         f"{nothing}, no errors")


@attrs.frozen
class RoomSummary:
    rooms: int
    room_size: int
    duration_s: float
    turn_s: float
    settle_s: float
    wall_s: float
    figures: RoomFigures
    errors: int
    error_counts: dict[str, int]
    speaker_latency_ms: Latency
    latency_ms: Latency
    audio_latency_ms: Latency
    bench_cpu_percent: float
    verdict: Verdict


def summarize_rooms(report: RoomWorkerReport, criteria: RoomCriteria, *, room_size: int,
                    duration_s: float, turn_s: float, settle_s: float,
                    wall_s: float) -> RoomSummary:
    f = report.figures
    speaker = Latency.of(f.latency_us["speaker"])
    errors = sum(report.errors.values())
    return RoomSummary(
        rooms=criteria.rooms, room_size=room_size, duration_s=duration_s, turn_s=turn_s,
        settle_s=settle_s, wall_s=wall_s, figures=f, errors=errors,
        error_counts=dict(sorted(report.errors.items())), speaker_latency_ms=speaker,
        latency_ms=Latency.of(f.latency_us["video"]),
        audio_latency_ms=Latency.of(f.latency_us["audio"]),
        bench_cpu_percent=100 * report.cpu_s / wall_s if wall_s > 0 else 0.0,
        verdict=room_verdict(criteria, f, speaker.p99, errors))


def _min(values: Sequence[float]) -> float | None:
    return round(min(values), 2) if values else None


def _median(values: Sequence[float]) -> float | None:
    m = median(values)
    return None if m is None else round(m, 2)


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def room_summary_json(s: RoomSummary) -> dict[str, object]:
    """The call bench's keys (call-only ones null) and the room figures."""
    f = s.figures
    rates = f.receiver_bytes_per_s
    return {
        "calls": None, "rooms": s.rooms, "room_size": s.room_size,
        "duration_s": s.duration_s, "turn_s": s.turn_s, "settle_s": s.settle_s,
        "wall_s": round(s.wall_s, 3), "rooms_streamed": f.rooms, "turns_measured": f.turns,
        "frames_sent": sum(f.sent.values()), "frames_received": sum(f.received.values()),
        "frames_sent_by_stream": f.sent, "frames_received_by_stream": f.received,
        "payload_bytes_sent": f.payload_bytes,
        "lost": sum(f.lost.values()), "lost_by_stream": f.lost, "reordered": f.reordered,
        "duplicates": f.duplicates, "late_sends": f.late,
        "errors": s.errors, "error_counts": s.error_counts,
        "latency_ms": attrs.asdict(s.latency_ms),
        "audio_latency_ms": attrs.asdict(s.audio_latency_ms),
        "speaker_latency_ms": attrs.asdict(s.speaker_latency_ms),
        "video_streams": None, "fps": {"min": None, "median": None},
        "speaker_fps_min": _min(f.speaker_fps), "speaker_fps_median": _median(f.speaker_fps),
        "others_fps_min": _min(f.others_fps), "others_fps_median": _median(f.others_fps),
        "receiver_bytes_per_s": {"median": _round(median(rates)),
                                 "max": _round(max(rates) if rates else None)},
        "bench_cpu_percent": round(s.bench_cpu_percent, 1),
        "passed": s.verdict.passed, "verdict": s.verdict.text,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _fps(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} kB/s"


def _latency(name: str, lat: Latency) -> str:
    return (f"{name:<15} p50 {_ms(lat.p50)}  p95 {_ms(lat.p95)}  p99 {_ms(lat.p99)}  "
            f"max {_ms(lat.max)} ms")


def format_room_report(s: RoomSummary) -> str:
    f = s.figures
    others = ("full layers, every pair" if is_small(s.room_size)
              else "thumbnails of the non-speakers, per turn")
    by_stream = ", ".join(f"{st} {f.sent[st]}" for st in STREAMS)
    lost_by = ", ".join(f"{st} {f.lost[st]}" for st in STREAMS)
    rates = f.receiver_bytes_per_s
    lines = [
        f"pgcall bench: {s.rooms} room(s) of {s.room_size}, {s.duration_s:g} s of media each "
        f"(turns of {s.turn_s:g} s, {s.settle_s:g} s to settle), {s.wall_s:.1f} s wall clock",
        _latency("speaker video", s.speaker_latency_ms),
        _latency("all video", s.latency_ms),
        _latency("audio latency", s.audio_latency_ms),
        f"speaker fps     min {_fps(_min(f.speaker_fps))}  median "
        f"{_fps(_median(f.speaker_fps))} over {len(f.speaker_fps)} receiver-turn(s) "
        f"in {f.turns} turn(s)",
        f"others fps      min {_fps(_min(f.others_fps))}  median {_fps(_median(f.others_fps))}"
        f" ({others})",
        f"to receivers    median {_kb(median(rates))}  max {_kb(max(rates) if rates else None)}"
        f" over {len(rates)} receiver(s)",
        f"frames          sent {sum(f.sent.values())} ({by_stream})  received "
        f"{sum(f.received.values())}",
        f"                lost {sum(f.lost.values())} ({lost_by})  reordered {f.reordered}  "
        f"duplicated {f.duplicates}  sent late {f.late}",
        f"errors          {s.errors}",
    ]
    lines += [f"  {count:6d} x {text}" for text, count in s.error_counts.items()]
    lines += [f"bench CPU       {s.bench_cpu_percent:.0f} % (all bench processes)",
              s.verdict.text]
    return "\n".join(lines)
