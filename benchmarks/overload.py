"""pgcall past its capacity: what latency and frame rate the callers get, and what pgcall shed,
for one or more source trees (``docs/performance.md``, "Overload").

The method: for each number of calls, pgcall with its embedded PostgreSQL (a fresh data
directory each time) and ``pgcall bench --calls N --duration D --ramp 2 --procs 2 --json``
against it (this checkout's load generator for every tree); then pgcall's /metrics for the
frames it dropped, by reason. Video and audio latency are the bench's (sender's clock to
receiver's clock, one process); "video fps" is the median over streams.

Not part of the test suite. From the repository root, alone on the machine:
``python3 benchmarks/overload.py [--tree NAME=DIR ...] [--calls 20 30 45] [--duration 12]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import urllib.request
from typing import Any

from benchreport.scale import promtext
from benchreport.standalone import HERE, StartFailed, bench_command, running_pgcall, tree_env
from benchreport.trees import Tree, add_tree_option, trees_of

RAMP_S = 2


def dropped(metrics: str) -> dict[str, int]:
    """pgcall_frames_dropped_total by reason, the reasons that dropped anything."""
    prefix = 'pgcall_frames_dropped_total{reason="'
    return {key[len(prefix):].split('"', 1)[0]: int(n)
            for key, n in promtext.parse(metrics).items() if key.startswith(prefix) and n > 0}


def measure(tree: Tree, calls: int, duration_s: float) -> dict[str, Any]:
    try:
        with running_pgcall(tree) as (_proc, port):
            command = bench_command(port, calls, duration_s)
            command[command.index("--ramp") + 1] = str(RAMP_S)
            bench = subprocess.run(command, cwd=HERE, env=tree_env(HERE), capture_output=True,
                                   text=True, check=False)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics = r.read().decode()
    except StartFailed as exc:
        raise SystemExit(f"overload: {exc}") from None
    if bench.returncode not in (0, 1):
        raise SystemExit(f"overload: the bench failed: {bench.stderr.strip()[-300:]}")
    res = json.loads(bench.stdout)
    video, audio = res.get("latency_ms", {}), res.get("audio_latency_ms", {})
    return {"calls": calls, "video_p50_ms": video.get("p50"), "video_p99_ms": video.get("p99"),
            "audio_p50_ms": audio.get("p50"), "audio_p99_ms": audio.get("p99"),
            "video_fps": res.get("fps", {}).get("median"),
            "received": res["frames_received"], "sent": res["frames_sent"],
            "late_sends": res.get("late_sends"), "dropped": dropped(metrics)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_option(p)
    p.add_argument("--calls", type=int, nargs="+", default=[20, 25, 30, 35, 45])
    p.add_argument("--duration", type=float, default=12.0)
    args = p.parse_args()
    trees = trees_of(p, args)
    print("| tree | calls | video p50 / p99 ms | audio p50 / p99 ms | video fps | dropped |")
    print("|---|---:|---|---|---:|---|")
    for calls in args.calls:
        for name, tree in trees.items():  # interleaved, so a drift of the machine hits all
            r = measure(tree, calls, args.duration)
            shed = ", ".join(f"{k} {v}" for k, v in sorted(r["dropped"].items())) or "-"
            print(f"| {name} | {calls} | {r['video_p50_ms']:.0f} / {r['video_p99_ms']:.0f} | "
                  f"{r['audio_p50_ms']:.0f} / {r['audio_p99_ms']:.0f} | {r['video_fps']:.1f} "
                  f"| {shed} |", flush=True)


if __name__ == "__main__":
    main()
