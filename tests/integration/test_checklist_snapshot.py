"""Checklist §10 "Snapshot" against a running pgcall (protocol.md §4.1, §4.2, §4.4), plus the
routing pgcall adds (§9 security 3): call rows go to their two participants only, while users
and chat go to everyone.

Rows a test needs before a client connects, or rows "another process" writes, are inserted
with SQL through the ``db`` pool.
"""

from __future__ import annotations

import math
import re
from typing import Any

import trio

from .wsclient import (
    SNAPSHOT_TABLES,
    Client,
    event,
    fence,
    open_client,
    open_clients,
    random_identity,
    ring,
)

DEADLINE_S = 20.0
DIGITS = re.compile(r"[0-9]+")
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UUID_LOWER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def test_snapshots_follow_identity_in_order(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_client(server, snapshot=False) as c:
            first = [c.received[0]] + [await c.recv() for _ in SNAPSHOT_TABLES]
    assert first[0].type == "identity"
    for frame, table in zip(first[1:], SNAPSHOT_TABLES, strict=True):
        assert frame.type == "snapshot"
        assert list(frame.obj) == ["type", "table", "rows"]
        assert frame.obj["table"] == table
        assert isinstance(frame.obj["rows"], list)


async def test_own_user_in_snapshot_and_no_duplicates_under_concurrent_joins(
        server: str, db: Any) -> None:
    """Clients join together while chat rows are being inserted: each snapshot holds its own
    user, no key twice, and no live insert repeats a row the snapshot already had (§4.1)."""
    n_clients = 6
    clients: list[Client] = []
    all_joined, release, stop = trio.Event(), trio.Event(), trio.Event()

    async def chatter() -> None:
        n = 0
        while not stop.is_set():
            await db.execute("INSERT INTO chat_messages (sender, text) VALUES ('sql', $1)",
                             [f"c{n}"])
            n += 1

    async def member() -> None:
        async with open_client(server) as client:
            clients.append(client)
            if len(clients) == n_clients:
                all_joined.set()
            await release.wait()

    with trio.fail_after(DEADLINE_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chatter)
            for _ in range(n_clients):
                nursery.start_soon(member)
            await all_joined.wait()
            stop.set()
            before = await fence(db, *clients)
            release.set()

    everyone = {c.identity for c in clients}
    for client, seen in zip(clients, before, strict=True):
        users = [u["identity"] for u in client.snapshots["users"]]
        assert client.identity in users
        assert len(users) == len(set(users))
        chat = [m["id"] for m in client.snapshots["chat_messages"]]
        assert len(chat) == len(set(chat))
        # Live inserts complete the snapshot; none repeats a key it had.
        user_inserts = [f.obj["row"]["identity"] for f in seen if event("insert", "users")(f)]
        chat_inserts = [f.obj["row"]["id"] for f in seen
                        if event("insert", "chat_messages")(f)]
        assert not set(user_inserts) & set(users)
        assert not set(chat_inserts) & set(chat)
        assert len(user_inserts) == len(set(user_inserts))
        assert len(chat_inserts) == len(set(chat_inserts))
        assert set(users) | set(user_inserts) == everyone


async def test_chat_snapshot_is_the_newest_250_descending(server: str, db: Any) -> None:
    await db.execute("INSERT INTO chat_messages (sender, text) "
                     "SELECT 'sql', 'm' || g FROM generate_series(1, 260) AS g")
    ids = [r[0] for r in (await db.execute("SELECT id FROM chat_messages ORDER BY id DESC")).rows]
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as c:
            rows = c.snapshots["chat_messages"]
            settings = c.snapshots["media_settings"]
    assert len(rows) == 250
    assert [int(r["id"]) for r in rows] == ids[:250]  # newest by id, descending
    assert rows[0]["text"] == "m260" and rows[-1]["text"] == "m11"
    # media_settings: exactly one row, id 1, every other field a finite number.
    assert len(settings) == 1
    assert settings[0]["id"] == 1
    for key, value in settings[0].items():
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert math.isfinite(value), key


async def test_transcript_snapshot_is_the_last_hour_newest_200_descending(
        server: str, db: Any) -> None:
    """Variant R's fifth snapshot (§4.2): transcripts created in the last hour, the newest 200
    by id, descending. The stale row gets the highest id, so only the time window keeps it
    out."""
    await db.execute("INSERT INTO ai_transcripts (session_id, role, text) "
                     "SELECT gen_random_uuid(), 'human', 't' || g FROM generate_series(1, 210) g")
    await db.execute("INSERT INTO ai_transcripts (session_id, role, text, created_at) "
                     "VALUES (gen_random_uuid(), 'assistant', 'stale', now() - interval '2 h')")
    recent = [r[0] for r in (await db.execute(
        "SELECT id FROM ai_transcripts WHERE text <> 'stale' ORDER BY id DESC")).rows]
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as c:
            rows = c.snapshots["ai_transcripts"]
    assert "stale" not in [r["text"] for r in rows]
    assert [int(r["id"]) for r in rows] == recent[:200]


async def test_value_encodings(server: str, db: Any) -> None:
    ai = "0" * 63 + "1"
    await db.execute("INSERT INTO users (identity, nickname, is_ai) "
                     "VALUES ($1, 'AI Assistant', TRUE)", [ai])
    # Microseconds are truncated to milliseconds, not rounded (JavaScript Date, §4.4).
    await db.execute("INSERT INTO chat_messages (sender, sent_at, text) "
                     "VALUES ('sql', '2026-01-02 03:04:05.678999+00', 'stamp')")
    await db.execute("INSERT INTO ai_transcripts (session_id, role, text) "
                     "VALUES ('A0F375AB-FD13-48B1-8BA0-A68734DDDFB8', 'assistant', 'hello')")
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            await ring(a, b, call_type=None)
            # A second connection of the caller gets the Ringing call in its snapshot.
            async with open_client(server, token=a.token) as a2:
                snap = a2.snapshots
    users = {u["identity"]: u for u in snap["users"]}
    assert users[ai]["is_ai"] is True and users[a.identity]["is_ai"] is False
    assert ISO_MS_Z.fullmatch(users[a.identity]["connected_at"])

    (chat,) = snap["chat_messages"]
    assert isinstance(chat["id"], str) and DIGITS.fullmatch(chat["id"])
    assert chat["sent_at"] == "2026-01-02T03:04:05.678Z"

    (call,) = snap["call_sessions"]
    assert UUID_LOWER.fullmatch(call["session_id"])
    assert call["answered_at"] is None and "answered_at" in call
    assert call["state"] == "Ringing" and call["call_type"] == "Voice"  # the default
    assert ISO_MS_Z.fullmatch(call["created_at"])

    (settings,) = snap["media_settings"]
    assert settings["audio_talking_rms_threshold"] == 0.02  # not 0.019999999552965164
    assert settings["video_jpeg_quality"] == 0.65
    assert settings["id"] == 1 and settings["audio_frame_ms"] == 50  # int and smallint
    assert isinstance(settings["audio_frame_ms"], int)

    (transcript,) = snap["ai_transcripts"]
    assert DIGITS.fullmatch(transcript["id"])
    assert transcript["session_id"] == "a0f375ab-fd13-48b1-8ba0-a68734dddfb8"
    assert ISO_MS_Z.fullmatch(transcript["created_at"])


async def test_calls_reach_only_their_participants(server: str, db: Any) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            session_id = await ring(a, b)
            assert (await b.request({"type": "accept_call", "session_id": session_id}))[
                "type"] == "ack"
            for client in (a, b):
                await client.expect(event("update", "call_sessions", session_id=session_id))
            # Users and chat still go to everyone, the third client included.
            assert (await a.request({"type": "send_message", "text": "public"}))["type"] \
                == "ack"
            for client in (a, b, c):
                await client.expect(event("insert", "chat_messages", text="public"))
            (seen_by_c,) = await fence(db, c)
            assert not [f for f in seen_by_c if f.obj.get("table") == "call_sessions"]
            assert not [f for f in c.received if f.obj.get("table") == "call_sessions"
                        and f.obj.get("rows")]
            async with open_client(server) as late:
                assert late.snapshots["call_sessions"] == []
                users = {u["identity"] for u in late.snapshots["users"]}
                assert {a.identity, b.identity, c.identity} <= users
            # A call row inserted by another process reaches its participants only, too.
            other = random_identity()
            await db.execute("INSERT INTO users (identity, nickname) VALUES ($1, 'x')", [other])
            await db.execute("INSERT INTO call_sessions (state, caller, callee) "
                             "VALUES ('Ringing', $1, $2)", [other, c.identity])
            row = (await c.expect(event("insert", "call_sessions", caller=other))).obj["row"]
            assert row["callee"] == c.identity
            seen_by_a, seen_by_b = await fence(db, a, b)
            for seen in (seen_by_a, seen_by_b):
                assert not [f for f in seen if f.obj.get("table") == "call_sessions"]
