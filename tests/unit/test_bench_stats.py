"""The bench's pure parts: percentiles, stream counters, merging, verdict, wire formats."""

from __future__ import annotations

import argparse
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgcall.bench import client, runner
from pgcall.bench.cli import ProgressLine, add_bench_options, bench_urls, format_report
from pgcall.bench.stats import (
    Criteria,
    Latency,
    Progress,
    Recorder,
    StreamKey,
    StreamResult,
    StreamTracker,
    WorkerReport,
    combine_progress,
    median,
    merge_reports,
    percentile,
    summarize,
    summary_json,
    verdict,
)
from pgcall.wire.encode import encode_control, encode_media

VIDEO_AB = StreamKey(0, "a>b", "video")
VIDEO_BA = StreamKey(0, "b>a", "video")
CRITERIA = Criteria(min_fps=14.5, max_p99_ms=100.0, video_streams=2)


# --- percentiles ---------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "expected"), [
    (0, 15), (5, 15), (20, 15), (30, 20), (40, 20), (50, 35), (75, 40), (95, 50), (100, 50),
])
def test_percentile_is_nearest_rank(q: float, expected: int) -> None:
    # rank = ceil(q/100 * 5): 30 % -> rank 2, 50 % -> rank 3, 75 % -> rank 4.
    assert percentile([15, 20, 35, 40, 50], q) == expected


def test_percentile_of_nothing_is_none_and_q_is_checked() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 101)
    with pytest.raises(ValueError):
        percentile([1], -1)


def test_percentile_of_a_hundred_values_is_the_value_of_that_rank() -> None:
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50, 95, 99, 100]


@given(st.lists(st.integers(0, 10**6), min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_a_sample_and_grows_with_q(values: list[int], q1: float,
                                                 q2: float) -> None:
    ordered = sorted(values)
    low, high = sorted((q1, q2))
    assert percentile(ordered, low) in values
    assert percentile(ordered, low) <= percentile(ordered, high)  # type: ignore[operator]


def test_median() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([]) is None


def test_latency_converts_microseconds_to_ordered_milliseconds() -> None:
    lat = Latency.of([3000, 1000, 2000, 250_000])
    assert (lat.p50, lat.p95, lat.p99, lat.max) == (2.0, 250.0, 250.0, 250.0)
    assert Latency.of([]) == Latency(None, None, None, None)


# --- one stream ----------------------------------------------------------------------------


def _tracker(sent: int, arrivals: list[int]) -> StreamTracker:
    t = StreamTracker()
    for _ in range(sent):
        t.on_sent(late=False)
    for seq in arrivals:
        t.on_received(seq)
    return t


def test_in_order_stream_has_nothing_lost_or_reordered() -> None:
    r = _tracker(5, [0, 1, 2, 3, 4]).result(VIDEO_AB, active_s=2.0)
    assert (r.sent, r.received, r.lost, r.reordered, r.duplicates) == (5, 5, 0, 0, 0)
    assert r.fps == 2.5


def test_gap_filled_later_is_reordered_not_lost() -> None:
    r = _tracker(4, [0, 2, 1, 3]).result(VIDEO_AB, active_s=1.0)
    assert (r.received, r.lost, r.reordered) == (4, 0, 1)


def test_gap_never_filled_is_lost() -> None:
    r = _tracker(6, [0, 1, 3, 5]).result(VIDEO_AB, active_s=1.0)
    assert (r.received, r.lost, r.reordered) == (4, 2, 0)


def test_every_frame_below_a_late_high_seq_counts_as_reordered() -> None:
    r = _tracker(4, [3, 0, 1, 2]).result(VIDEO_AB, active_s=1.0)
    assert (r.lost, r.reordered) == (0, 3)


def test_duplicates_are_counted_apart() -> None:
    t = _tracker(3, [0, 1, 1, 2, 0])
    r = t.result(VIDEO_AB, active_s=1.0)
    assert (r.received, r.duplicates, r.lost) == (3, 2, 0)
    assert t.complete()


def test_late_sends_are_counted_and_a_stream_is_complete_only_when_all_arrived() -> None:
    t = StreamTracker()
    t.on_sent(late=True)
    t.on_sent(late=False)
    t.on_received(1)
    assert not t.complete()
    assert t.result(VIDEO_AB, 1.0).late == 1


def test_fps_of_a_stream_without_a_window_is_zero() -> None:
    assert _tracker(1, [0]).result(VIDEO_AB, active_s=0.0).fps == 0.0


@given(st.integers(0, 60), st.data())
def test_lost_plus_delivered_is_sent(sent: int, data: st.DataObject) -> None:
    arrivals = data.draw(st.lists(st.integers(0, max(sent - 1, 0)), max_size=3 * sent)
                         if sent else st.just([]))
    r = _tracker(sent, arrivals).result(VIDEO_AB, 1.0)
    assert r.lost == sent - len(set(arrivals))
    assert r.received + r.duplicates == len(arrivals)
    assert r.reordered <= r.received


# --- one process, several processes --------------------------------------------------------


def test_recorder_reports_streams_latencies_errors_and_progress() -> None:
    rec = Recorder()
    rec.sent(VIDEO_BA, late=False)
    rec.sent(VIDEO_AB, late=True)
    rec.received(VIDEO_AB, 0, 2500)
    rec.received(StreamKey(0, "a>b", "audio"), 0, 900)
    rec.error("send_video_frame: Call is not active")
    rec.error("send_video_frame: Call is not active")
    assert rec.progress() == Progress(sent=2, received=2, errors=2, buckets={2: 1})
    report = rec.report(active_s=3.0, cpu_s=0.5)
    audio_ab = StreamKey(0, "a>b", "audio")
    assert [s.key for s in report.streams] == [audio_ab, VIDEO_AB, VIDEO_BA]  # sorted
    assert report.latency_us == {"video": (2500,), "audio": (900,)}
    assert report.errors == {"send_video_frame: Call is not active": 2}
    assert report.cpu_s == 0.5


def _stream(key: StreamKey, sent: int, received: int, *, lost: int = 0,
            active_s: float = 2.0) -> StreamResult:
    return StreamResult(key, sent, received, lost, 0, 0, 0, active_s)


def test_merge_concatenates_samples_and_adds_errors_and_cpu() -> None:
    one = WorkerReport(streams=(_stream(VIDEO_AB, 30, 30),),
                       latency_us={"video": (1, 2), "audio": (5,)}, errors={"x: y": 1},
                       cpu_s=1.5)
    two = WorkerReport(streams=(_stream(StreamKey(1, "a>b", "video"), 30, 29, lost=1),),
                       latency_us={"video": (3,), "audio": ()}, errors={"x: y": 2, "z: w": 1},
                       cpu_s=0.25)
    merged = merge_reports([one, two])
    assert len(merged.streams) == 2
    assert merged.latency_us == {"video": (1, 2, 3), "audio": (5,)}
    assert merged.errors == {"x: y": 3, "z: w": 1}
    assert merged.cpu_s == 1.75
    assert merge_reports([]) == WorkerReport()


def test_progress_median_uses_one_millisecond_buckets_and_adds_up() -> None:
    a = Progress(sent=10, received=8, errors=0, buckets={2: 3})
    b = Progress(sent=5, received=4, errors=1, buckets={2: 1, 40: 4})
    both = combine_progress([a, b])
    assert (both.sent, both.received, both.errors) == (15, 12, 1)
    assert both.buckets == {2: 4, 40: 4}
    assert both.p50_ms() == 3.0  # rank 4 of 8 falls in [2, 3) ms
    assert Progress().p50_ms() is None


# --- verdict and summary -------------------------------------------------------------------


def test_verdict_passes_when_every_criterion_is_met() -> None:
    v = verdict(CRITERIA, fps=[15.0, 14.6], p99_ms=40.0, errors=0)
    assert v.passed
    assert v.text == "PASS: every stream >= 14.5 fps and p99 <= 100 ms, no errors"


def test_verdict_lists_every_missed_criterion() -> None:
    v = verdict(CRITERIA, fps=[15.0, 9.04], p99_ms=250.0, errors=3)
    assert not v.passed
    assert v.text == ("FAIL: 1 video stream(s) below 14.5 fps (slowest 9.0); "
                      "p99 250.0 ms > 100 ms; 3 error(s)")


def test_verdict_fails_when_streams_are_missing_or_nothing_arrived() -> None:
    v = verdict(CRITERIA, fps=[], p99_ms=None, errors=0)
    assert v.text == "FAIL: only 0 of 2 video streams ran; no video frame was delivered"


def test_summarize_reduces_a_report() -> None:
    report = WorkerReport(
        streams=(_stream(VIDEO_AB, 30, 30), _stream(VIDEO_BA, 30, 28, lost=2),
                 _stream(StreamKey(0, "a>b", "audio"), 40, 40)),
        latency_us={"video": tuple(range(1000, 101_000, 1000)), "audio": (500,)},
        errors={"send_audio_frame: Call session not found": 2}, cpu_s=0.5)
    s = summarize(report, CRITERIA, calls=1, duration_s=2.0, wall_s=4.0)
    assert (s.frames_sent, s.frames_received, s.lost) == (100, 98, 2)
    assert (s.fps_min, s.fps_median, s.video_streams) == (14.0, 14.5, 2)
    assert (s.latency_ms.p50, s.latency_ms.p99, s.latency_ms.max) == (50.0, 99.0, 100.0)
    assert s.audio_latency_ms.p50 == 0.5
    assert s.bench_cpu_percent == 12.5
    assert s.errors == 2
    assert s.verdict.text.startswith("FAIL: 1 video stream(s) below 14.5 fps")
    out = summary_json(s)
    assert json.loads(json.dumps(out)) == out
    for key in ("calls", "duration_s", "frames_sent", "frames_received", "lost", "reordered",
                "errors", "latency_ms", "fps", "audio_latency_ms", "bench_cpu_percent",
                "verdict"):
        assert key in out
    assert out["fps"] == {"min": 14.0, "median": 14.5}
    assert out["latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    text = format_report(s)
    assert "2 x send_audio_frame: Call session not found" in text
    assert text.endswith(s.verdict.text)


# --- the worker wire format and the ramp ---------------------------------------------------


def test_report_survives_the_worker_wire_format() -> None:
    report = WorkerReport(streams=(_stream(VIDEO_AB, 3, 2, lost=1, active_s=1.5),),
                          latency_us={"video": (1, 2**40), "audio": ()},
                          errors={"e: f": 4}, cpu_s=0.75)
    wire = json.loads(json.dumps(runner.report_to_json(report)))
    assert runner.report_from_json(wire) == report
    progress = Progress(1, 2, 3, {7: 9})
    wire_p = json.loads(json.dumps(runner.progress_to_json(progress)))
    assert runner.progress_from_json(wire_p) == progress


def test_calls_are_spread_over_processes_with_a_ramp() -> None:
    assert runner.assign_calls(4, 2, 2.0) == [[(0, 0.0), (2, 1.0)], [(1, 0.5), (3, 1.5)]]
    assert runner.assign_calls(1, 3, 5.0) == [[(0, 0.0)]]  # no idle processes


# --- payloads and server messages ----------------------------------------------------------


def test_video_payload_looks_like_a_jpeg_and_carries_its_send_time() -> None:
    payload = client.video_payload(123_456_789_012, seq=5, size=30000)
    assert len(payload) == 30000
    assert payload[:2] == b"\xff\xd8" and payload[-2:] == b"\xff\xd9"
    assert client.read_stamp("video", payload) == 123_456_789_012
    assert payload != client.video_payload(123_456_789_012, seq=6, size=30000)


def test_audio_payload_is_even_pcm_carrying_its_send_time() -> None:
    payload = client.audio_payload(987_654_321, seq=0)
    assert len(payload) == client.AUDIO_BYTES and len(payload) % 2 == 0
    assert client.read_stamp("audio", payload) == 987_654_321


def test_decode_server_messages() -> None:
    kind, obj, payload = client.decode_server_message(
        encode_control({"type": "ack", "req_type": "end_call"}))
    assert (kind, obj, bytes(payload)) == ("control", {"type": "ack", "req_type": "end_call"},
                                           b"")
    header = {"session_id": "s", "from": "f", "seq": 3, "width": 640, "height": 360}
    kind, obj, payload = client.decode_server_message(encode_media("video", header, b"\xff\xd8x"))
    assert (kind, obj, bytes(payload)) == ("video", header, b"\xff\xd8x")
    kind, _, payload = client.decode_server_message(encode_media("audio", {"seq": 1}, b""))
    assert (kind, bytes(payload)) == ("audio", b"")


@pytest.mark.parametrize("data", [
    b"", b"\x03{}", b"\x01\x00\x00", b"\x02\x00\x00\x00\x09{}", b"\x00[1]", b"\x00{",
])
def test_decode_rejects_what_is_not_a_server_message(data: bytes) -> None:
    with pytest.raises(ValueError):
        client.decode_server_message(data)


def test_bench_options_and_their_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_bench_options(parser)
    args = parser.parse_args([])
    assert (args.calls, args.fps, args.frame_bytes, args.audio, args.procs, args.json) == (
        1, 15.0, 30000, True, 1, False)
    assert bench_urls(args) == ("ws://127.0.0.1:9000",)
    args = parser.parse_args(["--url", "ws://h:1", "--calls", "3", "--duration", "2",
                              "--no-audio", "--ramp", "1.5", "--procs", "2", "--json"])
    assert (bench_urls(args), args.calls, args.duration, args.audio, args.ramp, args.procs,
            args.json) == (("ws://h:1",), 3, 2.0, False, 1.5, 2, True)
    for bad in (["--calls", "0"], ["--frame-bytes", "11"], ["--ramp", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert parser.parse_args(["--frame-bytes", "12"]).frame_bytes == 12


def test_progress_line_rewrites_one_line_with_rates_p50_and_errors() -> None:
    out = io.StringIO()
    line = ProgressLine(out)
    line.show(Progress(sent=30, received=20, errors=2, buckets={4: 5}))
    text = out.getvalue()
    assert text.startswith("\r") and "\n" not in text
    assert "p50 ~5 ms" in text and "errors 2" in text
    line.clear()
    assert out.getvalue().endswith("\r")
