"""The operator's recording commands: ``pgcall recordings`` (every recording, whoever took
part) and ``pgcall export RECORDING_ID -o FILE.mp4`` (docs/recording.md "Export").

Owns: their arguments, where the database is (``--dsn``; else the embedded server of
``--data-dir``: the one a running pgcall holds, or started here for the command's length),
the listing's columns, and turning every failure into one line and exit status 1.
Does not own: the SQL (``db.recordings``), the export (``job``, ``export``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import trio

from ..config import Config, default_data_dir
from ..db.recordings import RecordingStore
from ..pg.attach import held, running_dsn
from ..pg.binaries import find_installs
from ..pg.conn import PgConnection, PgError
from ..pg.embedded import open_embedded
from ..pg.pool import open_pool
from ..wire.fields import canonical_uuid
from . import job
from .export import (
    DEFAULT_FPS,
    DEFAULT_SIZE,
    INSTALL_HINT,
    LAYOUTS,
    ExportOptions,
    ExportUnavailable,
    available,
)

EXIT_FAILURE = 1
UNDEFINED_TABLE = "42P01"


class CommandError(Exception):
    """A one-line reason why the command cannot do what it was asked."""


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, like 1280x720, not {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    try:
        ExportOptions(width=w, height=h)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return w, h


def _fps(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be 1-60, not {text!r}")
    return value


def _database_options(p: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    p.add_argument("--dsn", default=env.get("PGCALL_DSN") or None,
                   help="libpq connection string or URI of pgcall's PostgreSQL (env "
                        "PGCALL_DSN); without it, the embedded one in --data-dir")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="pgcall's data directory, as given to pgcall (default as pgcall's); "
                        "a pgcall running there is used as it is, else its database is "
                        "started for the command")


def build_recordings_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pgcall recordings", usage="pgcall recordings [--dsn DSN] [--data-dir DIR]",
        description="List every recording, newest first: its id, whether a call or a room, "
                    "when it started (UTC), how long it is, the size of its media and who "
                    "took part (their number and the start of their identities).",
        epilog="Exit status: 0 listed, 1 the database could not be read, 2 bad options.")
    _database_options(p, env)
    return p


def build_export_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pgcall export",
        usage="pgcall export RECORDING_ID -o FILE.mp4 [--layout grid|speaker] [options]",
        description="Write a recording to an MP4 file (H.264 video, AAC sound) that browsers "
                    "and players play: every picture at the time it was recorded, the sound "
                    "of everyone mixed. Needs the export extra: " + INSTALL_HINT.split(": ")[1],
        epilog="Exit status: 0 written, 1 the recording could not be exported, 2 bad options.")
    p.add_argument("recording_id", metavar="RECORDING_ID",
                   help="the recording's id, as `pgcall recordings` lists it")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.mp4",
                   help="the file to write (replaced if it exists, only once complete)")
    p.add_argument("--layout", choices=LAYOUTS, default="grid",
                   help="grid: everyone in tiles of one size (default); speaker: who is "
                        "speaking large, the others in a strip below")
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE, metavar="WxH",
                   help=f"the picture's size (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}; "
                        "640x360 exports two to three times faster)")
    p.add_argument("--fps", type=_fps, default=DEFAULT_FPS, metavar="N",
                   help=f"pictures per second of the file (default {DEFAULT_FPS}, the "
                        "cameras' rate)")
    _database_options(p, env)
    return p


@contextlib.asynccontextmanager
async def _store(args: argparse.Namespace, env: Mapping[str, str]) -> AsyncIterator[
        RecordingStore]:
    async with contextlib.AsyncExitStack() as stack:
        if args.dsn is not None:
            from ..preflight import check_dsn

            check_dsn(args.dsn)
            dsn = args.dsn
        else:
            data_dir = (args.data_dir or default_data_dir(env, Path.home(),
                                                          os.geteuid() == 0)).absolute()
            if held(data_dir):
                dsn = running_dsn(data_dir)
                await _reachable(dsn, data_dir)
            elif not (data_dir / "pg" / "PG_VERSION").is_file():
                raise CommandError(f"no pgcall database in {data_dir}: pass the --data-dir "
                                   "pgcall runs with, or --dsn")
            else:
                installs = find_installs(env.get("PATH"))
                pg = await stack.enter_async_context(
                    open_embedded(data_dir, installs, run_as=Config().pg_user))
                dsn = pg.dsn
        pool = await stack.enter_async_context(open_pool(dsn, 2))
        yield RecordingStore(pool, 0)


async def _reachable(dsn: str, data_dir: Path) -> None:
    try:
        conn = await PgConnection.connect(dsn)
    except PgError as exc:
        raise CommandError(f"a pgcall is running in {data_dir} but its database cannot be "
                           f"reached ({_first_line(exc)}): run this as the user that pgcall "
                           "runs as (or root), or pass --dsn") from None
    conn.close()


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), "?")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "ongoing"
    s = round(ms / 1000)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _people(ids: list[str]) -> str:
    shown = " ".join(i[:8] for i in ids[:3])
    return f"{len(ids)}: {shown}" + (f" +{len(ids) - 3}" if len(ids) > 3 else "")


def listing_lines(recs: list[dict[str, Any]]) -> list[str]:
    if not recs:
        return ["no recordings"]
    rows = [("RECORDING", "KIND", "STARTED (UTC)", "DURATION", "SIZE", "PARTICIPANTS")]
    for r in recs:
        started: dt.datetime = r["started_at"]
        stopped: dt.datetime | None = r["stopped_at"]
        ms = None if stopped is None else round((stopped - started).total_seconds() * 1000)
        rows.append((r["recording_id"], r["kind"],
                     started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"), _duration(ms),
                     _megabytes(r["bytes"]), _people(r["participants"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " +
            row[-1] for row in rows]


async def _list(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    async with _store(args, env) as store:
        recs = await store.listing(None)
    print("\n".join(listing_lines(recs)))


def _check_output(out: Path) -> None:
    if out.is_dir():
        raise CommandError(f"cannot write {out}: it is a directory")
    if not out.parent.is_dir():
        raise CommandError(f"cannot write {out}: no directory {out.parent}")


async def _export(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    rid = canonical_uuid(args.recording_id)
    out: Path = args.output
    options = ExportOptions(layout=args.layout, width=args.size[0], height=args.size[1],
                            fps=args.fps)
    async with _store(args, env) as store:
        rec = None if rid is None else await job.find(store, rid, None)
        if rec is None:
            raise CommandError(f"recording {args.recording_id} not found")
        part = out.with_name(f".{out.name}.part")
        try:
            stats = await job.export(store, rec, part, options)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
    part.replace(out)
    print(f"wrote {out}: {_duration(stats.duration_ms)}, {options.width}x{options.height} "
          f"{options.layout} at {options.fps} fps, {_megabytes(stats.bytes)} in "
          f"{stats.seconds:.1f} s ({stats.speed:.1f}x real time)")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``pgcall recordings`` or ``pgcall export``; the exit status."""
    from ..errors import user_facing

    command = _list if args.command == "recordings" else _export
    try:
        if args.command == "export":
            if not available():
                raise ExportUnavailable()
            _check_output(args.output)
        trio.run(command, args, env)
    except BaseException as exc:
        message = _message(exc) or user_facing(exc)
        if message is None:
            raise
        print(f"pgcall {args.command}: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _message(exc: BaseException) -> str | None:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _message(exc.exceptions[0])
    if isinstance(exc, CommandError | ExportUnavailable):
        return str(exc)
    if isinstance(exc, PgError) and exc.sqlstate == UNDEFINED_TABLE:
        return ("this database has no recordings table: it is not pgcall's, or its pgcall is "
                "older than recording (start the new pgcall on it once)")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return None
