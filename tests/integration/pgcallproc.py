"""A pgcall server in a process of its own, for the tests that must see what the server alone
does: whether it is still running (and its exit code), its resident memory (``VmRSS``, its
own, not the test's), its log, and its /metrics. Also the healthy call that runs beside the
hostile clients: ``pgcall bench`` with one call, as a process too.

Owns: starting the server from this checkout (``python3 -m pgcall --dsn ... --port 0``)
against a fresh database cloned from the session's migrated template, waiting for its
"ready" line, reading its log for errors, stopping it with SIGTERM; and running the bench.
Does not own any assertion but ``stop``'s: a server must exit 0 on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import trio

from pgcall.pg.conn import open_connection
from pgcall.pg.embedded import EmbeddedPostgres

from ..conftest import TEMPLATE_DB, run_sql, with_dbname

REPO = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 30.0  # start-up creates a replication slot; a busy machine is slow
STOP_DEADLINE_S = 10.0
# What a healthy server never logs: an error, or a traceback of any level.
PROBLEM = re.compile(r"\bERROR\b|\bCRITICAL\b|Traceback")


def fresh_database(server: EmbeddedPostgres) -> Iterator[str]:
    """A migrated database of its own (as ``db_dsn``, for fixtures of any scope)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    run_sql(server.dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        yield with_dbname(server.dsn, name)
    finally:
        deadline = time.monotonic() + 10
        while run_sql(server.dsn, "SELECT count(*) FROM pg_replication_slots "
                      f"WHERE database = '{name}'")[0][0][0] and time.monotonic() < deadline:
            time.sleep(0.05)
        run_sql(server.dsn, f"DROP DATABASE {name} WITH (FORCE)")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PGCALL_")}


class PgcallProcess:
    """``python3 -m pgcall`` on a free port; its output goes to a file so it never blocks."""

    def __init__(self, dsn: str, log_path: Path, *options: str) -> None:
        self.dsn = dsn
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pgcall", "--dsn", dsn, "--port", "0", *options],
            cwd=REPO, env=clean_env(), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT)
        self.url = self._wait_ready()
        self.port = int(self.url.rsplit(":", 1)[1])
        self.ws = "ws://" + self.url.removeprefix("http://") + "/"
        self.pid = self.proc.pid

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            found = re.search(r"pgcall ready on (http://\S+)", self.log())
            if found:
                return found.group(1)
            code = self.proc.poll()
            assert code is None, f"pgcall exited with {code}:\n{self.log()}"
            assert time.monotonic() < deadline, f"pgcall not ready in time:\n{self.log()}"
            time.sleep(0.05)  # another process's readiness: polled, under a deadline

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def problems(self) -> list[str]:
        """Lines of the log that a healthy server never writes."""
        return [line for line in self.log().splitlines() if PROBLEM.search(line)]

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def rss(self) -> int:
        """Resident set size in bytes (``VmRSS`` of /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> int:
        """SIGTERM, and the exit code (pgcall exits 0 after a clean shutdown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class RssSampler:
    """The largest resident size of a process while the block runs, sampled every 20 ms."""

    def __init__(self, proc: PgcallProcess) -> None:
        self.proc = proc
        self.before = proc.rss()
        self.peak = self.before

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.proc.rss())
            await trio.sleep(0.02)

    @property
    def growth(self) -> int:
        return self.peak - self.before


async def run_bench(ws_url: str, duration_s: float) -> dict[str, Any]:
    """One healthy call (15 fps video both ways, and audio) for ``duration_s``, by the bench
    in a process of its own; its JSON result (protocol errors it saw, fps, loss, order)."""
    cmd = [sys.executable, "-m", "pgcall.bench.cli", "--url", ws_url.rstrip("/"), "--calls",
           "1", "--duration", str(duration_s), "--json"]
    done = await trio.run_process(cmd, cwd=REPO, env=clean_env(), check=False,
                                  capture_stdout=True, stderr=subprocess.STDOUT)
    output = done.stdout.decode()
    assert done.returncode in (0, 1), output  # 1 is a FAIL verdict, still a report
    return json.loads(output.splitlines()[-1])  # type: ignore[no-any-return]


class HealthyCall:
    """The bench's call, once it is Active: who is in it, and (at the end) the bench's report."""

    def __init__(self) -> None:
        self.session_id = self.caller = self.callee = ""
        self.result: dict[str, Any] = {}
        self.done = trio.Event()

    def check(self) -> None:
        """Served throughout: every frame in order, no error seen by either client (a
        foreign frame, a refused request, a closed socket), at least the issue's 14.5 fps."""
        r = self.result
        assert r["errors"] == 0, r["error_counts"]
        assert r["video_streams"] == 2, r
        assert r["reordered"] == 0 and r["duplicates"] == 0, r
        assert r["fps"]["min"] >= MIN_FPS, r


MIN_FPS = 14.5


@contextlib.asynccontextmanager
async def healthy_call(proc: PgcallProcess, duration_s: float) -> AsyncIterator[HealthyCall]:
    """A bench call streaming for ``duration_s``; the block starts once it is Active and
    should run until ``done`` (the bench has ended its call and reported)."""
    call = HealthyCall()
    async with trio.open_nursery() as nursery:

        async def bench() -> None:
            try:
                call.result = await run_bench(proc.ws, duration_s)
            finally:
                call.done.set()

        nursery.start_soon(bench)
        async with open_connection(proc.dsn) as conn:
            with trio.fail_after(READY_DEADLINE_S):
                while True:
                    rows = (await conn.execute(
                        "SELECT session_id::text, caller, callee FROM call_sessions "
                        "WHERE state = 'Active'")).rows
                    if rows or call.done.is_set():
                        break
                    await trio.sleep(0.05)  # another process's progress: polled
        assert rows, f"the bench's call never became Active: {call.result}"
        call.session_id, call.caller, call.callee = rows[0]
        yield call
        await call.done.wait()
