"""Soak test: a long ``pgcall bench`` against a pgcall of its own, watching pgcall's memory.

Starts ``python -m pgcall`` with its embedded PostgreSQL in a temporary data directory on a
free port, waits for ``/healthz``, runs ``pgcall bench --calls N --duration <minutes*60>
--json`` against it, and samples pgcall's resident memory (VmRSS in /proc/PID/status) every
10 s. Then stops pgcall with SIGTERM and prints: RSS at start, at the end and its maximum, the
bench summary, pgcall's frame counters from /metrics, and every error seen (bench errors,
pgcall's warning and error log lines, an unclean exit).

Memory that keeps growing over a long run (a leak) shows as an end RSS well above the RSS
after warm-up; the samples are printed too. This is not part of the test suite (it runs for
half an hour by default).

Usage: python scripts/soak.py [--minutes 30] [--calls 5] [--keep]
Exit code: 0 when the bench passed and no error was seen, else 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE_EVERY_S = 10.0
READY_DEADLINE_S = 120.0  # initdb and start-up of the embedded PostgreSQL
STOP_DEADLINE_S = 10.0
BENCH_GRACE_S = 120.0  # bench start-up, ramp and drain beyond --duration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"pgcall exited with {proc.returncode} while starting:\n"
                             f"{log.read_text(errors='replace')}")
        try:
            if http_get(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"pgcall not ready after {READY_DEADLINE_S:.0f} s:\n"
                             f"{log.read_text(errors='replace')}")
        time.sleep(0.2)


def frame_counters(port: int) -> dict[str, float]:
    """The frame counters of /metrics, by sample name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(port, "/metrics")
    if status != 200:
        return {}
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name.startswith(("pgcall_frames", "pgcall_replication_reconnects")):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def log_problems(log: Path) -> list[str]:
    """pgcall's log lines at warning level or above (it logs JSON lines here)."""
    problems = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except (ValueError, AttributeError):
            problems.append(line)  # not one of pgcall's lines: a crash or a stray print
            continue
        if level not in ("debug", "info"):
            problems.append(line)
    return problems


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def run(minutes: float, calls: int, keep: bool) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="pgsoak-", dir="/tmp"))  # short: socket paths
    log = data_dir.with_suffix(".log")
    try:
        return soak(data_dir, log, minutes, calls)
    finally:
        if keep:
            print(f"kept {data_dir} and {log}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
            log.unlink(missing_ok=True)


def soak(data_dir: Path, log: Path, minutes: float, calls: int) -> int:
    port = free_port()
    errors: list[str] = []
    samples: list[tuple[float, int]] = []
    print(f"soak: pgcall on port {port}, data in {data_dir}, log in {log}", flush=True)
    with log.open("wb") as log_file:
        pgcall = subprocess.Popen(
            [sys.executable, "-m", "pgcall", "--data-dir", str(data_dir), "--port", str(port),
             "--log-format", "json"],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            wait_ready(pgcall, port, log)
            duration = minutes * 60.0
            bench = subprocess.Popen(
                [sys.executable, "-m", "pgcall", "bench", "--url", f"ws://127.0.0.1:{port}",
                 "--calls", str(calls), "--duration", f"{duration:g}", "--json"],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
            start = time.monotonic()
            deadline = start + duration + BENCH_GRACE_S
            while True:
                kib = rss_kib(pgcall.pid)
                if kib is not None:
                    samples.append((time.monotonic() - start, kib))
                if pgcall.poll() is not None:
                    errors.append(f"pgcall exited with {pgcall.returncode} during the bench")
                try:
                    bench.wait(timeout=SAMPLE_EVERY_S)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        bench.kill()
                        errors.append("the bench did not finish in time; killed")
            out, err = bench.communicate()
            counters = frame_counters(port) if pgcall.poll() is None else {}
        finally:
            if pgcall.poll() is None:
                pgcall.send_signal(signal.SIGTERM)
                try:
                    pgcall.wait(timeout=STOP_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    pgcall.kill()
                    pgcall.wait()
                    errors.append(f"pgcall did not stop within {STOP_DEADLINE_S:.0f} s")
    if pgcall.returncode not in (0, None):
        errors.append(f"pgcall exit code {pgcall.returncode}")
    try:
        summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {}
        errors.append(f"no bench summary (exit {bench.returncode}): "
                      f"{(out + err).decode(errors='replace').strip()}")
    if summary.get("errors"):
        errors.append(f"bench errors: {summary['errors']} {summary.get('error_counts')}")
    errors.extend(f"pgcall log: {line}" for line in log_problems(log))

    rss = [k for _, k in samples]
    print(f"RSS start {mib(rss[0] if rss else None)}, end {mib(rss[-1] if rss else None)}, "
          f"max {mib(max(rss) if rss else None)} ({len(rss)} samples every "
          f"{SAMPLE_EVERY_S:.0f} s)")
    print("RSS samples (s: MiB): " + ", ".join(f"{t:.0f}: {k / 1024:.1f}" for t, k in samples))
    print("bench: " + json.dumps(summary))
    for name, value in counters.items():
        print(f"metrics: {name} {value:g}")
    print(f"errors: {len(errors)}")
    for e in errors:
        print(f"  {e}")
    return 0 if summary.get("passed") and not errors else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="how long the bench runs (default 30)")
    parser.add_argument("--calls", type=int, default=5, help="video calls (default 5)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directory and pgcall's log")
    args = parser.parse_args()
    if not args.minutes > 0 or args.calls < 1:
        parser.error("--minutes must be positive and --calls at least 1")
    return run(args.minutes, args.calls, args.keep)


if __name__ == "__main__":
    sys.exit(main())
