"""Schema migrations against a real PostgreSQL: idempotence, concurrency, and what 0001 creates."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import trio

from pgcall.pg.conn import PgConnection, PgError
from pgcall.pg.embedded import EmbeddedPostgres
from pgcall.pg.migrate import Migration, load_migrations, migrate
from tests.conftest import run_sql, with_dbname

STATE_TABLES = {"users", "chat_messages", "call_sessions", "media_settings", "ai_transcripts",
                "rooms", "room_members", "room_invites", "room_messages", "pgcall_presence",
                "recordings"}
FRAME_TABLES = {"audio_frames", "video_frames", "room_audio_frames", "room_video_frames"}

# Everything a migration can change that a client would notice, as comparable rows.
SCHEMA_QUERIES = [
    "SELECT table_name, column_name, data_type, column_default, is_nullable"
    " FROM information_schema.columns WHERE table_schema = 'public'"
    " ORDER BY table_name, column_name",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "SELECT pubname, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication"
    " ORDER BY 1",
    "SELECT pubname, tablename FROM pg_publication_tables ORDER BY 1, 2",
    "SELECT relname, relreplident::text FROM pg_class"
    " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1",
    "SELECT version, name FROM pgcall_schema_version ORDER BY 1",
    "SELECT * FROM media_settings",
]


async def connect(dsn: str) -> PgConnection:
    return await PgConnection.connect(dsn)


async def schema_of(dsn: str) -> list[list[tuple]]:
    conn = await connect(dsn)
    try:
        return [(await conn.execute(q)).rows for q in SCHEMA_QUERIES]
    finally:
        conn.close()


async def query(dsn: str, *statements: str) -> list[list[tuple]]:
    conn = await connect(dsn)
    try:
        return [(await conn.execute(s)).rows for s in statements]
    finally:
        conn.close()


async def migrate_once(dsn: str) -> list[int]:
    conn = await connect(dsn)
    try:
        return await migrate(conn)
    finally:
        conn.close()


@pytest.fixture
def empty_dsn(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A fresh database that no migration has touched."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    run_sql(pg_server.dsn, f"CREATE DATABASE {name}")
    try:
        yield with_dbname(pg_server.dsn, name)
    finally:
        run_sql(pg_server.dsn, f"DROP DATABASE {name} WITH (FORCE)")


def test_migration_files_are_shipped() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations][:1] == [1]
    assert migrations[0].name == "initial"
    assert "CREATE PUBLICATION pgcall_state" in migrations[0].sql


async def test_applied_twice(empty_dsn: str) -> None:
    everything = [m.version for m in load_migrations()]
    assert await migrate_once(empty_dsn) == everything
    before = await schema_of(empty_dsn)
    assert await migrate_once(empty_dsn) == []
    assert await schema_of(empty_dsn) == before


async def test_up_to_date_database_is_left_alone(db_dsn: str) -> None:
    # db_dsn is cloned from an already migrated template.
    before = await schema_of(db_dsn)
    assert await migrate_once(db_dsn) == []
    assert await schema_of(db_dsn) == before


async def test_two_concurrent_migrations(empty_dsn: str) -> None:
    results: list[list[int]] = []
    a, b = await connect(empty_dsn), await connect(empty_dsn)
    try:
        async def run(conn: PgConnection) -> None:
            results.append(await migrate(conn))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, a)
            nursery.start_soon(run, b)
    finally:
        a.close()
        b.close()
    everything = [m.version for m in load_migrations()]
    assert sorted(results, key=len) == [[], everything]
    rows = await query(empty_dsn, "SELECT version FROM pgcall_schema_version WHERE version = 1",
                       "SELECT count(*) FROM pgcall_schema_version")
    assert rows[0] == [(1,)]
    assert rows[1] == [(len(everything),)]


async def test_failed_migration_is_rolled_back(empty_dsn: str) -> None:
    broken = [*load_migrations(), Migration(len(load_migrations()) + 1, "broken",
                                            "CREATE TABLE half_done (id INT); SELECT 1/0;")]
    conn = await connect(empty_dsn)
    try:
        with pytest.raises(PgError, match="division by zero"):
            await migrate(conn, broken)
    finally:
        conn.close()
    rows = await query(empty_dsn, "SELECT to_regclass('public.half_done') IS NULL,"
                                  " to_regclass('public.users') IS NULL,"
                                  " to_regclass('public.pgcall_schema_version') IS NULL")
    assert rows == [[(True, True, True)]]
    # Nothing was recorded, so the next start applies everything.
    assert await migrate_once(empty_dsn) == [m.version for m in load_migrations()]


def test_publications(db_dsn: str) -> None:
    pubs, tables = run_sql(
        db_dsn,
        "SELECT pubname, pubinsert, pubupdate, pubdelete, pubtruncate, puballtables"
        " FROM pg_publication ORDER BY pubname",
        "SELECT pubname, tablename FROM pg_publication_tables WHERE schemaname = 'public'",
    )
    assert pubs == [
        ("pgcall_frames", True, False, False, False, False),
        ("pgcall_state", True, True, True, False, False),
    ]
    published: dict[str, set[str]] = {}
    for pub, table in tables:
        published.setdefault(pub, set()).add(table)
    assert published == {"pgcall_state": STATE_TABLES, "pgcall_frames": FRAME_TABLES}


def test_replica_identity_full_on_state_tables(db_dsn: str) -> None:
    (rows,) = run_sql(
        db_dsn,
        "SELECT relname, relreplident::text FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    )
    ident = dict(rows)
    assert {t: ident[t] for t in STATE_TABLES} == dict.fromkeys(STATE_TABLES, "f")
    # Frame tables are insert-only in the stream: the default (primary key) identity will do.
    assert {t: ident[t] for t in FRAME_TABLES} == dict.fromkeys(FRAME_TABLES, "d")


def test_media_settings_defaults(db_dsn: str) -> None:
    (rows,) = run_sql(
        db_dsn,
        "SELECT id, video_width, video_height, video_fps, video_jpeg_quality,"
        " audio_target_sample_rate, audio_frame_ms, video_max_frame_bytes,"
        " audio_max_frame_bytes FROM media_settings",
    )
    assert len(rows) == 1
    (ident, width, height, fps, quality, rate, frame_ms, video_max, audio_max) = rows[0]
    assert ident == 1
    assert (width, height, fps) == (640, 360, 15)
    assert quality == pytest.approx(0.65, abs=1e-6)  # REAL: single precision
    assert (rate, frame_ms) == (16000, 50)
    assert (video_max, audio_max) == (512000, 64000)


def test_media_settings_has_one_row_only(db_dsn: str) -> None:
    with pytest.raises(PgError, match="media_settings"):
        run_sql(db_dsn, "INSERT INTO media_settings (id) VALUES (2)")
    assert run_sql(db_dsn, "SELECT count(*) FROM media_settings") == [[(1,)]]


async def test_frame_tables_and_their_toast_are_vacuumed_by_dead_rows(db_dsn: str) -> None:
    # sql/0006: queues, vacuumed by a count of dead rows, not by a share of the table;
    # sql/0007: unthrottled, so that a vacuum ends before the next frames need its space.
    conn = await connect(db_dsn)
    try:
        rows = (await conn.execute("""
            SELECT c.relname, c.reloptions, t.reloptions FROM pg_class c
            JOIN pg_class t ON t.oid = c.reltoastrelid
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'""")).rows
    finally:
        conn.close()
    options = {name: (set(own or ()), set(toast or ())) for name, own, toast in rows}
    for table in FRAME_TABLES:
        own, toast = options[table]
        assert {"autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=2000",
                "autovacuum_vacuum_cost_delay=0"} <= own
        assert {"autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=20000",
                "autovacuum_vacuum_cost_delay=0"} <= toast
    assert not any(options[t][0] for t in STATE_TABLES if t in options)
