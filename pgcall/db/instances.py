"""This pgcall's claim on the users it serves, and clean-up after pgcalls that crashed.

Owns: the instance id, the session-level advisory lock that proves the instance alive (held by a
dedicated connection), and removing users, calls and room memberships of instances whose lock
is free (they crashed, or lost their database) while leaving live pgcalls' rows and ``is_ai``
users alone (protocol.md 9.5): at start-up and every second while running.
Does not own: per-user presence rows (``store``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

import trio

from ..pg.conn import PgConnection, PgError, transaction
from ..pg.pool import Pool
from .publications import drop_relay_publication
from .rooms import leave_all
from .store import CALL_LOCK

log = logging.getLogger("pgcall.instances")

CLEAN_EVERY_S = 1.0  # how often a live pgcall looks for dead ones


# The users an instance ($1) owns, other than external ones such as an AI agent.
_USERS_OF = ("SELECT p.identity FROM pgcall_presence p JOIN users u USING (identity) "
             "WHERE p.instance_id = $1 AND NOT u.is_ai")


def new_instance_id() -> int:
    return secrets.randbits(62) + 1


async def claim_instance(conn: PgConnection, instance_id: int) -> None:
    """Hold our advisory lock on ``conn`` (kept open for pgcall's lifetime) and record us."""
    await conn.execute("SELECT pg_advisory_lock($1)", [instance_id])
    await conn.execute(
        "INSERT INTO pgcall_instances (instance_id, host, pid) VALUES ($1, $2, $3) "
        "ON CONFLICT (instance_id) DO NOTHING", [instance_id, socket.gethostname(),
                                                 os.getpid()])


async def clean_dead_instances(conn: PgConnection, instance_id: int) -> int:
    """Remove what crashed instances left behind; returns how many users were removed."""
    removed = 0
    others = await conn.execute(
        "SELECT instance_id FROM pgcall_instances WHERE instance_id <> $1", [instance_id])
    for (other,) in others.rows:
        if not (await conn.execute("SELECT pg_try_advisory_lock($1)", [other])).rows[0][0]:
            continue  # alive: its connection holds the lock
        try:
            async with transaction(conn):
                await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
                await conn.execute(f"DELETE FROM call_sessions WHERE caller IN ({_USERS_OF}) "
                                   f"OR callee IN ({_USERS_OF})", [other])
                await leave_all(conn, _USERS_OF, [other])
                res = await conn.execute(f"DELETE FROM users WHERE identity IN ({_USERS_OF})",
                                         [other])
                removed += res.rowcount
                await conn.execute("DELETE FROM pgcall_presence WHERE instance_id = $1",
                                   [other])
                await conn.execute("DELETE FROM pgcall_instances WHERE instance_id = $1",
                                   [other])
                await drop_relay_publication(conn, other)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", [other])
    if removed:
        log.info("removed %d users left behind by crashed pgcall instances", removed)
    return removed


async def run_cleaner(pool: Pool, instance_id: int, interval_s: float = CLEAN_EVERY_S) -> None:
    """Clean up after dead pgcalls while this one runs, every ``interval_s``: a relay killed
    with its users online is gone for everyone within a few seconds. Never returns."""
    while True:
        await trio.sleep(interval_s)
        try:
            async with pool.connection() as conn:
                await clean_dead_instances(conn, instance_id)
        except PgError as exc:
            log.debug("clean-up of dead instances skipped: %s", exc)


async def run_keeper(dsn: str, instance_id: int, first: PgConnection,
                     retry_s: float = 1.0,
                     on_reclaimed: Callable[[], Awaitable[None]] | None = None) -> None:
    """Hold the liveness lock for ever: when the keeper connection dies (PostgreSQL restarted,
    connection cut), reconnect and claim again, then ``on_reclaimed`` (the users this pgcall
    serves are registered again: another pgcall may have cleaned them up meanwhile, taking
    this one for dead). Never returns."""
    conn: PgConnection | None = first
    while True:
        if conn is None:
            try:
                conn = await PgConnection.connect(dsn)
                await claim_instance(conn, instance_id)
                log.info("instance lock re-claimed after a lost connection")
                if on_reclaimed is not None:
                    await on_reclaimed()
            except PgError as exc:
                if conn is not None:
                    conn.close()
                conn = None
                log.debug("keeper cannot reconnect yet: %s", exc)
                await trio.sleep(retry_s)
                continue
        try:
            await conn.wait_closed()
            log.debug("keeper connection lost")
        finally:
            conn.close()
        conn = None
