"""Run a pg-relay-protocol peer beside pgcall, from a directory of its source, until stopped.

pg-relay (the Node.js relay of the "Video Conferencing with Postgres" demo) is what pgcall
replaces; to compare the two on one machine, get its ``pg-relay/`` directory from its
publisher (``package.json``, ``package-lock.json``, ``schema.sql`` and ``src/*.ts``; nothing of
it is in this repository), install its dependencies there with ``npm ci``, then either

* let the report start it: ``python3 benchmarks/report.py --peer-dir DIR --peer-name pg-relay``
  (pgcall and pg-relay swept in one run, steps interleaved), or
* start it with this script, which prints the report's ``--peer-*`` options and keeps the peer
  running until Ctrl-C: ``python3 benchmarks/peer.py --dir DIR``; then, in another shell,
  ``pgcall bench --url ws://127.0.0.1:PORT`` or ``python3 benchmarks/report.py`` with those
  options.

Either way the peer runs unmodified (``node --import tsx src/server.ts`` in DIR, or
``--command``) on a throw-away PostgreSQL cluster of its own, made with pgcall's embedded-server
code (same binaries, same settings as pgcall's cluster in the report), with its ``schema.sql``
applied; ``DATABASE_URL`` points it at that cluster's private Unix socket with
``sslmode=disable``, and ``PORT`` is a free port.

Owns: this command line and the temporary directory of the peer's cluster. Does not own:
starting the peer (``benchreport.peer``).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

import trio
from benchreport.peer import DEFAULT_COMMAND, PeerError, open_peer, read_directory
from benchreport.servers import PeerOptions
from benchreport.settings import log
from benchreport.workdir import scratch_dir


def report_options(peer: PeerOptions) -> str:
    """The options that make ``benchmarks/report.py`` measure this running peer."""
    args = ["--peer-url", peer.url, "--peer-name", peer.name]
    if peer.pid is not None:
        args += ["--peer-pid", str(peer.pid)]
    if peer.pg_dsn is not None:
        args += ["--peer-pg-dsn", peer.pg_dsn]
    return shlex.join(args)


async def serve(directory: Path, workdir: Path, name: str, command: list[str]) -> None:
    async with open_peer(directory, workdir, name, command) as peer:
        print(f"{name} serves {peer.url} (pid {peer.pid}); report options:\n"
              f"  {report_options(peer)}", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log(f"{signal.Signals(signum).name}: stopping {name}")
                return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR",
                        help="the peer's source directory (package.json, schema.sql, src/)")
    parser.add_argument("--command", default=shlex.join(DEFAULT_COMMAND), metavar="CMD",
                        help="how to run it in DIR (default: %(default)s)")
    parser.add_argument("--name", default="pg-relay", help="its name (default pg-relay)")
    args = parser.parse_args()
    command = shlex.split(args.command)
    try:
        read_directory(args.dir, command)
    except PeerError as exc:
        parser.error(str(exc))
    failed = False
    with scratch_dir("pgcp-") as workdir:
        try:
            trio.run(serve, args.dir, workdir, args.name, command)
        except* PeerError as group:
            for error in group.exceptions:
                log(f"peer.py: {error}")
            failed = True
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
