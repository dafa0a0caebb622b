"""The reaper (frame retention, ringing timeout) and clean-up after crashed pgcall instances,
against a real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from pgcall.db import reaper
from pgcall.db.instances import claim_instance, clean_dead_instances
from pgcall.pg.conn import open_connection
from pgcall.pg.pool import open_pool

SID = uuid.UUID("a0f375ab-fd13-48b1-8ba0-a68734dddfb8")


async def insert_frames(conn, age_s: float, n: int) -> None:  # type: ignore[no-untyped-def]
    for seq in range(n):
        await conn.execute(
            "INSERT INTO video_frames (session_id, from_id, to_id, seq, width, height, jpeg, "
            "inserted_at) VALUES ($1, 'a', 'b', $2, 1, 1, '\\xffd8', now() - make_interval("
            "secs => $3))", [SID, seq, age_s])
        await conn.execute(
            "INSERT INTO audio_frames (session_id, from_id, to_id, seq, sample_rate, channels, "
            "rms, pcm16le, inserted_at) VALUES ($1, 'a', 'b', $2, 16000, 1, 0, '\\x0000', "
            "now() - make_interval(secs => $3))", [SID, seq, age_s])
        await conn.execute(
            "INSERT INTO room_video_frames (room_id, from_id, seq, layer, width, height, jpeg, "
            "inserted_at) VALUES ($1, 'a', $2, 'thumb', 1, 1, '\\xffd8', now() - make_interval("
            "secs => $3))", [SID, seq, age_s])
        await conn.execute(
            "INSERT INTO room_audio_frames (room_id, from_id, seq, sample_rate, channels, "
            "rms, pcm16le, inserted_at) VALUES ($1, 'a', $2, 16000, 1, 0, '\\x0000', "
            "now() - make_interval(secs => $3))", [SID, seq, age_s])


async def count(conn, table: str) -> int:  # type: ignore[no-untyped-def]
    return (await conn.execute(f"SELECT count(*) FROM {table}")).rows[0][0]


@pytest.mark.parametrize("batch", [reaper.BATCH, 2])
async def test_reaper_deletes_only_frames_older_than_retention(
        db_dsn: str, batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper, "BATCH", batch)  # 2: the old frames take several batches
    async with open_connection(db_dsn) as conn, open_pool(db_dsn, 2) as pool:
        await insert_frames(conn, age_s=10, n=5)
        await insert_frames(conn, age_s=0, n=3)
        counts = await reaper.reap_once(pool, retain_s=5)
        assert counts == dict.fromkeys(reaper.FRAME_TABLES, 5)
        for table in reaper.FRAME_TABLES:
            assert await count(conn, table) == 3, table
        assert await reaper.reap_once(pool, retain_s=5) == dict.fromkeys(reaper.FRAME_TABLES, 0)


async def test_ringing_calls_expire_active_ones_do_not(db_dsn: str) -> None:
    async with open_connection(db_dsn) as conn, open_pool(db_dsn, 2) as pool:
        await conn.simple(
            "INSERT INTO call_sessions (state, caller, callee, created_at) VALUES "
            "('Ringing', 'a', 'b', now() - interval '40 seconds'),"
            "('Ringing', 'c', 'd', now()),"
            "('Active', 'e', 'f', now() - interval '40 seconds')")
        assert await reaper.expire_ringing(pool, 30.0) == 1
        rows = (await conn.execute("SELECT caller FROM call_sessions ORDER BY caller")).rows
        assert rows == [("c",), ("e",)]


async def test_crashed_instances_rows_are_removed_live_and_ai_rows_kept(db_dsn: str) -> None:
    live, dead, me = 101, 202, 303
    async with open_connection(db_dsn) as live_conn, open_connection(db_dsn) as conn:
        await claim_instance(live_conn, live)  # holds its lock: alive
        await conn.simple(
            f"INSERT INTO pgcall_instances (instance_id) VALUES ({dead});"
            "INSERT INTO users (identity, is_ai) VALUES ('live-user', false), "
            "('dead-user', false), ('ai-user', true), ('other', false);"
            f"INSERT INTO pgcall_presence VALUES ('live-user', {live}), ('dead-user', {dead}), "
            f"('ai-user', {dead});"
            "INSERT INTO call_sessions (state, caller, callee) VALUES "
            "('Active', 'dead-user', 'other'), ('Ringing', 'live-user', 'ai-user')")
        await claim_instance(conn, me)
        assert await clean_dead_instances(conn, me) == 1
        users = {r[0] for r in (await conn.execute("SELECT identity FROM users")).rows}
        assert users == {"live-user", "ai-user", "other"}
        calls = (await conn.execute("SELECT caller, callee FROM call_sessions")).rows
        assert calls == [("live-user", "ai-user")]
        instances = {r[0] for r in (await conn.execute(
            "SELECT instance_id FROM pgcall_instances")).rows}
        assert instances == {live, me}
        # The dead instance's lock was released again: nobody holds it now.
        held = (await conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
            [dead])).rows[0][0]
        assert held == 0
