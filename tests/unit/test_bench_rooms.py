"""The room bench's pure parts: the speaking rotation, one room's log and figures (per-turn
rates, losses by the forwarding policy), merging, the verdict, the JSON and text reports, the
worker wire format, the room frame payload, the options, and a member's bookkeeping of what
the server tells it."""

from __future__ import annotations

import argparse
import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgcall.bench import roommember
from pgcall.bench.cli import add_bench_options
from pgcall.bench.client import read_stamp
from pgcall.bench.roomreport import (
    RoomCriteria,
    RoomRecorder,
    RoomWorkerReport,
    format_room_report,
    merge_room_reports,
    room_report_from_json,
    room_report_to_json,
    room_summary_json,
    room_verdict,
    summarize_rooms,
)
from pgcall.bench.roomstats import (
    Arrival,
    RoomFigures,
    RoomLog,
    Turn,
    analyze,
    combine,
    lost_frames,
    must_forward,
    reordered_frames,
    rotation,
    speaker_at,
)
from pgcall.bench.stats import Progress

S = 1_000_000_000  # nanoseconds
START = 10 * S  # the room's start on the monotonic clock
LATENCY_NS = 5_000_000  # 5 ms


# --- the rotation --------------------------------------------------------------------------


def test_members_take_turns_in_the_order_they_joined_and_the_last_turn_is_cut() -> None:
    assert rotation(10.0, 4.0, 3) == [Turn(0, 0, 0.0, 4.0), Turn(1, 1, 4.0, 8.0),
                                      Turn(2, 2, 8.0, 10.0)]
    assert rotation(8.0, 4.0, 2) == [Turn(0, 0, 0.0, 4.0), Turn(1, 1, 4.0, 8.0)]
    assert rotation(9.0, 2.0, 2)[-1] == Turn(4, 0, 8.0, 9.0)  # round and round


def test_speaker_at_agrees_with_the_rotation() -> None:
    assert [speaker_at(t, 4.0, 3) for t in (0.0, 3.99, 4.0, 8.5, 12.0, 13.0)] == [
        0, 0, 1, 2, 0, 0]


@given(st.floats(0.5, 30), st.floats(0.25, 5), st.integers(2, 16))
def test_rotation_covers_the_run_without_gaps(duration: float, turn: float, k: int) -> None:
    turns = rotation(duration, turn, k)
    assert turns[0].start_s == 0 and turns[-1].end_s == duration
    for a, b in itertools.pairwise(turns):
        assert a.end_s == b.start_s
        assert speaker_at((b.start_s + b.end_s) / 2, turn, k) == b.speaker


def test_what_must_reach_everyone_depends_on_the_room_size() -> None:
    assert [must_forward(s, small=True) for s in ("full", "thumb", "audio")] == [
        True, False, True]
    assert [must_forward(s, small=False) for s in ("full", "thumb", "audio")] == [
        False, True, True]


# --- one stream ----------------------------------------------------------------------------


def _arrivals(seqs: list[int], epochs: list[int] | None = None) -> list[Arrival]:
    return [Arrival(seq, 0, 0, (epochs or [0] * len(seqs))[i]) for i, seq in enumerate(seqs)]


def test_a_stream_that_must_arrive_loses_what_never_came() -> None:
    assert lost_frames(_arrivals([0, 1, 3]), sent=6, must=True) == 3  # 2, 4 and 5


def test_a_conditional_stream_loses_only_gaps_inside_one_speaker_epoch() -> None:
    # Epoch 0: 0..2 then 5 (3 and 4 lost); epoch 1: the receiver's main moved away and back,
    # so 9 after 5 is no loss; epoch 2: 20, 22 (21 lost). Frames never started are not lost.
    arrivals = _arrivals([0, 1, 2, 5, 9, 10, 20, 22], [0, 0, 0, 0, 1, 1, 2, 2])
    assert lost_frames(arrivals, sent=40, must=False) == 3


def test_reordered_frames_are_those_after_a_higher_seq() -> None:
    assert reordered_frames(_arrivals([0, 2, 1, 3, 5, 4])) == 2
    assert reordered_frames(_arrivals([])) == 0


def test_the_log_counts_duplicates_and_bytes_inside_the_window_only() -> None:
    log = RoomLog(3)
    log.on_bytes(1, 100, START)  # before the start: not counted
    log.start(START, 2.0)
    log.on_bytes(1, 100, START)
    log.on_bytes(1, 50, START + 2 * S)  # the window is [start, start + 2 s)
    log.on_received((1, 0, "full"), 0, START, START, START + LATENCY_NS, 0)
    log.on_received((1, 0, "full"), 0, START, START, START + LATENCY_NS, 0)
    assert log.bytes_in == [0, 100, 0]
    assert log.duplicates == 1
    assert log.arrivals[1, 0, "full"] == [Arrival(0, START, 5000, 0)]


def test_the_log_is_complete_once_every_frame_that_must_arrive_has() -> None:
    log = RoomLog(5)  # a large room: thumbnails and audio must reach everyone, full may not
    log.start(START, 1.0)
    log.on_sent(0, "full", 30000, late=False)
    log.on_sent(0, "thumb", 3500, late=True)
    assert (log.late, log.payload_bytes) == (1, 33500)
    assert not log.complete()
    for r in range(1, 4):
        log.on_received((r, 0, "thumb"), 0, START, START, START, 0)
    assert not log.complete()
    log.on_received((4, 0, "thumb"), 0, START, START, START, 0)
    assert log.complete()  # nobody got the full frame: no main of anyone, maybe


# --- one room's figures --------------------------------------------------------------------


def _stream(log: RoomLog, receiver: int, sender: int, stream: str, fps: float,
            from_s: float, to_s: float, *, skip: tuple[int, ...] = (), epoch: int = 0) -> None:
    """The sender's frames n (due at n/fps, numbered n) due in [from_s, to_s) arrive 5 ms
    after being sent on time, but those in ``skip``."""
    n = math.ceil(from_s * fps - 1e-9)
    while n / fps < to_s - 1e-9:
        if n not in skip:
            due = START + round(n / fps * S)
            log.on_received((receiver, sender, stream), n, due, due, due + LATENCY_NS, epoch)
        n += 1


def test_small_room_figures() -> None:
    log = RoomLog(3)
    log.start(START, 2.0)
    for s in range(3):
        for _ in range(30):
            log.on_sent(s, "full", 1000, late=False)
        for r in range(3):
            if r != s:
                # Receiver 1 misses 0's frame 20 (due at 1.33 s, in the settled window).
                _stream(log, r, s, "full", 15, 0, 2, skip=(20,) if (r, s) == (1, 0) else ())
        log.on_bytes(s, 6000, START + S)
    for _ in range(40):
        log.on_sent(0, "audio", 1600, late=False)
    for r in (1, 2):
        _stream(log, r, 0, "audio", 20, 0, 2)
    f = analyze(log, rotation(2.0, 4.0, 3), settle_s=1.0)
    assert (f.rooms, f.turns) == (1, 1)
    assert sorted(f.speaker_fps) == [14.0, 15.0]  # receivers 1 and 2, over [1 s, 2 s)
    assert sorted(f.others_fps) == [14.5] + [15.0] * 5  # every pair over the whole run
    assert f.sent == {"full": 90, "thumb": 0, "audio": 40}
    assert f.received == {"full": 179, "thumb": 0, "audio": 80}
    assert f.lost == {"full": 1, "thumb": 0, "audio": 0}
    assert len(f.latency_us["speaker"]) == 59 and set(f.latency_us["speaker"]) == {5000}
    assert len(f.latency_us["video"]) == 179 and len(f.latency_us["audio"]) == 80
    assert f.receiver_bytes_per_s == (3000.0, 3000.0, 3000.0)


def test_large_room_figures_follow_the_speaker_turn_by_turn() -> None:
    k = 5
    log = RoomLog(k)
    log.start(START, 4.0)
    turns = rotation(4.0, 2.0, k)  # 0 speaks, then 1
    for r in range(k):
        for s in range(k):
            if s != r:
                _stream(log, r, s, "thumb", 7.5, 0, 4, skip=(3,) if (r, s) == (4, 3) else ())
    for _ in range(30):
        log.on_sent(3, "thumb", 100, late=False)
    # Before 2.5 s everyone's main is 0, and 0's is 1 (the first other to join); the server
    # switches to speaker 1 at 2.5 s (epoch 1): then everyone's main is 1, and 1's is 0.
    # 0 and 1 send their full layers all along, 60 frames each.
    for _ in range(60):
        log.on_sent(0, "full", 100, late=False)
        log.on_sent(1, "full", 100, late=False)
    for r, s in ((1, 0), (0, 1)):
        _stream(log, r, s, "full", 15, 0, 2.5)
        _stream(log, r, s, "full", 15, 2.5, 4, epoch=1)
    for r in range(2, k):
        _stream(log, r, 0, "full", 15, 0, 2.5)
        _stream(log, r, 1, "full", 15, 2.5, 4, epoch=1, skip=(46, 47) if r == 2 else ())
    f = analyze(log, turns, settle_s=1.0)
    assert f.turns == 2
    # Turn 0 over [1, 2): 15 at 1..4. Turn 1 over [3, 4): 13 at 2 (two missed), 15 elsewhere.
    assert sorted(f.speaker_fps) == [13.0] + [15.0] * 7
    # Thumbnails of the 3 non-speakers at each of 4 receivers in each of 2 turns; receiver 4
    # missed 3's thumbnail due at 0.4 s, in turn 0.
    assert len(f.others_fps) == 2 * 4 * 3
    assert sorted(f.others_fps)[:2] == [7.0, 7.5]
    # Full frames: only the gap inside epoch 1 at receiver 2; the switches are no loss.
    assert f.lost == {"full": 2, "thumb": 1, "audio": 0}


def test_combine_adds_rooms() -> None:
    one = RoomFigures(rooms=1, turns=2, speaker_fps=(15.0,), others_fps=(7.5,),
                      latency_us={"speaker": (1,), "video": (1, 2), "audio": ()},
                      sent={"full": 1, "thumb": 2, "audio": 3},
                      received={"full": 1, "thumb": 2, "audio": 3},
                      lost={"full": 0, "thumb": 1, "audio": 0}, reordered=1, late=2,
                      payload_bytes=10, receiver_bytes_per_s=(5.0,))
    both = combine([one, one])
    assert (both.rooms, both.turns, both.reordered, both.late, both.payload_bytes) == (
        2, 4, 2, 4, 20)
    assert both.speaker_fps == (15.0, 15.0) and both.latency_us["video"] == (1, 2, 1, 2)
    assert both.lost == {"full": 0, "thumb": 2, "audio": 0}
    assert combine([]) == RoomFigures()


# --- verdict, reports, wire format ---------------------------------------------------------

CRITERIA = RoomCriteria(rooms=1, min_speaker_fps=14.5, min_others_fps=5.0, max_p99_ms=100.0)


def _figures(**changes: Any) -> RoomFigures:
    base: dict[str, Any] = dict(
        rooms=1, turns=2, speaker_fps=(15.0, 14.8), others_fps=(7.5, 7.0),
        latency_us={"speaker": (2000, 4000, 90_000), "video": (2000,), "audio": (1000,)},
        sent={"full": 60, "thumb": 150, "audio": 80},
        received={"full": 120, "thumb": 600, "audio": 320},
        lost={"full": 0, "thumb": 0, "audio": 0}, receiver_bytes_per_s=(1000.0, 3000.0, 2000.0))
    base.update(changes)
    return RoomFigures(**base)


def test_room_verdict_passes_when_every_criterion_is_met() -> None:
    v = room_verdict(CRITERIA, _figures(), p99_ms=90.0, errors=0)
    assert v.passed
    assert v.text == ("PASS: speaker >= 14.5 fps, others >= 5 fps, speaker p99 <= 100 ms, "
                      "nothing lost, no errors")


def test_room_verdict_lists_every_missed_criterion() -> None:
    f = _figures(rooms=0, speaker_fps=(15.0, 9.0, 3.5), others_fps=(4.0,),
                 lost={"full": 2, "thumb": 1, "audio": 0})
    v = room_verdict(CRITERIA, f, p99_ms=250.0, errors=3)
    assert not v.passed
    assert v.text == ("FAIL: only 0 of 1 rooms streamed; speaker below 14.5 fps in 2 "
                      "receiver-turn(s) (slowest 3.5); others below 5 fps in 1 stream(s) "
                      "(slowest 4.0); speaker p99 250.0 ms > 100 ms; 3 frame(s) lost; "
                      "3 error(s)")
    assert room_verdict(CRITERIA, _figures(speaker_fps=(), others_fps=()), None, 0).text == (
        "FAIL: no speaker rate was measured; no others rate was measured; "
        "no speaker frame was delivered")
    lenient = RoomCriteria(1, 14.5, 5.0, 100.0, max_lost=5)
    assert room_verdict(lenient, _figures(lost={"full": 5, "thumb": 0, "audio": 0}), 1.0,
                        0).passed


def test_room_summary_json_and_text() -> None:
    report = RoomWorkerReport(figures=_figures(),
                              errors={"send_video_frame: Rate limit exceeded": 2}, cpu_s=1.0)
    s = summarize_rooms(report, CRITERIA, room_size=16, duration_s=10.0, turn_s=4.0,
                        settle_s=1.0, wall_s=12.5)
    out = room_summary_json(s)
    assert json.loads(json.dumps(out)) == out
    assert (out["calls"], out["video_streams"], out["fps"]) == (
        None, None, {"min": None, "median": None})
    assert (out["rooms"], out["room_size"], out["rooms_streamed"], out["turns_measured"]) == (
        1, 16, 1, 2)
    assert (out["speaker_fps_min"], out["others_fps_min"]) == (14.8, 7.0)
    assert out["speaker_latency_ms"] == {"p50": 4.0, "p95": 90.0, "p99": 90.0, "max": 90.0}
    assert out["receiver_bytes_per_s"] == {"median": 2000, "max": 3000}
    assert (out["frames_sent"], out["frames_received"], out["lost"]) == (290, 1040, 0)
    assert out["errors"] == 2 and out["bench_cpu_percent"] == 8.0
    for key in ("duration_s", "wall_s", "latency_ms", "audio_latency_ms", "reordered",
                "duplicates", "late_sends", "error_counts", "lost_by_stream",
                "frames_sent_by_stream", "payload_bytes_sent", "passed", "verdict"):
        assert key in out
    assert out["verdict"] == "FAIL: 2 error(s)"
    text = format_room_report(s)
    assert "1 room(s) of 16" in text and "thumbnails of the non-speakers" in text
    assert "median 2.0 kB/s  max 3.0 kB/s over 3 receiver(s)" in text
    assert "2 x send_video_frame: Rate limit exceeded" in text
    assert text.endswith(s.verdict.text)


def test_room_report_survives_the_worker_wire_format_and_merges() -> None:
    report = RoomWorkerReport(figures=_figures(), errors={"e: f": 1}, cpu_s=0.5)
    wire = json.loads(json.dumps(room_report_to_json(report)))
    assert room_report_from_json(wire) == report
    merged = merge_room_reports([report, RoomWorkerReport(errors={"e: f": 2}, cpu_s=0.25)])
    assert (merged.errors, merged.cpu_s, merged.figures.rooms) == ({"e: f": 3}, 0.75, 1)


def test_room_recorder_counts_for_the_progress_line() -> None:
    rec = RoomRecorder()
    rec.sent()
    rec.sent()
    rec.received(2500)
    rec.received(None)  # audio: no video latency
    rec.error("x")
    assert rec.progress() == Progress(sent=2, received=2, errors=1, buckets={2: 1})
    rec.rooms.append(_figures())
    assert rec.report(cpu_s=1.5) == RoomWorkerReport(figures=_figures(), errors={"x": 1},
                                                     cpu_s=1.5)


# --- the client's pure parts ---------------------------------------------------------------


def test_room_frame_carries_its_send_and_due_times() -> None:
    frame = roommember.room_frame(123_456, 789, seq=3, size=3500)
    assert len(frame) == 3500 and frame[:2] == b"\xff\xd8" and frame[-2:] == b"\xff\xd9"
    assert read_stamp("video", frame) == 123_456
    assert roommember.read_due(frame) == 789


def test_room_options_and_their_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_bench_options(parser)
    args = parser.parse_args(["--rooms", "2"])
    assert (args.rooms, args.room_size, args.turn, args.settle, args.thumb_bytes,
            args.min_thumb_fps, args.max_lost) == (2, 16, 4.0, 1.0, 3500, 5.0, 0)
    assert parser.parse_args([]).rooms is None
    for bad in (["--rooms", "1", "--calls", "2"], ["--room-size", "1"], ["--settle", "-1"],
                ["--thumb-bytes", "19"], ["--max-lost", "-1"], ["--rooms", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def _member(room_size: int = 3) -> roommember.Member:
    plan = roommember.RoomPlan(urls=["ws://x"], duration_s=1.0, room_size=room_size, fps=15.0,
                               frame_bytes=1000, thumb_bytes=100, turn_s=4.0, settle_s=1.0)
    room = roommember.Room(plan, 0, RoomRecorder())
    room.index_of = {"a" * 64: 0, "b" * 64: 1}
    return roommember.Member(None, room, 1)  # type: ignore[arg-type]  # no I/O here


def test_a_member_obeys_room_layers_and_counts_speaker_epochs() -> None:
    m = _member()
    m._on_control({"type": "room_layers", "room_id": "r", "full": False, "thumb": True})
    assert (m.full, m.thumb, m.layers.is_set()) == (False, True, True)
    m._on_control({"type": "room_speaker", "room_id": "r", "speaker": "a" * 64})
    m._on_control({"type": "room_speaker", "room_id": "r", "speaker": None})
    assert m.epoch == 2
    m._on_control({"type": "insert", "table": "room_messages", "row": {"text": "hi"}})
    assert not m.fenced.is_set()
    m._on_control({"type": "insert", "table": "room_messages", "row": {"text": m.room.fence}})
    assert m.fenced.is_set()
    m._on_control({"type": "error", "req_type": "join_room", "message": "Room is full"})
    assert m.room.recorder.errors == {"join_room: Room is full": 1}
    assert m.replies["join_room"]["message"] == "Room is full"


def test_a_member_records_frames_by_sender_and_layer() -> None:
    m = _member()
    m.room.log.start(START, 1.0)
    frame = roommember.room_frame(START + 1000, START, 0, 100)
    m._on_media("video", {"from": "a" * 64, "seq": 0, "layer": "thumb"}, memoryview(frame),
                START + 2_001_000)
    [arrival] = m.room.log.arrivals[1, 0, "thumb"]
    assert arrival == Arrival(seq=0, due_ns=START, latency_us=2000, epoch=0)
    m._on_media("video", {"from": "c" * 64, "seq": 0, "layer": "full"}, memoryview(frame),
                START)
    m._on_media("video", {"from": "a" * 64, "seq": 1, "layer": "huge"}, memoryview(frame),
                START)
    m._on_media("audio", {"from": "b" * 64, "seq": 0}, memoryview(frame), START)
    assert m.room.recorder.errors == {
        "video frame from an unexpected sender or without a seq": 2,
        "audio frame of a member's own sent back to it": 1}
    assert list(m.room.log.arrivals) == [(1, 0, "thumb")]
