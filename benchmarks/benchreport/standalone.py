"""pgcall as a newcomer runs it, with its embedded PostgreSQL, from a given source tree, for the
scripts that measure one tree against another (``cpu_per_frame.py``, ``cpu_profile.py``).

Owns: a fresh data directory, a free port, waiting for /healthz, the bench command line of
those scripts, and stopping it all. Does not own: what is measured meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs

from .cluster import free_port

READY_S = 60.0
HERE = Path(__file__).resolve().parents[2]  # this checkout: its load generator drives every tree


class StartFailed(Exception):
    pass


def tree_env(tree: Path, *also: Path) -> dict[str, str]:
    """The environment that runs ``tree``'s pgcall (``also``: more import paths after it)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (tree, *also))}


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartFailed(f"pgcall exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise StartFailed(f"pgcall not healthy within {READY_S:g} s")


@attrs.frozen
class Tree:
    """A source tree of pgcall and the interpreter that runs it (``trees.py``'s options)."""

    path: Path
    python: str


@contextlib.contextmanager
def running_pgcall(tree: Tree, *also: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """(the pgcall process, its port), healthy; SIGTERM and the data removed afterwards.
    ``also``: more import paths for the pgcall process (a ``sitecustomize`` that measures)."""
    data = Path(tempfile.mkdtemp(prefix="pgcall-ab-"))
    data.chmod(0o777)  # the embedded PostgreSQL may run as another user when we are root
    port = free_port()
    proc = subprocess.Popen([tree.python, "-m", "pgcall", "--port", str(port), "--data-dir",
                             str(data), "--log-level", "warning"], cwd=tree.path,
                            env=tree_env(tree.path, *also))
    try:
        _wait_healthy(port, proc)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def bench_command(port: int, calls: int, duration_s: float) -> list[str]:
    """The load of the CPU target: N calls, 2 processes, a 1 s ramp, figures as JSON."""
    return [sys.executable, "-m", "pgcall", "bench", "--url", f"ws://127.0.0.1:{port}",
            "--calls", str(calls), "--duration", f"{duration_s:g}", "--ramp", "1",
            "--procs", "2", "--json"]
