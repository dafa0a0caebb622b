"""Numbered, forward-only schema migrations (``sql/NNNN_name.sql``, shipped in the package).

Owns: finding the migration files, applying the missing ones in one transaction under an
advisory lock (two pgcalls starting together do not race), recording them in
``pgcall_schema_version``. Does not own: the SQL itself.
"""

from __future__ import annotations

import logging
import re
from importlib import resources

import attrs

from .conn import PgConnection, transaction

log = logging.getLogger("pgcall.migrate")

# pg_advisory_xact_lock key: "pgcall" in ASCII, so it will not collide with other users' keys.
MIGRATION_LOCK = 0x706763616C6C


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    out = []
    for entry in resources.files("pgcall").joinpath("sql").iterdir():
        m = re.fullmatch(r"(\d{4})_([\w-]+)\.sql", entry.name)
        if m:
            out.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    out.sort(key=lambda mig: mig.version)
    if [mig.version for mig in out] != list(range(1, len(out) + 1)):
        raise RuntimeError("migration numbers must run 0001, 0002, ... without gaps")
    return out


async def migrate(conn: PgConnection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is missing; returns the versions applied now (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    applied = []
    async with transaction(conn):
        await conn.execute("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK])
        await conn.simple(
            "CREATE TABLE IF NOT EXISTS pgcall_schema_version ("
            " version INT PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        res = await conn.execute("SELECT coalesce(max(version), 0) FROM pgcall_schema_version")
        current = res.rows[0][0]
        for mig in migrations:
            if mig.version <= current:
                continue
            await conn.simple(mig.sql)
            await conn.execute(
                "INSERT INTO pgcall_schema_version (version, name) VALUES ($1, $2)",
                [mig.version, mig.name],
            )
            applied.append(mig.version)
    if applied:
        log.info("schema migrated to version %d", applied[-1])
    return applied
