"""CPU per relayed frame of pgcall and of its PostgreSQL, for one or more source trees of
pgcall, rounds interleaved: the before/after figure of ``docs/performance.md``.

The method: pgcall with its embedded PostgreSQL (a fresh data directory each round) on a free
port; ``pgcall bench --calls N --duration D --ramp 1 --procs 2 --json`` against it (this
checkout's load generator, whichever tree is measured); utime + stime of the pgcall process
(its own time: the relay) and of the rest of its process tree (PostgreSQL: postmaster,
backends, walsender, autovacuum) read from ``/proc`` just before and just after the bench, each
divided by the frames the bench received. Start-up and shut-down are outside the window.
Each round also gives the load generator's CPU per frame (all its processes, from
``getrusage``) and the machine's steal time over the bench (``/proc/stat``, % of one core):
on a virtual machine the host may take CPU from every process measured, and a round it
slowed shows there.

Not part of the test suite. From the repository root, alone on the machine:
``python3 benchmarks/cpu_per_frame.py [--tree NAME=DIR ...] [--python NAME=INTERPRETER ...]
[--calls 10] [--duration 12] [--rounds 3] [--json FILE]``. Without ``--tree`` it measures this
checkout. To compare with an older revision: ``git worktree add /some/dir REV`` and ``--tree
before=/some/dir --tree after=.``; to compare interpreters, the same tree twice under two
names, one of them with ``--python`` (``benchreport/trees.py``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import time
from pathlib import Path

from benchreport.proc import tree_ticks
from benchreport.sampling import CLK_TCK, machine_steal, process_table
from benchreport.standalone import HERE, StartFailed, bench_command, running_pgcall, tree_env
from benchreport.trees import Tree, add_tree_option, trees_of


def children_cpu_s() -> float:
    """User + system time of this process's waited-for children (the bench) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ticks(pid: int) -> tuple[int, int]:
    """(the process's own ticks, its descendants' ticks, living and reaped)."""
    table = process_table()
    own = table[pid][1]
    return own, (tree_ticks(table, pid) or 0) - own - table[pid][2]


def measure(tree: Tree, args: argparse.Namespace) -> dict[str, float]:
    try:
        with running_pgcall(tree) as (proc, port):
            own0, pg0 = ticks(proc.pid)
            steal0, t0, gen0 = machine_steal(), time.monotonic(), children_cpu_s()
            bench = subprocess.run(bench_command(port, args.calls, args.duration), cwd=HERE,
                                   env=tree_env(HERE), capture_output=True, text=True,
                                   check=False)
            own1, pg1 = ticks(proc.pid)
            steal1, t1, gen1 = machine_steal(), time.monotonic(), children_cpu_s()
    except StartFailed as exc:
        raise SystemExit(f"cpu_per_frame: {exc}") from None
    if bench.returncode not in (0, 1):  # 1: a target missed; the figures still stand
        raise SystemExit(f"cpu_per_frame: the bench failed: {bench.stderr.strip()[-300:]}")
    res = json.loads(bench.stdout)
    frames = res["frames_received"]
    lat = res.get("latency_ms", {})
    return {"frames": frames,
            "pgcall_us": round((own1 - own0) / CLK_TCK / frames * 1e6, 1),
            "postgres_us": round((pg1 - pg0) / CLK_TCK / frames * 1e6, 1),
            "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
            "fps_min": res.get("fps", {}).get("min"),
            # The load generator (all its processes) and what the host took from this
            # virtual machine meanwhile (% of one core): both slow every figure above.
            "bench_us": round((gen1 - gen0) / frames * 1e6, 1),
            "steal_pct": (None if steal0 is None or steal1 is None else
                          round(100 * (steal1 - steal0) / CLK_TCK / (t1 - t0), 1))}


def summary(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per figure: [median, min, max]."""
    return {k: [statistics.median(r[k] for r in rows), min(r[k] for r in rows),
                max(r[k] for r in rows)] for k in ("pgcall_us", "postgres_us")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_option(p)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--duration", type=float, default=12.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write every round's figures here")
    args = p.parse_args()
    trees = trees_of(p, args)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for i in range(args.rounds):
        for name, tree in trees.items():  # interleaved, so a drift of the machine hits all
            row = measure(tree, args)
            rounds[name].append(row)
            print(f"round {i + 1} {name}: {json.dumps(row)}", flush=True)
    print(f"\nCPU per relayed frame, {args.calls} calls, {args.rounds} rounds "
          "(median, min-max), microseconds:")
    for name, rows in rounds.items():
        s = summary(rows)
        print(f"  {name:>10}: pgcall {s['pgcall_us'][0]:.0f} ({s['pgcall_us'][1]:.0f}-"
              f"{s['pgcall_us'][2]:.0f}), postgres {s['postgres_us'][0]:.0f} "
              f"({s['postgres_us'][1]:.0f}-{s['postgres_us'][2]:.0f})")
    if args.json:
        args.json.write_text(json.dumps({"calls": args.calls, "duration_s": args.duration,
                                         "rounds": rounds}, indent=1) + "\n")


if __name__ == "__main__":
    main()
