"""Checklist §10 "Deletes and disconnect" against a running pgcall (protocol.md §4.5, §6), and
the limits pgcall adds (§9): calls left ringing are removed, oversized WebSocket messages close
the socket with 1009, and floods are refused ("Rate limit exceeded") and, if they go on, closed
with 4029 while other clients carry on.

The ringing timeout is exercised by calling ``pgcall.db.reaper.expire_ringing`` with a short
timeout on the test's own pool instead of waiting the real 30 s.
"""

from __future__ import annotations

import contextlib
from typing import Any

import trio
from trio_websocket import ConnectionClosed

from pgcall.config import WsLimits
from pgcall.db.reaper import expire_ringing
from pgcall.relay.ratelimit import LIMITS

from .wsclient import (
    Client,
    event,
    fence,
    open_client,
    open_clients,
    random_identity,
    reply_to,
    ring,
    setup_call,
)

DEADLINE_S = 20.0
WS_LIMIT = WsLimits().max_message


async def test_delete_events_carry_the_old_row(server: str, db: Any) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            both = (a, b)
            # chat_messages: old.id
            assert (await a.request({"type": "send_message", "text": "bye"}))["type"] == "ack"
            chat_id = (await a.expect(event("insert", "chat_messages", text="bye"))).obj[
                "row"]["id"]
            await db.execute("DELETE FROM chat_messages WHERE id = $1", [int(chat_id)])
            for c in both:
                old = (await c.expect(event("delete", "chat_messages", id=chat_id))).obj["old"]
                assert old["text"] == "bye" and old["sender"] == a.identity
            # users: old.identity
            ghost = random_identity()
            await db.execute("INSERT INTO users (identity, nickname) VALUES ($1, 'g')", [ghost])
            await db.execute("DELETE FROM users WHERE identity = $1", [ghost])
            for c in both:
                old = (await c.expect(event("delete", "users", identity=ghost))).obj["old"]
                assert old["nickname"] == "g"
            # call_sessions: old.session_id
            session_id = await ring(a, b)
            assert (await a.request({"type": "end_call", "session_id": session_id}))["type"] \
                == "ack"
            for c in both:
                old = (await c.expect(event("delete", "call_sessions",
                                            session_id=session_id))).obj["old"]
                assert (old["caller"], old["callee"]) == (a.identity, b.identity)
            # ai_transcripts: old.id
            await db.execute("INSERT INTO ai_transcripts (session_id, role, text) "
                             "VALUES (gen_random_uuid(), 'assistant', 'x')")
            tid = (await a.expect(event("insert", "ai_transcripts"))).obj["row"]["id"]
            await db.execute("DELETE FROM ai_transcripts WHERE id = $1", [int(tid)])
            for c in both:
                await c.expect(event("delete", "ai_transcripts", id=tid))
            # media_settings: old.id (then put the row back)
            await db.execute("DELETE FROM media_settings WHERE id = 1")
            for c in both:
                old = (await c.expect(event("delete", "media_settings", id=1))).obj["old"]
                assert old["video_fps"] == 15
            await db.execute("INSERT INTO media_settings (id) VALUES (1)")
            for c in both:
                await c.expect(event("insert", "media_settings", id=1))


async def test_disconnect_deletes_calls_then_the_user(server: str, db: Any) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (b, c):
            async with open_client(server) as a:
                for watcher in (b, c):
                    await watcher.expect(event("insert", "users", identity=a.identity))
                session_id = await setup_call(a, b)
            seen_b = await b.until(event("delete", "users", identity=a.identity))
            seen_c = await c.until(event("delete", "users", identity=a.identity))
            rows = (await db.execute(
                "SELECT (SELECT count(*) FROM users WHERE identity = $1), "
                "(SELECT count(*) FROM call_sessions WHERE caller = $1 OR callee = $1)",
                [a.identity])).rows
    deletes = [f.obj for f in seen_b if f.type == "delete"]
    assert [d["table"] for d in deletes] == ["call_sessions", "users"]  # calls first
    assert deletes[0]["old"]["session_id"] == session_id
    assert deletes[1]["old"]["identity"] == a.identity
    assert not [f for f in seen_c if f.obj.get("table") == "call_sessions"]
    assert rows == [(0, 0)]


async def test_close_right_after_identity_leaves_no_ghost(server: str, db: Any) -> None:
    # pg-relay missed a close during its connection sequence and kept the user for ever
    # (§4.1, §9.3). Leave before reading the snapshot: the user must still be removed.
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 1) as (watcher,):
            async with open_client(server, snapshot=False) as a:
                pass
            await watcher.expect(event("delete", "users", identity=a.identity))
            rows = (await db.execute("SELECT count(*) FROM users WHERE identity = $1",
                                     [a.identity])).rows
    assert rows == [(0,)]


async def test_call_left_ringing_is_removed(server: str, db: Any) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 4) as (a, b, c, d):
            ringing = await ring(a, b)
            active = await setup_call(c, d)
            assert await expire_ringing(db, 30.0) == 0  # not before its time
            # Let the call grow older than the (shortened) timeout: this waits for time to
            # pass, as the premise of the test, measured on the database's clock.
            (age,) = (await db.execute(
                "SELECT extract(epoch FROM clock_timestamp() - created_at)::float8 "
                "FROM call_sessions WHERE state = 'Ringing'")).rows[0]
            await trio.sleep(max(0.0, 0.6 - age))
            assert await expire_ringing(db, 0.5) == 1
            for client in (a, b):
                old = (await client.expect(event("delete", "call_sessions",
                                                 session_id=ringing))).obj["old"]
                assert old["state"] == "Ringing"
            seen_c, seen_d = await fence(db, c, d)
            assert not [f for f in seen_c + seen_d if f.type == "delete"]
            rows = (await db.execute("SELECT session_id::text, state FROM call_sessions")).rows
            assert rows == [(active, "Active")]
            # Both are free again.
            await ring(a, b)


async def test_oversized_message_closes_with_1009(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 1) as (watcher,):
            async with open_client(server) as a:
                await watcher.expect(event("insert", "users", identity=a.identity))
                # At the limit the message is read (and is Malformed: no header JSON)...
                await a.send_raw(b"\x02" + bytes(WS_LIMIT - 1))
                assert (await a.reply("unknown"))["message"] == "Malformed message"
                # ...one byte more closes the socket.
                await a.send_raw(b"\x02" + bytes(WS_LIMIT))
                code, _ = await a.expect_closed()
            assert code == 1009
            await watcher.expect(event("delete", "users", identity=a.identity))


async def _replies_until_closed(client: Client, wanted: int) -> list[dict[str, Any]]:
    """send_message replies, until ``wanted`` of them or the server closes."""
    out: list[dict[str, Any]] = []
    while len(out) < wanted:
        try:
            out.append((await client.expect(reply_to("send_message"))).obj)
        except ConnectionClosed:
            break
    return out


async def test_chat_burst_is_rate_limited(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as a:
            # The server may close (4029) before the last ones are sent: checked below.
            with contextlib.suppress(ConnectionClosed):
                for i in range(200):
                    await a.send_control({"type": "send_message", "text": f"m{i}"})
            got = await _replies_until_closed(a, 200)
    burst = int(LIMITS["chat"].burst)
    acks = [r for r in got if r["type"] == "ack"]
    refused = [r for r in got if r["type"] == "error"]
    assert got[:burst] == acks[:burst] and len(acks) >= burst  # the burst allowance first
    assert len(acks) < burst + 10  # a few more may trickle in as the bucket refills
    assert refused and all(r == {"type": "error", "req_type": "send_message",
                                 "message": "Rate limit exceeded"} for r in refused)
    assert len(got) == 200 or a.close_code == 4029


async def test_sustained_flood_is_closed_while_others_carry_on(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):

            async def flood() -> None:
                n = 0
                while True:
                    try:
                        await a.send_control({"type": "send_message", "text": f"f{n}"})
                    except ConnectionClosed:
                        return
                    n += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                # Another client is served normally during the flood.
                assert await b.request({"type": "send_message", "text": "calm"}) \
                    == {"type": "ack", "req_type": "send_message"}
                await b.expect(event("insert", "chat_messages", text="calm"))
                code, reason = await a.expect_closed()
            assert (code, reason) == (4029, "Rate limit exceeded")
            await b.expect(event("delete", "users", identity=a.identity))
            assert await b.request({"type": "set_nickname", "nickname": "after"}) \
                == {"type": "ack", "req_type": "set_nickname"}
