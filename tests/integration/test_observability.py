"""What an operator sees of a running pgcall: ``/metrics`` (Prometheus text format, parsed with
prometheus-client's own parser) and ``--log-format json`` (one JSON object per stderr line).

The metrics test counts what it caused (frames sent, clients connected) and compares exactly;
the log test runs ``python -m pgcall`` as a subprocess and uses log lines the server writes
anyway (a client connecting) as markers, so "nothing was logged per frame" is checked between
two known points of the stream rather than after a sleep.

Also home of small helpers the other tests of this kind share: ``http_get`` (plain or TLS),
``scrape_metrics`` and ``rss_bytes``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio
from prometheus_client.parser import text_string_to_metric_families

from pgcall.pg.pool import Pool

from .conftest import wait_slots_released
from .wsclient import (
    Client,
    audio_header,
    event,
    fence,
    media,
    open_client,
    open_clients,
    random_identity,
    setup_call,
    video_header,
)

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0
START_DEADLINE_S = 60.0  # a subprocess: interpreter start-up, replication slot, on a busy box
STOP_DEADLINE_S = 10.0
VIDEO_FRAMES = 10  # fewer than the outbox keeps (15): none can be dropped, counts are exact
AUDIO_FRAMES = 12
QUIET_FRAMES = 50
VIDEO_FPS = 15.0
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LEVELS = {"debug", "info", "warning", "error", "critical"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- shared helpers -----------------------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc (of this one by default: in-process servers)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


async def http_get(base: str, path: str, ssl_context: ssl.SSLContext | None = None
                   ) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET to the server of ``base`` (any scheme); (status, headers, body)."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream: trio.abc.Stream
    if ssl_context is not None:
        stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=ssl_context,
                                                     https_compatible=True)
    else:
        stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                              "Connection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, f"connection closed before the response head: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
        while len(body) < int(headers["content-length"]):
            chunk = await stream.receive_some(65536)
            assert chunk, "connection closed inside the body"
            body += chunk
    return int(status_line.split()[1]), headers, body


async def scrape_metrics(base: str) -> tuple[set[str], Samples]:
    """GET /metrics and parse it: (family names, {(sample name, labels): value})."""
    status, headers, body = await http_get(base, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        names.add(family.name)
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return names, samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


# -- /metrics -----------------------------------------------------------------------------------


async def test_metrics_count_what_a_call_did(server: str, db: Pool) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            session_id = await setup_call(a, b, "Video")
            for seq in range(VIDEO_FRAMES):
                await a.send_media("video", video_header(session_id, b.identity, seq),
                                   b"\xff\xd8" + os.urandom(2000))
            for seq in range(AUDIO_FRAMES):
                await b.send_media("audio", audio_header(session_id, a.identity, seq),
                                   b"\0\0" * 400)
            for seq in range(VIDEO_FRAMES):
                await b.expect(media("video", seq=seq))
            for seq in range(AUDIO_FRAMES):
                await a.expect(media("audio", seq=seq))
            # A frame another process writes for somebody who is not connected here.
            await db.execute(
                "INSERT INTO video_frames (session_id, from_id, to_id, seq, width, height, "
                "jpeg) VALUES ($1, $2, $3, 0, 640, 360, $4)",
                [uuid.uuid4(), random_identity(), random_identity(), b"\xff\xd8\xff\xd9"])
            # Past the fence every frame was routed, and each relayed one has been sent (its
            # latency observed): the recipients' senders have sent later messages since.
            await fence(db, a, b, c)
            names, during = await scrape_metrics(server)
        async with open_clients(server, 1) as (watcher,):
            for gone in (a, b, c):
                if gone.identity in {u["identity"] for u in watcher.snapshots["users"]}:
                    await watcher.expect(event("delete", "users", identity=gone.identity))
            _, after = await scrape_metrics(server)

    assert names and all(n.startswith("pgcall_") for n in names), names
    call = {"scope": "call"}
    assert sample(during, "pgcall_frames_in_total", kind="video", **call) == VIDEO_FRAMES + 1
    assert sample(during, "pgcall_frames_in_total", kind="audio", **call) == AUDIO_FRAMES
    assert sample(during, "pgcall_frames_out_total", kind="video", **call) == VIDEO_FRAMES
    assert sample(during, "pgcall_frames_out_total", kind="audio", **call) == AUDIO_FRAMES
    assert sample(during, "pgcall_frames_in_total", kind="video", scope="room") == 0
    # Every client frame was written (the +1 above came from another process), in as many
    # transactions as the writer needed: at most one each.
    assert sample(during, "pgcall_frames_written_total") == VIDEO_FRAMES + AUDIO_FRAMES
    assert 1 <= sample(during, "pgcall_frame_batches_total") <= VIDEO_FRAMES + AUDIO_FRAMES
    assert sample(during, "pgcall_frames_dropped_total", reason="recipient_offline") == 1
    assert sample(during, "pgcall_frames_dropped_total", reason="slow_client_video") == 0
    assert sample(during, "pgcall_clients") == 3
    assert sample(during, "pgcall_active_calls") == 1
    assert sample(during, "pgcall_replication_streaming") == 1
    count = sample(during, "pgcall_frame_latency_seconds_count")
    assert count == VIDEO_FRAMES + AUDIO_FRAMES  # every relayed frame, once
    assert sample(during, "pgcall_frame_latency_seconds_bucket", le="+Inf") == count
    assert sample(during, "pgcall_frame_latency_seconds_sum") >= 0
    # The three left (their calls with them); only the watcher is connected.
    assert sample(after, "pgcall_clients") == 1
    assert sample(after, "pgcall_active_calls") == 0


# -- --log-format json --------------------------------------------------------------------------


class StderrLines:
    """Collects a subprocess's stderr line by line; lets a test wait for a given line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = trio.Event()

    async def collect(self, stream: trio.abc.ReceiveStream) -> None:
        pending = b""
        while chunk := await stream.receive_some(65536):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            self.lines.extend(line.decode() for line in complete)
            self._changed.set()
            self._changed = trio.Event()
        if pending:
            self.lines.append(pending.decode())
        self._changed.set()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> int:
        """The index of the first line (a JSON object) that matches."""
        checked = 0
        while True:
            for i in range(checked, len(self.lines)):
                if predicate(json.loads(self.lines[i])):
                    return i
            checked = len(self.lines)
            await self._changed.wait()


async def relay(a: Client, b: Client, session_id: str, seqs: range) -> None:
    """Video from a to b at the configured 15 fps (faster would meet the rate limit)."""
    start = trio.current_time()
    for i, seq in enumerate(seqs):
        await trio.sleep_until(start + i / VIDEO_FPS)
        await a.send_media("video", video_header(session_id, b.identity, seq),
                           b"\xff\xd8" + bytes(500))
        await b.expect(media("video", seq=seq))


def says(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: text in obj.get("msg", "")


async def test_json_logs_one_object_per_line_and_nothing_per_frame(
        db_dsn: str, db: Pool, nursery: trio.Nursery) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGCALL_")}
    cmd = [sys.executable, "-m", "pgcall", "--dsn", db_dsn, "--port", "0",
           "--log-format", "json"]
    err = StderrLines()
    proc: trio.Process = await nursery.start(partial(
        trio.run_process, cmd, cwd=REPO, env=env, check=False, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        assert proc.stderr is not None
        nursery.start_soon(err.collect, proc.stderr)
        with trio.fail_after(START_DEADLINE_S):
            ready = err.lines[await err.wait_for(says("pgcall ready on"))]
        url = re.search(r"http://[^ ]+", json.loads(ready)["msg"])
        assert url is not None, ready
        base = url.group(0).replace("http://", "ws://", 1) + "/"
        with trio.fail_after(DEADLINE_S):
            async with open_clients(base, 2) as (a, b):
                session_id = await setup_call(a, b, "Video")
                await relay(a, b, session_id, range(5))
                # Markers: a client connecting is logged; what lies between two of them was
                # logged while the 50 frames went through.
                async with open_client(base) as m1:
                    first = await err.wait_for(says(f"client {m1.identity[:8]} connected"))
                    await relay(a, b, session_id, range(5, 5 + QUIET_FRAMES))
                    async with open_client(base) as m2:
                        second = await err.wait_for(
                            says(f"client {m2.identity[:8]} connected"))
                        between = err.lines[first + 1:second]
            for c in (a, b, m1, m2):
                await err.wait_for(says(f"client {c.identity[:8]} disconnected"))
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_DEADLINE_S):
            code = await proc.wait()
            await err.wait_for(says("received SIGTERM"))
    finally:
        if proc.returncode is None:
            proc.kill()
    with trio.fail_after(STOP_DEADLINE_S):
        await wait_slots_released(db_dsn)

    assert code == 0, err.lines
    assert between == [], between  # nothing per frame at info level
    objects = []
    for line in err.lines:
        obj = json.loads(line)  # every line is one JSON object...
        assert isinstance(obj, dict), line
        assert {"ts", "level", "logger", "msg"} <= obj.keys(), line  # ...with these keys
        assert TS_RE.fullmatch(obj["ts"]), line
        assert obj["level"] in LEVELS and obj["logger"].startswith("pgcall"), line
        objects.append(obj)
    messages = [o["msg"] for o in objects]
    for c in (a, b):
        assert f"client {c.identity[:8]} connected" in messages
        assert any(m.startswith(f"client {c.identity[:8]} disconnected: ") for m in messages)
    assert any(m.startswith("replication streaming from") for m in messages), messages
    # The client's token never appears in the log (docs/threat-model.md).
    assert not [line for line in err.lines if a.token in line or b.token in line]
