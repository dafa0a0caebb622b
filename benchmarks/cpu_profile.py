"""Where pgcall's CPU goes: a sampling profile (py-spy) of the pgcall process under the load of
the CPU target, summed by the parts of a frame's path, for one or more source trees.

For each tree: pgcall with its embedded PostgreSQL on a free port, ``pgcall bench --calls N
--duration D --ramp 1 --procs 2`` against it (this checkout's load generator), and, from 3 s
into the bench until 1 s before its end, ``py-spy record --gil --format raw`` at 200 samples/s
(only samples that hold the GIL: the relay's own work, not its waits). Prints, per tree, the
share of samples of each part (``benchreport/profshares.py`` says how a sample is charged) and
the functions with the most time of their own.

Not part of the test suite; needs py-spy (``pip install py-spy``) and the right to trace
(root, or ``kernel.yama.ptrace_scope=0``). From the repository root, alone on the machine:
``python3 benchmarks/cpu_profile.py [--tree NAME=DIR ...] [--calls 10] [--duration 14]
[--raw-dir DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchreport.profshares import parse_raw, shares, top_self
from benchreport.standalone import HERE, StartFailed, bench_command, running_pgcall, tree_env
from benchreport.trees import Tree, add_tree_option, trees_of

WARMUP_S = 3.0


def profile(tree: Tree, args: argparse.Namespace, raw: Path) -> str:
    with running_pgcall(tree) as (proc, port):
        bench = subprocess.Popen(bench_command(port, args.calls, args.duration), cwd=HERE,
                                 env=tree_env(HERE), stdout=subprocess.DEVNULL)
        time.sleep(WARMUP_S)
        spy = subprocess.run(["py-spy", "record", "-p", str(proc.pid), "-d",
                              str(int(args.duration - WARMUP_S - 1)), "-r", "200", "--gil",
                              "-f", "raw", "-o", str(raw)], capture_output=True, text=True,
                             check=False)
        bench.wait()
    if spy.returncode != 0 or not raw.is_file():
        raise SystemExit(f"cpu_profile.py: py-spy failed: {spy.stderr.strip()[-300:]}")
    return raw.read_text()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_option(p, "profile")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--duration", type=float, default=14.0)
    p.add_argument("--raw-dir", type=Path, default=None,
                   help="keep py-spy's raw output here (one file per tree)")
    args = p.parse_args()
    if shutil.which("py-spy") is None:
        p.error("py-spy is not installed: pip install py-spy")
    if args.duration < WARMUP_S + 3:
        p.error(f"--duration must be at least {WARMUP_S + 3:g} s")
    trees = trees_of(p, args)
    results = {}
    try:
        for name, tree in trees.items():
            raw = (args.raw_dir or Path(tempfile.gettempdir())) / f"pgcall-profile-{name}.raw"
            results[name] = parse_raw(profile(tree, args, raw))
            if args.raw_dir is None:
                raw.unlink(missing_ok=True)
    except StartFailed as exc:
        p.exit(1, f"cpu_profile.py: {exc}\n")
    names = list(results)
    print(f"Share of pgcall's samples, {args.calls} calls (py-spy --gil, 200/s):\n")
    print("| part | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    table = {n: shares(s) for n, s in results.items()}
    for part in table[names[0]]:
        print(f"| {part} | " + " | ".join(f"{table[n][part]:.1f} %" for n in names) + " |")
    print("| samples | " + " | ".join(str(sum(k for _, k in results[n])) for n in names) + " |")
    for n in names:
        print(f"\nFunctions with the most own time, {n}:")
        for fn, pct in top_self(results[n]):
            print(f"  {pct:5.1f} %  {fn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
