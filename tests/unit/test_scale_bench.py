"""The pure parts of the scale benchmark (``benchmarks/scale.py``): the sections asked for, the
verdicts of a calls and of a rooms step, the arithmetic on recorded steps, Prometheus text, and
the write-up of a small made-up document; and the command line's answer to bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from benchreport.render import render_markdown
from benchreport.scale import figures, promtext
from benchreport.scale.markdown import scale_sections
from benchreport.scale.plan import CRITERIA, QUICK, SECTIONS, parse_sections, room_counts
from benchreport.scale.verdicts import call_holds, room_holds

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"

# --- plan ------------------------------------------------------------------------------------


def test_sections_come_in_the_run_order_whatever_the_order_asked() -> None:
    assert parse_sections("relays, rooms") == ("rooms", "relays")
    assert parse_sections(",".join(SECTIONS)) == SECTIONS
    assert parse_sections("workers,workers,") == ("workers",)


@pytest.mark.parametrize("text", ["", " , ", "rooms,lobby"])
def test_unknown_or_no_section_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="lobby" if "lobby" in text else "no section"):
        parse_sections(text)


def test_rooms_sweep_starts_at_one_room() -> None:
    counts = room_counts()
    assert [next(counts) for _ in range(3)] == [1, 2, 3]


# --- verdicts --------------------------------------------------------------------------------


def calls_bench(fps_min: float = 15.0, p99: float | None = 40.0, streams: int = 4,
                frames: int = 1400) -> dict[str, Any]:
    return {"video_streams": streams, "fps": {"min": fps_min, "median": 15.0},
            "latency_ms": {"p50": 10.0, "p99": p99}, "lost": 0, "errors": 0,
            "frames_received": frames, "duration_s": 10.0}


def rooms_bench(speaker: float | None = 15.0, others: float | None = 15.0, p99: float = 40.0,
                lost: int = 0, errors: int = 0, rooms: int = 1) -> dict[str, Any]:
    return {"rooms_streamed": rooms, "speaker_fps_min": speaker, "others_fps_min": others,
            "speaker_latency_ms": {"p50": 10.0, "p99": p99}, "lost": lost, "errors": errors,
            "frames_received": 2000, "duration_s": 10.0}


def test_a_calls_step_holds_with_every_stream_fast_and_p99_low() -> None:
    assert call_holds(calls_bench(), 2, CRITERIA) == (True, "holds")


def test_a_calls_step_names_each_problem() -> None:
    ok, why = call_holds(calls_bench(fps_min=12.0, p99=150.0, streams=3), 2, CRITERIA)
    assert not ok
    assert "only 3 of 4 video streams" in why
    assert "slowest stream 12.0 fps < 14.5" in why
    assert "video p99 150.0 ms > 100 ms" in why
    assert call_holds(None, 2, CRITERIA) == (False, "the bench produced no figures")
    assert call_holds(calls_bench(p99=None), 2, CRITERIA)[1] == "no video latency"


def test_thumbnails_of_a_large_room_need_only_the_thumbnail_rate() -> None:
    assert room_holds(rooms_bench(others=6.0), 1, 16, CRITERIA)[0]
    ok, why = room_holds(rooms_bench(others=6.0), 1, 4, CRITERIA)
    assert not ok and why == "others 6.0 fps < 14.5"
    assert not room_holds(rooms_bench(others=4.0), 1, 16, CRITERIA)[0]


def test_a_rooms_step_breaks_on_lost_frames_errors_missing_rooms_and_rates() -> None:
    ok, why = room_holds(rooms_bench(speaker=None, lost=2, errors=1, rooms=1), 2, 8, CRITERIA)
    assert not ok
    for part in ("only 1 of 2 rooms streamed", "no speaker rate", "2 frame(s) lost",
                 "1 error(s)"):
        assert part in why
    assert "speaker p99 120.0 ms > 100 ms" in room_holds(rooms_bench(p99=120.0), 1, 8,
                                                         CRITERIA)[1]


# --- figures ---------------------------------------------------------------------------------


def step(**over: Any) -> dict[str, Any]:
    base = {"bench": calls_bench(), "bench_wall_s": 10.0, "holds": True, "why": "holds",
            "cpu_s": {"pgcall": 2.0, "postgres": 1.0},
            "cpu_s_settled": {"pgcall": 2.8, "postgres": 1.4}}
    return {**base, **over}


def test_cpu_as_a_share_of_a_core_and_per_frame_received() -> None:
    s = step()
    assert figures.cpu_percent(s, "pgcall") == pytest.approx(20.0)
    assert figures.us_per_frame(s, "postgres") == pytest.approx(1e6 / 1400)
    assert figures.us_per_frame(s, "pgcall", settled=True) == pytest.approx(2.8e6 / 1400)
    assert figures.cpu_percent(s, "relay9") is None
    assert figures.us_per_frame(step(bench=None), "pgcall") is None


def test_spread_ignores_missing_values() -> None:
    assert figures.spread([3.0, None, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0,
                                                      "n": 3}
    assert figures.spread([None])["median"] is None


def test_capacity_is_the_largest_step_held_and_the_first_that_broke() -> None:
    steps = [step(rooms=3, holds=False), step(rooms=1), step(rooms=4, holds=False),
             step(rooms=2)]
    cap, broke = figures.capacity(steps, "rooms")
    assert cap == 2 and broke is not None and broke["rooms"] == 3
    assert figures.capacity([step(rooms=1, holds=False)], "rooms")[0] is None


def test_recording_rounds_alternate_which_comes_first() -> None:
    assert figures.recording_order(3) == [(1, False), (1, True), (2, True), (2, False),
                                          (3, False), (3, True)]


def relay(name: str, sent: int, written: int, read: int) -> dict[str, Any]:
    return {"name": name, "replication_bytes": sent, "frames_written": written,
            "frames_in": read, "cpu_s": 1.0, "cpu_s_settled": 1.2}


def test_egress_against_every_relay_receiving_every_frame() -> None:
    # Two relays, 1000 frames written, each relay reads the half its clients receive.
    e = figures.egress({"per_relay": [relay("relay1", 500_000, 500, 500),
                                      relay("relay2", 500_000, 500, 500)]})
    assert e["egress_bytes"] == 1_000_000 and e["frames_in"] == 1000
    assert e["bytes_per_frame_in"] == pytest.approx(1000.0)
    assert e["naive_bytes"] == pytest.approx(2_000_000.0)
    assert e["ratio"] == pytest.approx(0.5)
    empty = figures.egress({"per_relay": [relay("pgcall", 0, 0, 0)]})
    assert empty["naive_bytes"] is None and empty["ratio"] is None


# --- promtext --------------------------------------------------------------------------------

METRICS = """\
# HELP pgcall_frames_in_total Media frames read from the replication stream
# TYPE pgcall_frames_in_total counter
pgcall_frames_in_total{kind="video",scope="call"} 120.0
pgcall_frames_in_total{kind="audio",scope="call"} 30.0
pgcall_frames_in_total{kind="video",scope="a b}"} 1.0
pgcall_replication_bytes_total 4.5e+06
pgcall_frames_written_total 99.0 1700000000000

"""


def test_parse_reads_samples_with_labels_and_timestamps() -> None:
    series = promtext.parse(METRICS)
    assert series['pgcall_frames_in_total{kind="video",scope="call"}'] == 120.0
    assert series['pgcall_frames_in_total{kind="video",scope="a b}"}'] == 1.0
    assert series["pgcall_replication_bytes_total"] == 4.5e6
    assert series["pgcall_frames_written_total"] == 99.0
    assert len(series) == 5


def test_total_and_growth_sum_over_labels() -> None:
    before = promtext.parse(METRICS)
    after = {**before, 'pgcall_frames_in_total{kind="audio",scope="call"}': 80.0,
             "pgcall_replication_bytes_total": 5e6}
    assert promtext.total(before, "pgcall_frames_in_total") == 151.0
    assert promtext.total(before, "pgcall_frames") == 0.0
    assert promtext.growth(before, after, ["pgcall_frames_in_total",
                                           "pgcall_replication_bytes_total"]) == {
        "pgcall_frames_in_total": 50.0, "pgcall_replication_bytes_total": 5e5}


# --- markdown --------------------------------------------------------------------------------


def section(name: str, **over: Any) -> dict[str, Any]:
    base = {
        "complete": True, "quick": True, "command": "python3 benchmarks/scale.py --quick",
        "date_utc": "2026-01-01 00:00", "wall_s": 60.0,
        "machine": {"cores": 2, "cpu": "CPU", "memory": "4.0 GiB", "kernel": "Linux 6",
                    "python": "3.11", "trio": "0.30", "pgcall": "0.1",
                    "loadavg_at_start": [0.1, 0.2, 0.3]},
        "postgres": {"server_version": "17"}, "serve_args": ["--retain", "1"],
        "media": {"video_fps": 15, "frame_bytes": 30000, "audio_fps": 20, "audio_bytes": 1600,
                  "thumb_bytes": 3000, "turn_s": 5.0, "settle_s": 1.0, "small_room": 4},
        "criteria": attrs.asdict(CRITERIA), "plan": attrs.asdict(getattr(QUICK, name)),
    }
    return {**base, **over}


def calls_step(calls: int, **over: Any) -> dict[str, Any]:
    base = {"bench_args": ["--calls", str(calls), "--duration", "4", "--json"], "urls": 1,
            "settle_wall_s": 1.5, "calls": calls}
    return step(**{**base, **over})


def document() -> dict[str, Any]:
    rooms = [calls_step(0, case="one room of 6", rooms=1, room_size=6,
                        bench=rooms_bench(others=7.0)),
             calls_step(0, case="capacity", rooms=1, room_size=4, bench=rooms_bench()),
             calls_step(0, case="capacity", rooms=2, room_size=4, holds=False,
                        why="speaker 9.0 fps < 14.5", bench=rooms_bench(speaker=9.0, rooms=2))]
    wal = [{"room_size": 2, "frames_sent": 100, "frames_sent_by_stream":
            {"full": 60, "thumb": 0, "audio": 40}, "rows_per_frame": 1.0,
            "deliveries_per_frame": 1.0, "payload_per_frame": 18000.0, "wal_per_frame": 21000.0,
            "overhead_per_frame": 3000.0, "wal_records": None, "fpi_bytes": None, "errors": 0,
            "bench_args": ["--rooms", "1", "--room-size", "2", "--json"]}]
    recording = [calls_step(2, round=1, record=False, stored=None),
                 calls_step(2, round=1, record=True, stored={
                     "recordings": 2, "frames": 300, "payload_bytes": 10, "table_bytes": 2e6})]
    workers = [calls_step(2, workers=w, holds=w == 2, why="holds" if w == 2 else "slow")
               for w in (1, 2)]
    relays = [calls_step(2, relays=1, per_relay=[relay("pgcall", 4_000_000, 1000, 1000)]),
              calls_step(2, relays=2, urls=2, cpu_s={"relay1": 1.0, "relay2": 1.5,
                                                     "postgres": 1.0},
                         per_relay=[relay("relay1", 2_000_000, 500, 500),
                                    relay("relay2", 2_100_000, 500, 500)])]
    return {"format": 1, "sections": {
        "relays": section("relays", steps=relays),
        "rooms": section("rooms", steps=rooms, wal=wal),
        "recording": section("recording", steps=recording),
        "workers": section("workers", steps=workers, complete=False)}}


def test_the_scale_part_has_every_section_in_the_run_order() -> None:
    text = "\n".join(scale_sections(document()))
    heads = [line for line in text.splitlines() if line.startswith("### ")]
    assert heads == ["### Rooms", "### Recording on and off", "### Workers",
                     "### Several relays on one database"]
    assert "Quick check run" in text and "**Incomplete**" in text
    assert "**Capacity: 1 rooms of 4**" in text
    assert "`--workers 1`: **capacity 0 calls**" in text
    assert "`--workers 2`: 2 calls held" in text
    assert "2 relays: 4.1 MB (1.02 x)" in text
    assert "--url URL1 --url URL2" in text
    width = None
    for line in text.splitlines():  # every table row has as many cells as its head
        if not line.startswith("|"):
            width = None
            continue
        assert "None" not in line
        cells = line.count(" | ") + 1 if not line.startswith("|-") else line.count("---")
        width = cells if width is None else width
        assert cells == width, line


def test_no_scale_document_no_scale_part() -> None:
    assert scale_sections(None) == []
    assert scale_sections({"format": 1, "sections": {}}) == []
    only = scale_sections({"format": 1, "sections": {"recording": section("recording")}})
    assert only[0].startswith("## Scale-out") and "### Recording on and off" in only


def test_render_puts_the_scale_part_last(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchreport.render as render

    monkeypatch.setattr(render, "scale_sections", lambda doc: ["## Scale-out part"] if doc
                        else [])
    monkeypatch.setattr(render, "targets_section", lambda doc: ["## targets"])
    for name in ("same_run_section", "floor_section", "compare_section", "limit_section",
                 "machine_section", "method_section"):
        monkeypatch.setattr(render, name, lambda doc: [])
    monkeypatch.setattr(render, "targets", lambda doc: [])
    doc = {"quick": False, "complete": True, "steps": [], "machine": {"cores": 2}}
    monkeypatch.setattr(render, "capacity", lambda doc: (0, None))
    monkeypatch.setattr(render, "peer_of", lambda doc: None)
    monkeypatch.setattr(render, "steps_of", lambda doc, path, server="pgcall": [])
    assert render_markdown(doc, {"sections": {}}).rstrip().endswith("## Scale-out part")
    assert "Scale-out part" not in render_markdown(doc)


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--sections", "lobby"], ["--json", "/nonexistent/x.json"],
                                  ["--bogus"], ["--quick", "--render-only"]])
def test_bad_input_is_one_line_and_a_non_zero_exit(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("scale.py: ")
    assert "Traceback" not in done.stderr


def test_the_recorded_command_leaves_out_local_paths() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from scale import recorded_command
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert recorded_command(["--quick", "--json", "/tmp/x.json", "--workdir=/tmp/w",
                             "--sections", "rooms"]) == \
        "python3 benchmarks/scale.py --quick --sections rooms"
