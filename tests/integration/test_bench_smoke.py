"""``pgcall bench`` against a real pgcall on a real PostgreSQL.

The server runs in the test's trio nursery on port 0; the bench runs as the command a user
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

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 90.0  # start-up, 3 s of media, drain and close, on a busy 2-core machine


async def _bench(nursery: trio.Nursery, db_dsn: str, *options: str) -> dict[str, Any]:
    with trio.fail_after(DEADLINE_S):
        running: Running = await nursery.start(serve, Config(dsn=db_dsn, port=0))
        url = running.url.replace("http://", "ws://", 1)
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
