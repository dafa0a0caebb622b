"""Task switches per relayed frame: how often pgcall's tasks run, and how often trio's loop asks
the kernel for events, per frame the bench received, for one or more source trees
(``docs/performance.md``, "Task switches").

For each tree: pgcall with its embedded PostgreSQL, a trio ``Instrument`` put in by a
``sitecustomize`` module on its import path (nothing in pgcall changes), counting each step of
each task, by the task's function name, and each wait for I/O (one ``epoll_wait`` each); the
counts are read over the run of ``pgcall bench --calls N --duration D --ramp 1 --procs 2``.

Not part of the test suite. From the repository root, alone on the machine:
``python3 benchmarks/task_steps.py [--tree NAME=DIR ...] [--calls 10] [--duration 12]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchreport.standalone import HERE, StartFailed, bench_command, running_pgcall, tree_env
from benchreport.trees import Tree, add_tree_option, trees_of

# Installed in the pgcall process: counts, and writes them to PGCALL_STEPS_OUT on SIGUSR1.
SITECUSTOMIZE = '''
import collections, json, os, signal
import trio, trio.abc

class _Count(trio.abc.Instrument):
    def __init__(self):
        self.steps = collections.Counter()
        self.io_waits = 0
    def before_task_step(self, task):
        self.steps[task.name.rsplit(".", 1)[-1]] += 1
    def before_io_wait(self, timeout):
        self.io_waits += 1

_count = _Count()

def _write(*_):
    with open(os.environ["PGCALL_STEPS_OUT"], "w") as f:
        json.dump({"io_waits": _count.io_waits, "steps": dict(_count.steps)}, f)

signal.signal(signal.SIGUSR1, _write)
_run = trio.run

def _counted_run(*args, **kwargs):
    kwargs["instruments"] = [*kwargs.get("instruments", ()), _count]
    return _run(*args, **kwargs)

trio.run = _counted_run
'''


def counts(pid: int, out: Path) -> dict[str, object]:
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            found: dict[str, object] = json.loads(out.read_text())
            return found
        except (OSError, ValueError):
            time.sleep(0.05)
    raise SystemExit("task_steps: pgcall did not write its counts")


def measure(tree: Tree, calls: int, duration_s: float, hook: Path) -> dict[str, object]:
    out = hook / "counts.json"
    os.environ["PGCALL_STEPS_OUT"] = str(out)
    try:
        with running_pgcall(tree, hook) as (proc, port):
            before = counts(proc.pid, out)
            bench = subprocess.run(bench_command(port, calls, duration_s), cwd=HERE,
                                   env=tree_env(HERE), capture_output=True, text=True,
                                   check=False)
            after = counts(proc.pid, out)
    except StartFailed as exc:
        raise SystemExit(f"task_steps: {exc}") from None
    if bench.returncode not in (0, 1):
        raise SystemExit(f"task_steps: the bench failed: {bench.stderr.strip()[-300:]}")
    frames = json.loads(bench.stdout)["frames_received"]
    b_steps, a_steps = before["steps"], after["steps"]
    assert isinstance(b_steps, dict) and isinstance(a_steps, dict)
    per_task = {name: (n - b_steps.get(name, 0)) / frames for name, n in a_steps.items()}
    io_waits = (int(after["io_waits"]) - int(before["io_waits"])) / frames  # type: ignore[call-overload]
    return {"frames": frames, "steps": sum(per_task.values()), "io_waits": io_waits,
            "by_task": {k: round(v, 2) for k, v in sorted(per_task.items(),
                                                          key=lambda kv: -kv[1]) if v >= 0.01}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_option(p)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--duration", type=float, default=12.0)
    args = p.parse_args()
    trees = trees_of(p, args)
    with tempfile.TemporaryDirectory(prefix="pgcall-steps-") as hook:
        (Path(hook) / "sitecustomize.py").write_text(SITECUSTOMIZE)
        for name, tree in trees.items():
            r = measure(tree, args.calls, args.duration, Path(hook))
            print(f"{name}: {r['steps']:.2f} task steps and {r['io_waits']:.2f} waits for I/O "
                  f"per relayed frame ({r['frames']} frames); by task: {r['by_task']}",
                  flush=True)


if __name__ == "__main__":
    main()
