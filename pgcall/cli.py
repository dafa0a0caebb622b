"""The command line: ``pgcall [serve] [options]`` and ``pgcall bench``.

Owns: parsing arguments and the environment (the only place that reads it) into a frozen
``Config``, signals, and turning start-up failures into one line and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import trio

from . import __version__
from .config import (
    DEFAULT_HOST,
    DEFAULT_MAX_ROOM_SIZE,
    DEFAULT_PORT,
    DEFAULT_RETAIN_S,
    FRONTENDS,
    LOG_FORMATS,
    LOG_LEVELS,
    MEDIA_PATHS,
    Config,
    default_data_dir,
)
from .log import setup_logging

log = logging.getLogger("pgcall")

EXIT_FAILURE = 1  # start-up failed (bad database, busy port, ...)
EXIT_USAGE = 2  # argparse's own code for bad arguments
SHUTDOWN_DEADLINE_S = 3.0  # clients closed, stream and database stopped well within 5 s


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, not {text!r}")
    return value


def _room_size(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 2-100, not {text!r}")
    return value


def _frontend(text: str) -> str:
    if text in FRONTENDS:
        return text
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(FRONTENDS)} or a directory, not {text!r}")
    return str(path.resolve())


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgcall",
        description="Video calls, chat and presence carried by PostgreSQL logical replication.",
        epilog="Without --dsn, pgcall runs its own embedded PostgreSQL in --data-dir.",
    )
    parser.add_argument("--version", action="version", version=f"pgcall {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{serve,bench}")
    serve = sub.add_parser(
        "serve", prog="pgcall [serve]", help="run the server (the default)",
        description="Run pgcall: the call server and its frontend on one port. "
                    "`pgcall bench --help` shows the load generator.",
        epilog="Without --dsn, pgcall runs its own embedded PostgreSQL in --data-dir.")
    add_serve_options(serve, env)
    from .bench.cli import add_bench_options

    bench = sub.add_parser("bench", help="load-test a pgcall or pg-relay server")
    add_bench_options(bench)
    return parser


def add_serve_options(p: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    p.add_argument("--dsn", default=env.get("PGCALL_DSN") or None,
                   help="libpq connection string or URI of an existing PostgreSQL >= 14 with "
                        "wal_level=logical (env PGCALL_DSN); without it, pgcall runs its own")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"listen address (default {DEFAULT_HOST})")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help=f"listen port (default {DEFAULT_PORT}, as pg-relay)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="embedded PostgreSQL's directory (default $XDG_DATA_HOME/pgcall, "
                        "else ~/.local/share/pgcall; /var/lib/pgcall as root)")
    p.add_argument("--frontend", type=_frontend, default="vanilla",
                   help="vanilla (default), svelte, or a directory of static files")
    p.add_argument("--retain", type=_positive_float, default=DEFAULT_RETAIN_S, metavar="SECONDS",
                   help=f"keep media frames this long (default {DEFAULT_RETAIN_S:g})")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="text")
    p.add_argument("--certfile", type=Path, help="TLS certificate (PEM): serve https and wss")
    p.add_argument("--keyfile", type=Path, help="TLS private key (PEM)")
    p.add_argument("--media-path", choices=MEDIA_PATHS, default="table",
                   help="table: INSERT frames into audio_frames/video_frames (default, "
                        "pg-relay compatible); message: pg_logical_emit_message, nothing stored")
    p.add_argument("--max-room-size", type=_room_size, default=DEFAULT_MAX_ROOM_SIZE,
                   metavar="N", help="most people in one room (default "
                                     f"{DEFAULT_MAX_ROOM_SIZE}, 2-100)")
    p.add_argument("--allowed-origins", default="", metavar="ORIGINS",
                   help="comma-separated extra web origins that may open WebSockets ('*': any); "
                        "the page's own origin and localhost are always allowed")
    p.add_argument("--join-secret", default=env.get("PGCALL_JOIN_SECRET") or None,
                   help="a secret clients must present (?secret=...) to connect "
                        "(env PGCALL_JOIN_SECRET)")


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    argv = list(argv)
    if not argv or argv[0] not in ("serve", "bench", "--version"):
        # `pgcall [serve]`: serving is the default command, and `pgcall --help` shows its options.
        argv.insert(0, "serve")
    parser = build_parser(env)
    args = parser.parse_args(argv)
    if args.command == "serve" and (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    return args


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    is_root = os.geteuid() == 0
    data_dir = args.data_dir or default_data_dir(env, Path.home(), is_root)
    return Config(dsn=args.dsn, host=args.host, port=args.port, data_dir=data_dir,
                  frontend=args.frontend, retain_s=args.retain, log_level=args.log_level,
                  log_format=args.log_format, certfile=args.certfile, keyfile=args.keyfile,
                  allowed_origins=tuple(o.strip() for o in args.allowed_origins.split(",")
                                        if o.strip()),
                  join_secret=args.join_secret, media_path=args.media_path,
                  max_room_size=args.max_room_size,
                  path_env=env.get("PATH"))


async def _run_until_signal(config: Config) -> None:
    from .app import serve

    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def serve_then_stop() -> None:
                await serve(config, shutdown)
                nursery.cancel_scope.cancel()

            nursery.start_soon(serve_then_stop)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                shutdown.set()
                # A second signal, or the deadline, ends it at once.
                nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_DEADLINE_S
                async for _ in signals:
                    nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    args = parse_args(sys.argv[1:] if argv is None else argv, env)
    if args.command == "bench":
        from .bench.cli import run_bench

        return run_bench(args)
    config = config_from_args(args, env)
    setup_logging(config.log_level, config.log_format)
    from .errors import user_facing

    try:
        trio.run(_run_until_signal, config)
    except BaseException as exc:
        message = user_facing(exc)
        if message is None:
            raise
        print(f"pgcall: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0
