"""Checklist §10 "Identity" against a running pgcall (protocol.md §4.1, §5).

Includes pgcall's fix of pg-relay's replacement race (§5, §9.2): when a second connection
takes over an identity, the first is closed with 4001 and the *new* one stays online, keeps
its calls, and keeps receiving broadcasts and media.
"""

from __future__ import annotations

import re
import uuid

import trio

from .wsclient import (
    TAG_AUDIO,
    Client,
    audio_header,
    event,
    fence,
    open_client,
    open_clients,
    setup_call,
)

DEADLINE_S = 20.0
HEX64 = re.compile(r"[0-9a-f]{64}")


async def wait_gone(watcher: Client, identity: str) -> None:
    """Until ``watcher`` knows ``identity`` has left (its users row deleted)."""
    if identity in {u["identity"] for u in watcher.snapshots["users"]}:
        await watcher.expect(event("delete", "users", identity=identity))


def own_row(client: Client) -> dict:
    rows = [u for u in client.snapshots["users"] if u["identity"] == client.identity]
    assert len(rows) == 1, client.snapshots["users"]
    return rows[0]


async def test_first_message_is_identity(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_client(server, snapshot=False) as c:
            first = c.received[0]
    assert first.tag == 0
    assert list(first.obj) == ["type", "identity", "token"]
    assert first.obj["type"] == "identity"
    assert HEX64.fullmatch(first.obj["identity"])
    assert isinstance(first.obj["token"], str) and first.obj["token"]


async def test_reconnect_with_token_gives_same_identity(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 1) as (watcher,):
            async with open_client(server) as a:
                token, identity = a.token, a.identity
            await wait_gone(watcher, identity)
            async with open_client(server, token=token) as again:
                assert (again.identity, again.token) == (identity, token)
                assert identity in {u["identity"] for u in again.snapshots["users"]}


async def test_unknown_or_empty_token_gives_a_new_identity_without_error(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as known:
            for token in (f"unknown-{uuid.uuid4()}", str(uuid.uuid4()), ""):
                async with open_client(server, token=token) as c:
                    assert HEX64.fullmatch(c.identity)
                    assert c.identity != known.identity
                    assert c.token and c.token != token and c.token != known.token
                    # No error and no close: the connection works normally.
                    assert await c.request({"type": "send_message", "text": "still here"}) \
                        == {"type": "ack", "req_type": "send_message"}
                    assert not [f for f in c.received if f.type == "error"]
                    assert c.close_code is None


async def test_second_connection_replaces_the_first_and_stays_online(
        server: str, db: object) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a1, b, watcher):
            session_id = await setup_call(a1, b)
            async with open_client(server, token=a1.token) as a2:
                assert a2.identity == a1.identity
                assert await a1.expect_closed() == (4001, "Replaced by new connection")
                # The new connection starts with the user online and the call still there.
                assert a2.identity in {u["identity"] for u in a2.snapshots["users"]}
                assert [c["session_id"] for c in a2.snapshots["call_sessions"]] == [session_id]

                # Broadcasts reach the new connection...
                assert (await b.request({"type": "send_message", "text": "to a2"}))["type"] \
                    == "ack"
                await a2.expect(event("insert", "chat_messages", text="to a2"))
                # ...and so does media for the identity.
                await b.send_media("audio", audio_header(session_id, a2.identity, 1), b"\1\2")
                frame = await a2.expect(lambda f: f.tag == TAG_AUDIO)
                assert (frame.obj["from"], frame.payload) == (b.identity, b"\1\2")
                # It can still act as the user: its users row exists.
                assert await a2.request({"type": "set_nickname", "nickname": "reloaded"}) \
                    == {"type": "ack", "req_type": "set_nickname"}
                await watcher.expect(event("update", "users", identity=a2.identity,
                                           nickname="reloaded"))
                before = await fence(db, watcher, b, a2)
                # Nobody saw the user or the call go away.
                for seen in before:
                    assert not [f for f in seen if f.type == "delete"], seen
                async with open_client(server) as late:
                    assert a2.identity in {u["identity"] for u in late.snapshots["users"]}
            # When the new connection leaves, the user and the call do go.
            await b.expect(event("delete", "call_sessions", session_id=session_id))
            await watcher.expect(event("delete", "users", identity=a1.identity))


async def test_default_nickname_and_reset_after_reconnect(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 1) as (watcher,):
            async with open_client(server) as a:
                assert own_row(a)["nickname"] == f"user-{a.identity[:8]}"
                assert (await a.request({"type": "set_nickname", "nickname": "Zed"}))["type"] \
                    == "ack"
                await watcher.expect(event("update", "users", identity=a.identity,
                                           nickname="Zed"))
            await wait_gone(watcher, a.identity)
            async with open_client(server, token=a.token) as again:
                assert again.identity == a.identity
                assert own_row(again)["nickname"] == f"user-{a.identity[:8]}"
