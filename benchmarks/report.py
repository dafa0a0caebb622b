"""The reproducible latency and capacity report of pgcall: ``docs/benchmarks.{md,png,json}``.

One run starts a throw-away PostgreSQL (pgcall's own embedded code, in a temporary directory)
and pgcall as a subprocess on it, then measures

1. the floor: a bare replication consumer (no pgcall, no WebSocket) reads back 30 KB frames that
   a separate writer process inserts, one transaction per frame sent in one round trip on a
   pool of connections, at the rate of 1 call and of 10 calls; the latency is transaction
   sent -> change decoded;
2. the sweep: ``pgcall bench`` with 1, 2, 5, 10, 15, 20, 25, 30, 40, ... calls until a step
   breaks (video p99 > 100 ms or a stream below 14.5 fps) and one step more, sampling the CPU
   of pgcall, of the whole PostgreSQL cluster and of the load generator from ``/proc``,
   pgcall's RSS, and the WAL written (``pg_current_wal_lsn()``);
3. the media paths: 1, 10 and 20 calls again with pgcall restarted with ``--media-path
   message``;

and writes every raw figure to ``benchmarks.json``, a chart to ``benchmarks.png`` and the
report, generated from those figures only, to ``benchmarks.md``.

Run from the repository root on an otherwise idle machine: ``python3 benchmarks/report.py``
(about ten minutes). ``--quick`` runs 1 and 2 calls for 5 s to check the script;
``--render-only`` rewrites the .md and .png from an existing ``benchmarks.json``.

**Compared with a peer in the same run.** ``--peer-url ws://HOST:PORT`` sweeps any running
pg-relay-protocol server too, with the same load generator, its steps interleaved with
pgcall's, and reports both side by side; ``--peer-pid PID`` (its relay process; its
descendants count too) and ``--peer-pg-dsn DSN`` (its database, on this machine) add its CPU
per relayed frame and its database cluster's. ``--peer-dir DIR`` starts the peer itself from a
directory of its source instead (see ``benchmarks/peer.py``, which can also run one alone);
``--peer-name`` is how the report names it.

Owns: the command line, including the hidden ``--floor-writer JSON`` mode the floor's writer
process runs in, and the run's temporary working directory. Does not own: the measurement and
the write-up (the ``benchreport`` package next to this file), the load generator
(``pgcall.bench``) or anything pgcall does.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import trio
from benchreport.floor import floor_writer
from benchreport.peer import DEFAULT_COMMAND, PeerError, open_peer, read_directory
from benchreport.render import render
from benchreport.run import Report, run_report
from benchreport.servers import PeerOptions
from benchreport.settings import FULL, QUICK, REPO, Plan, log
from benchreport.workdir import scratch_dir


def add_peer_options(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--peer-url", metavar="ws://HOST:PORT",
                   help="also sweep this running pg-relay-protocol server, interleaved")
    p.add_argument("--peer-pid", type=int, metavar="PID",
                   help="the peer's relay process (with its descendants): its CPU per frame")
    p.add_argument("--peer-pg-dsn", metavar="DSN",
                   help="libpq connection string of the peer's database on this machine: "
                        "its cluster's CPU per frame, its WAL, and waiting for its reaper")
    p.add_argument("--peer-dir", type=Path, metavar="DIR",
                   help="start the peer from this directory of its source instead (its own "
                        "PostgreSQL, its schema.sql; `npm ci` done there)")
    p.add_argument("--peer-command", default=shlex.join(DEFAULT_COMMAND), metavar="CMD",
                   help="with --peer-dir: how to run it there (default: %(default)s)")
    p.add_argument("--peer-name", default="peer", help="the peer's name in the report")


def peer_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> \
        PeerOptions | None:
    if args.peer_dir is not None:
        if args.peer_url or args.peer_pid or args.peer_pg_dsn:
            parser.error("--peer-dir starts the peer: give no --peer-url/--peer-pid/--peer-pg-dsn")
        try:
            read_directory(args.peer_dir, shlex.split(args.peer_command))
        except PeerError as exc:
            parser.error(str(exc))
        return None
    if args.peer_url is None:
        if args.peer_pid or args.peer_pg_dsn:
            parser.error("--peer-pid and --peer-pg-dsn need --peer-url")
        return None
    return PeerOptions(args.peer_url, args.peer_name, args.peer_pid, args.peer_pg_dsn)


async def measure(plan: Plan, report: Report, workdir: Path, args: argparse.Namespace,
                  peer: PeerOptions | None) -> None:
    if args.peer_dir is None:
        await run_report(plan, report, workdir, peer)
        return
    async with open_peer(args.peer_dir, workdir, args.peer_name,
                         shlex.split(args.peer_command)) as started:
        await run_report(plan, report, workdir, started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 and 2 calls for 5 s: checks the script, not the figures")
    parser.add_argument("--out", type=Path, default=REPO / "docs",
                        help="where benchmarks.{json,md,png} go (default docs/)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the .md and .png from the existing benchmarks.json")
    parser.add_argument("--floor-writer", help=argparse.SUPPRESS)
    add_peer_options(parser)
    args = parser.parse_args()
    peer = peer_options(parser, args)
    if args.floor_writer:
        a = json.loads(args.floor_writer)
        counts = trio.run(floor_writer, a["dsn"], a["calls"], a["duration_s"])
        print(json.dumps(counts), flush=True)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render_only:
        render(json.loads((args.out / "benchmarks.json").read_text()), args.out)
        return 0
    plan = QUICK if args.quick else FULL
    report = Report(plan, args.out / "benchmarks.json")
    failed = False
    with scratch_dir("pgcr-") as workdir:
        log(f"pgcall report ({'quick' if plan.quick else 'full'}), working in {workdir}")
        try:
            trio.run(measure, plan, report, workdir, args, peer)
        except* PeerError as group:
            for error in group.exceptions:
                log(f"report.py: {error}")
            failed = True
    if failed:
        return 2
    render(report.doc, args.out)
    log(f"wrote {args.out}/benchmarks.json, benchmarks.md and benchmarks.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
