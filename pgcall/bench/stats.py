"""The bench's arithmetic: per-stream counters, latency percentiles, merging, the verdict.

Owns: counting what one stream sent and received (lost, reordered, duplicated frames), the
latency samples, how the results of several worker processes are merged, the summary figures
and the verdict text. Does not own: sockets, clocks or processes - every time and latency is
passed in by the caller (``client``, ``runner``), so all of this is tested with known inputs.

Percentiles use the **nearest-rank** method: the q-th percentile of n sorted samples is the
sample of rank ceil(q/100 * n) (1-based), so it is always one of the measured values and
p100 is the maximum.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import attrs

KINDS = ("video", "audio")


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (q=0 gives the minimum, q=100 the
    maximum); None when there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, not {q}")
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def median(values: Iterable[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count); None when empty."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@attrs.frozen
class StreamKey:
    """One direction of one kind of media in one call: ``a>b`` is caller to callee."""

    call: int
    direction: str
    kind: str


@attrs.frozen
class StreamResult:
    """What one stream did over the run. ``active_s`` is its planned sending window."""

    key: StreamKey
    sent: int
    received: int
    lost: int
    reordered: int
    duplicates: int
    late: int
    active_s: float

    @property
    def fps(self) -> float:
        """Delivered frames per second over the sending window."""
        return self.received / self.active_s if self.active_s > 0 else 0.0


class StreamTracker:
    """Mutable counters of one stream while the bench runs (sender and receiver both feed it).

    Sequence numbers start at 0 and go up by one per frame sent. A frame is *lost* when its
    seq was sent and never arrived by the end (a gap that was filled late is not lost), and
    *reordered* when it arrives after a frame with a higher seq.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.late = 0
        self.duplicates = 0
        self.reordered = 0
        self._seen: set[int] = set()
        self._highest = -1

    @property
    def received(self) -> int:
        return len(self._seen)

    def on_sent(self, *, late: bool) -> None:
        self.sent += 1
        self.late += late

    def on_received(self, seq: int) -> None:
        if seq in self._seen:
            self.duplicates += 1
            return
        self._seen.add(seq)
        if seq < self._highest:
            self.reordered += 1
        else:
            self._highest = seq

    def complete(self) -> bool:
        """Every frame sent so far has arrived."""
        return self.received >= self.sent

    def result(self, key: StreamKey, active_s: float) -> StreamResult:
        delivered = sum(1 for seq in self._seen if seq < self.sent)
        return StreamResult(key=key, sent=self.sent, received=self.received,
                            lost=self.sent - delivered, reordered=self.reordered,
                            duplicates=self.duplicates, late=self.late, active_s=active_s)


@attrs.frozen
class WorkerReport:
    """The raw figures of one bench process; ``merge_reports`` combines several."""

    streams: tuple[StreamResult, ...] = ()
    latency_us: dict[str, tuple[int, ...]] = attrs.field(
        factory=lambda: {kind: () for kind in KINDS})
    errors: dict[str, int] = attrs.field(factory=dict)
    cpu_s: float = 0.0


def merge_reports(reports: Iterable[WorkerReport]) -> WorkerReport:
    """Streams and samples are concatenated, error counts and CPU seconds added."""
    reports = list(reports)
    errors: Counter[str] = Counter()
    for r in reports:
        errors.update(r.errors)
    return WorkerReport(
        streams=tuple(s for r in reports for s in r.streams),
        latency_us={k: tuple(v for r in reports for v in r.latency_us.get(k, ())) for k in KINDS},
        errors=dict(errors),
        cpu_s=sum(r.cpu_s for r in reports),
    )


@attrs.frozen
class Latency:
    """Percentiles in milliseconds; all None when no frame arrived."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, samples_us: Iterable[int]) -> Latency:
        ordered = sorted(samples_us)

        def ms(q: float) -> float | None:
            v = percentile(ordered, q)
            return None if v is None else v / 1000

        return cls(p50=ms(50), p95=ms(95), p99=ms(99), max=ms(100))


@attrs.frozen
class Criteria:
    """What a passing run must show: every video stream at least ``min_fps``, p99 at most
    ``max_p99_ms``, the planned number of video streams, and no errors."""

    min_fps: float
    max_p99_ms: float
    video_streams: int


@attrs.frozen
class Verdict:
    passed: bool
    text: str


def verdict(criteria: Criteria, *, fps: Sequence[float], p99_ms: float | None,
            errors: int) -> Verdict:
    """One line: PASS with the criteria met, or FAIL with every criterion that was missed."""
    problems = []
    if len(fps) < criteria.video_streams:
        problems.append(f"only {len(fps)} of {criteria.video_streams} video streams ran")
    if fps and min(fps) < criteria.min_fps:
        slow = sum(1 for f in fps if f < criteria.min_fps)
        problems.append(f"{slow} video stream(s) below {criteria.min_fps:g} fps "
                        f"(slowest {min(fps):.1f})")
    if p99_ms is None:
        problems.append("no video frame was delivered")
    elif p99_ms > criteria.max_p99_ms:
        problems.append(f"p99 {p99_ms:.1f} ms > {criteria.max_p99_ms:g} ms")
    if errors:
        problems.append(f"{errors} error(s)")
    if problems:
        return Verdict(False, "FAIL: " + "; ".join(problems))
    return Verdict(True, f"PASS: every stream >= {criteria.min_fps:g} fps and "
                         f"p99 <= {criteria.max_p99_ms:g} ms, no errors")


@attrs.frozen
class Summary:
    """The figures of a whole run, as reported (latencies in ms)."""

    calls: int
    duration_s: float
    wall_s: float
    frames_sent: int
    frames_received: int
    lost: int
    reordered: int
    duplicates: int
    late_sends: int
    errors: int
    error_counts: dict[str, int]
    latency_ms: Latency
    audio_latency_ms: Latency
    video_streams: int
    fps_min: float | None
    fps_median: float | None
    bench_cpu_percent: float
    verdict: Verdict


def summarize(report: WorkerReport, criteria: Criteria, *, calls: int, duration_s: float,
              wall_s: float) -> Summary:
    """Reduce merged raw figures to the reported ones. CPU % is the bench's own CPU seconds
    (all its processes) over wall-clock seconds, so it can exceed 100 with several processes."""
    streams = report.streams
    fps = [s.fps for s in streams if s.key.kind == "video"]
    latency = Latency.of(report.latency_us.get("video", ()))
    errors = sum(report.errors.values())
    return Summary(
        calls=calls, duration_s=duration_s, wall_s=wall_s,
        frames_sent=sum(s.sent for s in streams),
        frames_received=sum(s.received for s in streams),
        lost=sum(s.lost for s in streams),
        reordered=sum(s.reordered for s in streams),
        duplicates=sum(s.duplicates for s in streams),
        late_sends=sum(s.late for s in streams),
        errors=errors, error_counts=dict(sorted(report.errors.items())),
        latency_ms=latency,
        audio_latency_ms=Latency.of(report.latency_us.get("audio", ())),
        video_streams=len(fps),
        fps_min=min(fps) if fps else None,
        fps_median=median(fps),
        bench_cpu_percent=100 * report.cpu_s / wall_s if wall_s > 0 else 0.0,
        verdict=verdict(criteria, fps=fps, p99_ms=latency.p99, errors=errors),
    )


def summary_json(s: Summary) -> dict[str, object]:
    """The ``--json`` object: one flat-ish dict with stable key names."""
    return {
        "calls": s.calls, "duration_s": s.duration_s, "wall_s": round(s.wall_s, 3),
        "frames_sent": s.frames_sent, "frames_received": s.frames_received,
        "lost": s.lost, "reordered": s.reordered, "duplicates": s.duplicates,
        "late_sends": s.late_sends, "errors": s.errors, "error_counts": s.error_counts,
        "latency_ms": attrs.asdict(s.latency_ms),
        "audio_latency_ms": attrs.asdict(s.audio_latency_ms),
        "video_streams": s.video_streams,
        "fps": {"min": s.fps_min, "median": s.fps_median},
        "bench_cpu_percent": round(s.bench_cpu_percent, 1),
        "passed": s.verdict.passed, "verdict": s.verdict.text,
    }


# --- live figures --------------------------------------------------------------------------


@attrs.frozen
class Progress:
    """Cumulative counters of one or more processes, for the progress line. Latencies are
    kept in 1 ms buckets (bucket b holds [b, b+1) ms): cheap to send every second and add."""

    sent: int = 0
    received: int = 0
    errors: int = 0
    buckets: dict[int, int] = attrs.field(factory=dict)

    def p50_ms(self) -> float | None:
        """Nearest-rank median, as the upper edge of its 1 ms bucket."""
        total = sum(self.buckets.values())
        if total == 0:
            return None
        rank, seen = math.ceil(total / 2), 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return bucket + 1.0
        raise AssertionError("unreachable: bucket counts add up to total")


def combine_progress(parts: Iterable[Progress]) -> Progress:
    buckets: Counter[int] = Counter()
    sent = received = errors = 0
    for p in parts:
        sent, received, errors = sent + p.sent, received + p.received, errors + p.errors
        buckets.update(p.buckets)
    return Progress(sent, received, errors, dict(buckets))


class Recorder:
    """Everything one bench process measures; fed by the clients, read at the end."""

    def __init__(self) -> None:
        self.streams: dict[StreamKey, StreamTracker] = {}
        self.latency_us: dict[str, list[int]] = {kind: [] for kind in KINDS}
        self.errors: Counter[str] = Counter()
        self._sent = 0
        self._received = 0
        self._buckets: Counter[int] = Counter()

    def stream(self, key: StreamKey) -> StreamTracker:
        tracker = self.streams.get(key)
        if tracker is None:
            tracker = self.streams[key] = StreamTracker()
        return tracker

    def sent(self, key: StreamKey, *, late: bool) -> None:
        self.stream(key).on_sent(late=late)
        self._sent += 1

    def received(self, key: StreamKey, seq: int, latency_us: int) -> None:
        self.stream(key).on_received(seq)
        self.latency_us[key.kind].append(latency_us)
        self._received += 1
        if key.kind == "video":
            self._buckets[latency_us // 1000] += 1

    def error(self, text: str) -> None:
        self.errors[text] += 1

    def progress(self) -> Progress:
        return Progress(self._sent, self._received, sum(self.errors.values()),
                        dict(self._buckets))

    def report(self, *, active_s: float, cpu_s: float) -> WorkerReport:
        return WorkerReport(
            streams=tuple(t.result(k, active_s) for k, t in sorted(
                self.streams.items(), key=lambda kv: attrs.astuple(kv[0]))),
            latency_us={k: tuple(v) for k, v in self.latency_us.items()},
            errors=dict(self.errors), cpu_s=cpu_s)
