"""The servers a sweep measures, pgcall and an optional peer, as the report sees them: where
their clients connect, which process tree relays, and which database cluster they use.

Owns: ``Server`` (a role, a label, the WebSocket URL, the relay's pid, a monitoring connection
to its database and that cluster's postmaster pid), finding a cluster's postmaster from a
connection (``SHOW data_directory`` and its ``postmaster.pid``, else the parent of the
connection's own backend), the PostgreSQL settings the report records, and ``PeerOptions``,
what the command line says about the peer. Does not own: starting a peer (``peer``) or pgcall
(``cluster``), or measuring a step (``step``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import attrs

from pgcall.pg.conn import PgConnection, PgError

from .proc import is_postgres, postmaster_pid
from .sampling import read_comm, read_stat

SETTINGS = ("server_version", "synchronous_commit", "fsync", "wal_level", "shared_buffers",
            "max_wal_size", "wal_compression")


@attrs.frozen
class PeerOptions:
    """A pg-relay-protocol server already running: its URL, and if known its relay's pid and
    a libpq connection string of its database (for CPU and WAL figures)."""

    url: str
    name: str = "peer"
    pid: int | None = None
    pg_dsn: str | None = None
    started: dict[str, str] | None = None  # how the report started it, when it did


@attrs.frozen
class Server:
    role: str  # "pgcall" or "peer": the key of its steps and of its CPU figures
    label: str  # how the report names it
    url: str
    pid: int | None
    monitor: PgConnection | None
    postmaster: int | None


def _read_pidfile(data_directory: str) -> str | None:
    try:
        return (Path(data_directory) / "postmaster.pid").read_text()
    except OSError:
        return None


async def find_postmaster(conn: PgConnection) -> int | None:
    """The pid of the postmaster of the cluster ``conn`` is connected to, when that cluster
    runs on this machine; None otherwise (a remote server's pids mean nothing here)."""
    candidates: list[int] = []
    with contextlib.suppress(PgError):  # SHOW data_directory needs pg_read_all_settings
        data_directory = (await conn.execute("SHOW data_directory")).rows[0][0]
        text = _read_pidfile(data_directory)
        if text is not None:
            with contextlib.suppress(ValueError):
                candidates.append(postmaster_pid(text))
    backend = int((await conn.execute("SELECT pg_backend_pid()")).rows[0][0])
    st = read_stat(backend)
    if st is not None and is_postgres(read_comm(backend) or ""):
        candidates.append(st[0])  # every backend is a child of the postmaster
    for pid in candidates:
        if is_postgres(read_comm(pid) or ""):
            return pid
    return None


async def pg_settings(conn: PgConnection) -> dict[str, str]:
    return {name: (await conn.execute(f"SHOW {name}")).rows[0][0] for name in SETTINGS}


@contextlib.asynccontextmanager
async def open_peer_server(peer: PeerOptions) -> AsyncIterator[tuple[Server, dict[str, str]]]:
    """The peer as a ``Server`` with its monitoring connection (if it has a DSN), and the
    settings of its PostgreSQL (empty without a DSN)."""
    if peer.pg_dsn is None:
        yield Server("peer", peer.name, peer.url, peer.pid, None, None), {}
        return
    conn = await PgConnection.connect(peer.pg_dsn)
    try:
        postmaster = await find_postmaster(conn)
        settings = await pg_settings(conn)
        yield Server("peer", peer.name, peer.url, peer.pid, conn, postmaster), settings
    finally:
        conn.close()
