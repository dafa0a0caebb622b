"""Checklist §10 "Control messages" against a running pgcall (protocol.md §2, §3, §6).

Replies are ``{"type":"ack","req_type":T}`` or ``{"type":"error","req_type":T,"message":M}``
with pg-relay's exact strings, checked in pg-relay's order. Where pgcall deliberately differs
(§9): a non-UUID ``session_id`` answers ``Call session not found`` instead of a leaked
PostgreSQL error, ``constructor``/``__proto__`` are plain unknown types, and a message sent
right after opening the socket is processed instead of dropped.

The per-connection rate limits (``pgcall.ratelimit``: 5 nickname changes and 5 call requests
in a burst) shape which client sends what below: no client exceeds a burst here.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import trio

from .wsclient import (
    encode_control,
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
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def ack(req_type: str) -> dict[str, str]:
    return {"type": "ack", "req_type": req_type}


def error(req_type: str, message: str) -> dict[str, str]:
    return {"type": "error", "req_type": req_type, "message": message}


async def call_row(db: Any, session_id: str) -> list[tuple[Any, ...]]:
    return (await db.execute("SELECT state FROM call_sessions WHERE session_id::text = $1",
                             [session_id])).rows


async def test_set_nickname(server: str, db: Any) -> None:
    t = "set_nickname"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            # JavaScript's trim: U+3000 and U+FEFF are white space too.
            assert await a.request({"type": t, "nickname": " \t\u3000\ufeff "}) \
                == error(t, "Nickname cannot be empty")
            assert await a.request({"type": t}) == error(t, "Nickname cannot be empty")
            # Length is JavaScript's: UTF-16 code units after trim; an emoji counts two.
            assert await a.request({"type": t, "nickname": "x" * 33}) \
                == error(t, "Nickname must be <= 32 characters")
            assert await a.request({"type": t, "nickname": "\U0001f600" * 16 + "a"}) \
                == error(t, "Nickname must be <= 32 characters")
            assert await a.request({"type": t, "nickname": "  " + "\U0001f600" * 16 + " "}) \
                == ack(t)
            for client in (a, b):
                await client.expect(event("update", "users", identity=a.identity,
                                          nickname="\U0001f600" * 16))
            assert await a.request({"type": t, "nickname": "  Ada Lovelace\n"}) == ack(t)
            for client in (a, b):
                update = (await client.expect(event("update", "users", identity=a.identity,
                                                    nickname="Ada Lovelace"))).obj
                assert list(update) == ["type", "table", "row", "old"]
                assert update["old"]["identity"] == a.identity
                assert update["old"]["nickname"] == "\U0001f600" * 16
            # Without a users row (removed behind pgcall's back) there is nobody to rename.
            await db.execute("DELETE FROM users WHERE identity = $1", [a.identity])
            await b.expect(event("delete", "users", identity=a.identity))
            assert await a.request({"type": t, "nickname": "ghost"}) \
                == error(t, "User not found")


async def test_send_message(server: str) -> None:
    t = "send_message"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            assert await a.request({"type": t, "text": " \n "}) \
                == error(t, "Message cannot be empty")
            assert await a.request({"type": t}) == error(t, "Message cannot be empty")
            assert await a.request({"type": t, "text": "y" * 501}) \
                == error(t, "Message must be <= 500 characters")
            # 251 code points but 501 UTF-16 units: too long for pg-relay, so too long here.
            assert await a.request({"type": t, "text": "\U0001f600" * 250 + "z"}) \
                == error(t, "Message must be <= 500 characters")
            assert await a.request({"type": t, "text": "w" * 500}) == ack(t)
            assert await a.request({"type": t, "text": "  hello there \t"}) == ack(t)
            for client in (a, b):
                row = (await client.expect(event("insert", "chat_messages",
                                                 text="hello there"))).obj["row"]
                assert set(row) >= {"id", "sender", "sent_at", "text"}
                assert isinstance(row["id"], str) and row["id"].isdigit()
                assert row["sender"] == a.identity
                assert ISO_MS_Z.fullmatch(row["sent_at"])
                await client.expect(event("insert", "chat_messages", text="w" * 500))


async def test_request_call_checks_in_order(server: str) -> None:
    t = "request_call"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            assert await a.request({"type": t, "target": a.identity}) \
                == error(t, "Cannot call yourself")
            assert await a.request({"type": t, "target": random_identity()}) \
                == error(t, "Target is not online")
            assert await c.request({"type": t, "target": "nobody"}) \
                == error(t, "Target is not online")
            assert await a.request({"type": t, "target": b.identity, "call_type": "Video"}) \
                == ack(t)
            for client in (a, b):
                row = (await client.expect(event("insert", "call_sessions"))).obj["row"]
                assert row["state"] == "Ringing" and row["answered_at"] is None
                assert (row["caller"], row["callee"]) == (a.identity, b.identity)
                assert row["call_type"] == "Video"
            # Both ends are busy now, whoever calls whom.
            busy = error(t, "Caller or callee is already in a call")
            assert await c.request({"type": t, "target": a.identity}) == busy
            assert await c.request({"type": t, "target": b.identity}) == busy
            assert await a.request({"type": t, "target": c.identity}) == busy
            # The earlier checks come first even for a busy caller.
            assert await b.request({"type": t, "target": b.identity}) \
                == error(t, "Cannot call yourself")
            assert await b.request({"type": t, "target": random_identity()}) \
                == error(t, "Target is not online")


async def test_simultaneous_calls_to_one_callee_only_one_rings(server: str, db: Any) -> None:
    # pg-relay's busy check raced (§9.7); two callers at once must not both get through.
    t = "request_call"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            await b.send_control({"type": t, "target": a.identity})
            await c.send_control({"type": t, "target": a.identity})
            got = {b.identity: await b.reply(t), c.identity: await c.reply(t)}
            (seen,) = await fence(db, a)
            rows = (await db.execute("SELECT caller FROM call_sessions")).rows
    assert sorted(r["type"] for r in got.values()) == ["ack", "error"]
    winner = next(k for k, r in got.items() if r["type"] == "ack")
    loser = next(r for r in got.values() if r["type"] == "error")
    assert loser["message"] == "Caller or callee is already in a call"
    assert rows == [(winner,)]
    inserts = [f.obj["row"]["caller"] for f in seen if event("insert", "call_sessions")(f)]
    assert inserts == [winner]


async def test_request_call_type(server: str) -> None:
    # Only the exact string "Video" makes a video call; anything else, or nothing, is Voice.
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            for call_type, expected in (("video", "Voice"), (None, "Voice"), ("Voice", "Voice"),
                                        ("Video", "Video"), ("VIDEO", "Voice")):
                session_id = await ring(a, b, call_type)
                (row,) = [f.obj["row"] for f in a.received
                          if event("insert", "call_sessions", session_id=session_id)(f)]
                assert row["call_type"] == expected, call_type
                assert await a.request({"type": "end_call", "session_id": session_id}) \
                    == ack("end_call")
                for client in (a, b):
                    await client.expect(event("delete", "call_sessions", session_id=session_id))


async def test_accept_call(server: str) -> None:
    t = "accept_call"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            session_id = await ring(a, b)
            assert await b.request({"type": t, "session_id": random_identity()[:32]}) \
                == error(t, "Call session not found")
            assert await b.request({"type": t, "session_id": str(uuid.uuid4())}) \
                == error(t, "Call session not found")
            assert await a.request({"type": t, "session_id": session_id}) \
                == error(t, "Only the callee can accept")
            assert await c.request({"type": t, "session_id": session_id}) \
                == error(t, "Only the callee can accept")
            assert await b.request({"type": t, "session_id": session_id}) == ack(t)
            for client in (a, b):
                update = (await client.expect(event("update", "call_sessions",
                                                    session_id=session_id))).obj
                assert update["row"]["state"] == "Active"
                assert ISO_MS_Z.fullmatch(update["row"]["answered_at"])
                assert update["old"]["session_id"] == session_id
                assert update["old"]["state"] == "Ringing"
            assert await b.request({"type": t, "session_id": session_id}) \
                == error(t, "Call is not ringing")


async def test_decline_call(server: str, db: Any) -> None:
    t = "decline_call"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            # While it rings.
            session_id = await ring(a, b)
            assert await a.request({"type": t, "session_id": session_id}) \
                == error(t, "Only the callee can decline")
            assert await b.request({"type": t, "session_id": session_id}) == ack(t)
            for client in (a, b):
                delete = (await client.expect(event("delete", "call_sessions",
                                                    session_id=session_id))).obj
                assert list(delete) == ["type", "table", "old"]
            assert await call_row(db, session_id) == []
            # And, unlike accept, once it is Active too (no state check, §3).
            session_id = await setup_call(a, b)
            assert await c.request({"type": t, "session_id": session_id}) \
                == error(t, "Only the callee can decline")
            assert await b.request({"type": t, "session_id": session_id}) == ack(t)
            for client in (a, b):
                old = (await client.expect(event("delete", "call_sessions",
                                                 session_id=session_id))).obj["old"]
                assert old["state"] == "Active"
            assert await call_row(db, session_id) == []
            assert await b.request({"type": t, "session_id": session_id}) \
                == error(t, "Call session not found")


async def test_end_call(server: str, db: Any) -> None:
    t = "end_call"
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            session_id = await setup_call(a, b)
            assert await c.request({"type": t, "session_id": session_id}) \
                == error(t, "Only a participant can end this call")
            assert await call_row(db, session_id) == [("Active",)]
            assert await a.request({"type": t, "session_id": session_id}) == ack(t)
            for client in (a, b):
                await client.expect(event("delete", "call_sessions", session_id=session_id))
            assert await call_row(db, session_id) == []
            # The caller cancels while it rings; the callee may end a call as well.
            session_id = await ring(a, b)
            assert await a.request({"type": t, "session_id": session_id}) == ack(t)
            for client in (a, b):
                await client.expect(event("delete", "call_sessions", session_id=session_id))
            session_id = await setup_call(a, b)
            assert await b.request({"type": t, "session_id": session_id}) == ack(t)
            for client in (a, b):
                await client.expect(event("delete", "call_sessions", session_id=session_id))
            assert await a.request({"type": t, "session_id": session_id}) \
                == error(t, "Call session not found")


async def test_unknown_types(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as c:
            # Prototype keys of a JavaScript object are just unknown names here (§9 sec. 5).
            for name in ("nope", "constructor", "__proto__", "toString", "hasOwnProperty",
                         "valueOf", "ack", "SEND_MESSAGE"):
                assert await c.request({"type": name}) == error(name, "Unknown message type")
            # A missing type counts as "".
            await c.send_control({"text": "no type"})
            assert await c.reply("") == error("", "Unknown message type")
            # Falsy JSON falls through to "Unknown message type" with req_type "unknown" (§2).
            for falsy in (None, 0, False, ""):
                await c.send_control(falsy)
                assert await c.reply("unknown") == error("unknown", "Unknown message type")
            # The same for a media header that is falsy JSON.
            await c.send_raw(b"\x01\x00\x00\x00\x04null\x00\x00")
            assert await c.reply("unknown") == error("unknown", "Unknown message type")


async def test_malformed_frames(server: str) -> None:
    bad = [
        b"",  # empty
        b"\x00",  # no JSON
        b"\x00{",  # invalid JSON
        b"\x00\xff\xfe",  # not UTF-8
        b"\x01\x00\x00",  # media shorter than 5 bytes
        b"\x01\x00\x00\x00\x10{}",  # header runs past the end
        b"\x02\xff\xff\xff\xff{}",  # an absurd header length
        b"\x01\x00\x00\x00\x02{x",  # header is not JSON
        b"\x03{}",  # unknown tag
        b"\x7b\x22type\x22:1}",  # JSON without a tag byte
    ]
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as c:
            for data in bad:
                await c.send_raw(data)
                assert await c.reply("unknown") == error("unknown", "Malformed message"), data
            # Still working afterwards.
            assert await c.request({"type": "send_message", "text": "fine"}) \
                == ack("send_message")


async def test_non_uuid_session_id_is_an_error_reply(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            session_id = await ring(a, b)
            for t in ("accept_call", "decline_call", "end_call"):
                for value in ("abc", "", "' OR 1=1 --", session_id + "0"):
                    assert await b.request({"type": t, "session_id": value}) \
                        == error(t, "Call session not found"), value
                assert await b.request({"type": t}) == error(t, "Call session not found")
                # A non-string is an error too (never silence or a crash).
                reply = await b.request({"type": t, "session_id": 12})
                assert reply["type"] == "error" and reply["req_type"] == t
            # PostgreSQL's uuid input accepts upper case: that still names the call.
            assert await b.request({"type": "accept_call", "session_id": session_id.upper()}) \
                == ack("accept_call")


async def test_control_sent_right_after_open_is_processed_in_order(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 1) as (watcher,):
            early = [encode_control({"type": "set_nickname", "nickname": "early bird"}),
                     encode_control({"type": "send_message", "text": "first words"})]
            async with open_client(server, early=early) as c:
                assert c.received[0].type == "identity"
                await c.reply("send_message")
                replies = [f.obj for f in c.received
                           if reply_to("set_nickname")(f) or reply_to("send_message")(f)]
                assert replies == [ack("set_nickname"), ack("send_message")]
                for client in (watcher, c):
                    await client.expect(event("update", "users", identity=c.identity,
                                              nickname="early bird"))
                    row = (await client.expect(event("insert", "chat_messages",
                                                     text="first words"))).obj["row"]
                    assert row["sender"] == c.identity
