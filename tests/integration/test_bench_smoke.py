"""``pgcall bench`` against a real pgcall on a real PostgreSQL: calls, and rooms; and against
two pgcalls (relays) on one database, the clients spread over both with ``--url`` twice.

The servers run in the test's trio nursery on port 0; the bench runs as the command a user
would type, as a subprocess, with ``--json``. Only counts and the shape of the figures are
checked - how fast this machine happens to be is never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from pgcall.app import Running, serve
from pgcall.config import Config
from pgcall.pg.pool import Pool

from .test_observability import Samples, sample, scrape_metrics
from .test_relays import relays

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 90.0  # start-up, 3 s of media, drain and close, on a busy 2-core machine


async def _bench(nursery: trio.Nursery, db_dsn: str, *options: str) -> dict[str, Any]:
    with trio.fail_after(DEADLINE_S):
        running: Running = await nursery.start(serve, Config(dsn=db_dsn, port=0))
    return await _run_bench(running.url.replace("http://", "ws://", 1), *options)


async def _run_bench(url: str, *options: str) -> dict[str, Any]:
    with trio.fail_after(DEADLINE_S):
        cmd = [sys.executable, "-m", "pgcall.bench.cli", "--url", url, "--json", *options]
        done = await trio.run_process(cmd, cwd=REPO, check=False, capture_stdout=True,
                                      stderr=subprocess.STDOUT)
    output = done.stdout.decode()
    # 0 is PASS and 1 FAIL; a slow machine may FAIL the latency criterion, not crash.
    assert done.returncode in (0, 1), output
    lines = output.splitlines()
    assert len(lines) == 1, output  # exactly one JSON object, no progress line off a TTY
    return json.loads(lines[0])


def _check(result: dict[str, Any], calls: int, audio: bool) -> None:
    assert result["calls"] == calls
    assert result["errors"] == 0, result["error_counts"]
    assert result["frames_sent"] > 0
    assert 0 < result["frames_received"] <= result["frames_sent"]
    assert result["video_streams"] == 2 * calls
    lat = result["latency_ms"]
    assert None not in lat.values()
    assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    audio_lat = result["audio_latency_ms"]
    if audio:
        assert audio_lat["p50"] <= audio_lat["p95"] <= audio_lat["p99"] <= audio_lat["max"]
    else:
        assert set(audio_lat.values()) == {None}
    assert 0 < result["fps"]["min"] <= result["fps"]["median"]
    assert result["bench_cpu_percent"] >= 0
    assert result["verdict"].startswith("PASS: " if result["passed"] else "FAIL: ")


async def test_one_call_delivers_video_and_audio(nursery: trio.Nursery, db_dsn: str) -> None:
    result = await _bench(nursery, db_dsn, "--calls", "1", "--duration", "3")
    _check(result, calls=1, audio=True)
    assert result["duration_s"] == 3.0


async def test_calls_spread_over_worker_processes(nursery: trio.Nursery, db_dsn: str) -> None:
    result = await _bench(nursery, db_dsn, "--calls", "2", "--duration", "2", "--procs", "2",
                          "--no-audio", "--ramp", "0.5", "--frame-bytes", "5000")
    _check(result, calls=2, audio=False)


async def test_record_records_every_call(nursery: trio.Nursery, db_dsn: str,
                                        db: Pool) -> None:
    result = await _bench(nursery, db_dsn, "--calls", "2", "--duration", "2", "--record",
                          "--frame-bytes", "5000")
    _check(result, calls=2, audio=True)
    rows = (await db.execute("SELECT cardinality(participants), session_id IS NOT NULL "
                             "FROM recordings")).rows
    assert rows == [(2, True), (2, True)]


def _check_room(result: dict[str, Any], size: int) -> None:
    assert (result["rooms"], result["room_size"], result["rooms_streamed"]) == (1, size, 1)
    assert result["errors"] == 0, result["error_counts"]
    assert (result["calls"], result["video_streams"]) == (None, None)
    sent, got = result["frames_sent_by_stream"], result["frames_received_by_stream"]
    # Small rooms send no thumbnails; large ones do; the speaker's audio reaches the others.
    assert (sent["thumb"] > 0) == (size > 4)
    for stream in ("full", "audio") + (("thumb",) if size > 4 else ()):
        assert sent[stream] > 0 and got[stream] > 0, stream
    assert result["frames_sent"] == sum(sent.values())
    assert result["frames_received"] == sum(got.values())
    assert result["payload_bytes_sent"] > 0
    assert result["lost"] == sum(result["lost_by_stream"].values()) >= 0
    for key in ("speaker_latency_ms", "latency_ms", "audio_latency_ms"):
        lat = result[key]
        assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], key
    assert result["speaker_fps_min"] is not None and result["speaker_fps_median"] > 0
    assert result["others_fps_min"] is not None and result["others_fps_median"] > 0
    rates = result["receiver_bytes_per_s"]
    assert 0 < rates["median"] <= rates["max"]
    assert result["verdict"].startswith("PASS: " if result["passed"] else "FAIL: ")


async def test_a_small_room_streams_everyone_to_everyone(server: str) -> None:
    result = await _run_bench(server, "--rooms", "1", "--room-size", "3", "--duration", "2",
                              "--frame-bytes", "8000")
    _check_room(result, 3)
    assert result["turns_measured"] == 1


async def test_record_records_every_room(server: str, db: Pool) -> None:
    result = await _run_bench(server, "--rooms", "1", "--room-size", "3", "--duration", "2",
                              "--frame-bytes", "8000", "--record")
    _check_room(result, 3)
    rows = (await db.execute("SELECT cardinality(participants), room_id IS NOT NULL "
                             "FROM recordings")).rows
    assert rows == [(3, True)]


async def test_a_large_room_streams_thumbnails_and_follows_the_speaker(server: str) -> None:
    # Two turns of 1.5 s: member 0 speaks, then member 1, whom the server must switch to.
    result = await _run_bench(server, "--rooms", "1", "--room-size", "5", "--duration", "3",
                              "--turn", "1.5", "--settle", "0.5", "--frame-bytes", "8000")
    _check_room(result, 5)
    assert result["turns_measured"] == 2


# -- two relays ---------------------------------------------------------------------------


def _frames(samples: Samples, name: str, scope: str) -> float:
    return sum(sample(samples, name, kind=kind, scope=scope) for kind in ("video", "audio"))


async def _relay_figures(urls: list[str], scope: str) -> list[tuple[float, float]]:
    """(frames written to PostgreSQL, frames queued to its own clients) of each relay."""
    figures = []
    for url in urls:
        _, samples = await scrape_metrics(url)
        figures.append((sample(samples, "pgcall_frames_written_total"),
                        _frames(samples, "pgcall_frames_out_total", scope)))
    return figures


async def test_calls_across_two_relays(db_dsn: str) -> None:
    """Every caller on relay one, every callee on relay two: what each relay hands its clients
    was written by the other one."""
    async with relays(db_dsn, 2) as (one, two):
        result = await _run_bench(one, "--url", two, "--calls", "2", "--duration", "2",
                                  "--frame-bytes", "5000")
        _check(result, calls=2, audio=True)
        (written_one, out_one), (written_two, out_two) = await _relay_figures(
            [one, two], "call")
    assert written_one > 0 and written_two > 0  # both relays had senders
    assert 0 < out_one <= written_two
    assert 0 < out_two <= written_one
    assert out_one + out_two >= result["frames_received"]


async def test_a_room_across_two_relays(db_dsn: str) -> None:
    """Members 0 and 2 on relay one, member 1 on relay two: the room works as on one relay."""
    async with relays(db_dsn, 2) as (one, two):
        result = await _run_bench(one, "--url", two, "--rooms", "1", "--room-size", "3",
                                  "--duration", "2", "--frame-bytes", "8000")
        _check_room(result, 3)
        figures = await _relay_figures([one, two], "room")
    for written, out in figures:
        assert written > 0 and out > 0
