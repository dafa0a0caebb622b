"""Reaching the embedded PostgreSQL of a pgcall that is running, from another process (the
operator's commands, ``pgcall recordings`` and ``pgcall export``).

Owns: telling whether a pgcall holds a data directory (its lock, see ``embedded``) and the
connection string of the server it runs there, read from PostgreSQL's own ``postmaster.pid``
(its port and Unix socket directory). Only a user who may enter that socket directory (the
server's user, or root) can connect.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .embedded import SUPERUSER, EmbeddedError

LOCK_FILE = "pgcall.lock"
CLUSTER = "pg"


def held(data_dir: Path) -> bool:
    """Whether a running pgcall holds ``data_dir`` (whose lock it keeps while it runs)."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock, if it was taken
    return False


def running_dsn(data_dir: Path) -> str:
    """The connection string of the server a running pgcall holds ``data_dir`` with."""
    pidfile = data_dir / CLUSTER / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        port, socket_dir = int(lines[3]), lines[4].strip()
    except (OSError, IndexError, ValueError):
        raise EmbeddedError(f"data directory {data_dir} is in use by a pgcall whose database "
                            "is not running yet (or any more); try again, or pass --dsn") from None
    if not socket_dir:
        raise EmbeddedError(f"the database of the pgcall running in {data_dir} has no Unix "
                            "socket; pass --dsn")
    return f"host={socket_dir} port={port} dbname=postgres user={SUPERUSER}"
