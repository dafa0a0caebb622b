"""Starting a peer to compare pgcall with: a pg-relay-protocol server whose source directory
the user provides (pg-relay's, as published, with its dependencies installed by ``npm ci``),
run unmodified beside pgcall on a PostgreSQL cluster of its own.

Owns: checking the directory, the peer's throw-away cluster (pgcall's embedded-server code, so
the same binaries and settings as pgcall's own cluster) with one database where the
directory's ``schema.sql`` is applied, the relay process (``node --import tsx src/server.ts``
unless told otherwise) with ``DATABASE_URL`` (TLS off: the cluster listens on a private Unix
socket) and ``PORT``, waiting until it answers HTTP and streams from its replication slot, and
stopping both. Does not own: measuring it (``step``, ``servers``); no code of the peer is
here or anywhere in this repository.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import quote

import trio

from pgcall.pg.binaries import find_bindir
from pgcall.pg.conn import PgConnection
from pgcall.pg.embedded import SUPERUSER, open_embedded

from .cluster import append_fd, free_port, http_status, log_tail, stop_process, with_dbname
from .servers import PeerOptions
from .settings import HOST, log

PEER_DBNAME = "relay"
DEFAULT_COMMAND = ("node", "--import", "tsx", "src/server.ts")
START_TIMEOUT_S = 60.0


class PeerError(Exception):
    """A one-line reason why the peer cannot be started from the directory given."""


def read_directory(directory: Path, command: Sequence[str]) -> tuple[Path, str]:
    """The directory, absolute, and its ``schema.sql``, once it looks runnable."""
    directory = directory.resolve()
    if not (directory / "schema.sql").is_file():
        raise PeerError(f"{directory} has no schema.sql: give the directory of the peer's "
                        "source (the one holding package.json and schema.sql)")
    if tuple(command) == DEFAULT_COMMAND and not (directory / "node_modules" / "tsx").is_dir():
        raise PeerError(f"{directory} has no node_modules/tsx: run `npm ci` there first")
    if shutil.which(command[0]) is None:
        raise PeerError(f"{command[0]!r} is not on PATH")
    return directory, (directory / "schema.sql").read_text()


def database_url(socket_dir: Path, dbname: str) -> str:
    """A URL node-postgres reads as a Unix-socket connection; ``sslmode=disable`` overrides
    any TLS the peer's code asks for (the socket is private, and the server has no TLS)."""
    return f"postgresql://{SUPERUSER}@{quote(str(socket_dir), safe='')}/{dbname}?sslmode=disable"


async def _create_database(admin_dsn: str, schema: str) -> str:
    admin = await PgConnection.connect(admin_dsn)
    try:
        await admin.simple(f"CREATE DATABASE {PEER_DBNAME}")
    finally:
        admin.close()
    dsn = with_dbname(admin_dsn, PEER_DBNAME)
    conn = await PgConnection.connect(dsn)
    try:
        await conn.simple(schema)
    finally:
        conn.close()
    return dsn


async def _wait_ready(proc: trio.Process, port: int, dsn: str, log_path: Path) -> None:
    """Until the relay answers HTTP on its port and a replication slot is being streamed."""
    conn = await PgConnection.connect(dsn)
    try:
        with trio.fail_after(START_TIMEOUT_S):
            while True:
                if proc.poll() is not None:
                    raise PeerError(f"the peer exited with {proc.returncode}:\n"
                                    f"{log_tail(log_path)}")
                streaming = (await conn.execute(
                    "SELECT count(*) FROM pg_replication_slots WHERE active")).rows[0][0]
                if streaming and await http_status(port, "/") is not None:
                    return
                await trio.sleep(0.2)
    finally:
        conn.close()


async def _node_version() -> str:
    done = await trio.run_process(["node", "--version"], capture_stdout=True, check=False)
    return done.stdout.decode(errors="replace").strip() or "?"


@contextlib.asynccontextmanager
async def open_peer(directory: Path, workdir: Path, name: str,
                    command: Sequence[str] = DEFAULT_COMMAND) -> AsyncIterator[PeerOptions]:
    """The peer from ``directory`` running on a free port, its cluster in ``workdir``."""
    directory, schema = read_directory(directory, command)
    async with open_embedded(workdir / "peer-data", find_bindir(None)) as server:
        dsn = await _create_database(server.dsn, schema)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url(server.socket_dir, PEER_DBNAME),
               "PORT": str(port)}
        log_path = workdir / "peer.log"
        fd = append_fd(log_path)
        try:
            proc = await trio.lowlevel.open_process(list(command), cwd=directory, env=env,
                                                    stdin=subprocess.DEVNULL, stdout=fd,
                                                    stderr=subprocess.STDOUT)
        finally:
            os.close(fd)
        try:
            await _wait_ready(proc, port, dsn, log_path)
            started = {"command": shlex.join(command), "node": await _node_version()}
            log(f"{name} running (pid {proc.pid}, port {port}), its log in {log_path}")
            yield PeerOptions(url=f"ws://{HOST}:{port}", name=name, pid=proc.pid, pg_dsn=dsn,
                              started=started)
        finally:
            with trio.CancelScope(shield=True):
                await stop_process(proc)
