"""The systems under measurement: a throw-away PostgreSQL with its two databases, and pgcall
serving on it as a subprocess, plus the handling of child processes the report starts.

Owns: starting the embedded PostgreSQL (pgcall's own code) and creating and migrating the
databases of pgcall and of the floor, starting pgcall on a free port until ``/healthz``
answers, stopping a child process, reading its pipes, and the environment that makes children
import pgcall from this checkout. Does not own: what runs against them (``floor``, ``step``) or
the sampling of their resources (``sampling``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import attrs
import trio

from pgcall.pg.binaries import find_bindir
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import EmbeddedPostgres, open_embedded
from pgcall.pg.migrate import migrate

from .settings import FLOOR_DBNAME, HOST, PG_DBNAME, REPO


def child_env() -> dict[str, str]:
    """Subprocesses import pgcall from this checkout."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def read_all(stream: trio.abc.ReceiveStream | None, into: bytearray) -> None:
    if stream is not None:
        async for chunk in stream:
            into += chunk


async def stop_process(proc: trio.Process, timeout_s: float = 10.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(timeout_s):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def http_status(port: int, path: str) -> int | None:
    try:
        stream = await trio.open_tcp_stream(HOST, port)
    except OSError:
        return None
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        head = await stream.receive_some(4096)
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def append_fd(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.asynccontextmanager
async def open_pgcall(dsn: str, media_path: str, log_path: Path,
                      extra: Sequence[str] = ()) -> AsyncIterator[tuple[trio.Process, int]]:
    """pgcall on a free port, once /healthz answers 200; SIGTERM on the way out. ``extra``:
    more options of ``pgcall serve`` (``--workers N``, ``--retain S``)."""
    port = free_port()
    cmd = [sys.executable, "-m", "pgcall", "serve", "--dsn", dsn, "--host", HOST,
           "--port", str(port), "--log-level", "warning", "--media-path", media_path, *extra]
    fd = append_fd(log_path)
    try:
        proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.DEVNULL, stdout=fd,
                                                stderr=subprocess.STDOUT, env=child_env())
    finally:
        os.close(fd)
    try:
        with trio.fail_after(60):
            while await http_status(port, "/healthz") != 200:
                if proc.poll() is not None:
                    raise RuntimeError(f"pgcall exited with {proc.returncode}:\n"
                                       f"{log_tail(log_path)}")
                await trio.sleep(0.1)
        yield proc, port
    finally:
        with trio.CancelScope(shield=True):
            await stop_process(proc)


@attrs.frozen
class Cluster:
    server: EmbeddedPostgres
    dsn: str  # the database pgcall uses
    floor_dsn: str  # the database the floor uses
    settings: dict[str, str]


def with_dbname(dsn: str, dbname: str) -> str:
    return " ".join(p for p in dsn.split() if not p.startswith("dbname=")) + f" dbname={dbname}"


async def prepare_cluster(server: EmbeddedPostgres) -> Cluster:
    admin = await PgConnection.connect(server.dsn)
    try:
        for name in (PG_DBNAME, FLOOR_DBNAME):
            await admin.simple(f"CREATE DATABASE {name}")
        settings = {}
        for name in ("server_version", "synchronous_commit", "fsync", "wal_level",
                     "shared_buffers", "max_wal_size", "wal_compression"):
            settings[name] = (await admin.execute(f"SHOW {name}")).rows[0][0]
    finally:
        admin.close()
    dsn, floor_dsn = with_dbname(server.dsn, PG_DBNAME), with_dbname(server.dsn, FLOOR_DBNAME)
    for target in (dsn, floor_dsn):
        conn = await PgConnection.connect(target)
        try:
            await migrate(conn)
        finally:
            conn.close()
    return Cluster(server, dsn, floor_dsn, settings)


@contextlib.asynccontextmanager
async def open_cluster(workdir: Path) -> AsyncIterator[Cluster]:
    """The embedded PostgreSQL in ``workdir/data``, its databases created and migrated."""
    async with open_embedded(workdir / "data", find_bindir(None)) as server:
        yield await prepare_cluster(server)
