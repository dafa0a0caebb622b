"""Start-up checks of an external PostgreSQL given with --dsn.

Owns: deciding whether a server can carry pgcall, and saying in one actionable line why not.
Does not own: connecting (``conn``) or what happens after the checks pass.
"""

from __future__ import annotations

from .conn import ConnectionLost, PgConnection, PgError

MIN_SERVER_VERSION = 140000  # binary pgoutput and messages need PostgreSQL 14


class StartupCheckFailed(Exception):
    """One line naming the setting at fault and how to fix it."""


async def check_server(dsn: str) -> None:
    try:
        conn = await PgConnection.connect(dsn)
    except PgError as exc:
        raise StartupCheckFailed(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        await _check_settings(conn)
    finally:
        conn.close()
    await _check_replication_connection(dsn)


async def _check_settings(conn: PgConnection) -> None:
    version = conn.server_version
    if version < MIN_SERVER_VERSION:
        raise StartupCheckFailed(
            f"PostgreSQL {version // 10000} is too old: pgcall needs PostgreSQL 14 or newer"
        )
    wal_level = (await conn.execute("SELECT current_setting('wal_level')")).rows[0][0]
    if wal_level != "logical":
        raise StartupCheckFailed(
            f"wal_level is '{wal_level}' but must be 'logical': run "
            "ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL"
        )
    role, may_replicate = (await conn.execute(
        "SELECT rolname, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
    )).rows[0]
    if not may_replicate:
        raise StartupCheckFailed(
            f"role '{role}' may not replicate: run ALTER ROLE \"{role}\" REPLICATION; "
            "as a superuser, or connect as a role that has it"
        )
    free_slots, free_senders = (await conn.execute(
        "SELECT current_setting('max_replication_slots')::int"
        "       - (SELECT count(*) FROM pg_replication_slots),"
        "       current_setting('max_wal_senders')::int"
        "       - (SELECT count(*) FROM pg_stat_replication)"
    )).rows[0]
    if free_slots < 1:
        raise StartupCheckFailed(
            "no free replication slot: raise max_replication_slots (and restart PostgreSQL) "
            "or drop unused slots listed in pg_replication_slots"
        )
    if free_senders < 1:
        raise StartupCheckFailed(
            "no free walsender: raise max_wal_senders (and restart PostgreSQL) "
            "or stop other replication clients listed in pg_stat_replication"
        )


async def _check_replication_connection(dsn: str) -> None:
    """pg_hba.conf may still refuse replication connections although the role may replicate."""
    try:
        conn = await PgConnection.connect(dsn, replication="database")
    except ConnectionLost as exc:
        raise StartupCheckFailed(
            f"replication connection refused ({exc}): allow it in pg_hba.conf for this role "
            "and database"
        ) from None
    try:
        await conn.simple("IDENTIFY_SYSTEM")
    except PgError as exc:
        raise StartupCheckFailed(f"replication connection does not work: {exc}") from None
    finally:
        conn.close()


STANDBY_DECODING_FROM = 160000  # logical decoding on a standby: PostgreSQL 16


async def check_standby(dsn: str) -> None:
    """``--replication-dsn``: a server pgcall can decode on; a standby needs PostgreSQL 16."""
    try:
        conn = await PgConnection.connect(dsn)
    except PgError as exc:
        raise StartupCheckFailed(f"cannot connect to the replication server: {exc}") from None
    try:
        in_recovery, wal_level = (await conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('wal_level')")).rows[0]
        if in_recovery and conn.server_version < STANDBY_DECODING_FROM:
            raise StartupCheckFailed(
                f"the replication server is a standby running PostgreSQL "
                f"{conn.server_version // 10000}: decoding on a standby needs PostgreSQL 16 "
                "or newer")
        if wal_level != "logical":
            raise StartupCheckFailed(
                f"wal_level is '{wal_level}' on the replication server but must be "
                "'logical' (on the standby as on the primary)")
    finally:
        conn.close()
    await _check_replication_connection(dsn)
