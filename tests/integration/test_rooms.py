"""Rooms against a real pgcall and PostgreSQL (docs/protocol-rooms.md): create, invite, join by
link (public and private), leave, remove; one row per frame fanned out to every other member;
the privacy of room media, chat and state against a bystander on the same pgcall; the
errors of non-members and the one-call-or-room rule."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import trio

from pgcall.pg.pool import Pool
from pgcall.wire import rooms as w
from tests.integration.wsclient import Client, Frame, event, open_clients, reply_to, setup_call

JPEG = b"\xff\xd8" + b"\x11" * 600
PCM = b"\x01\x00" * 400


def room_video(room_id: str, seq: int, layer: str = "full") -> dict[str, Any]:
    return {"room_id": room_id, "seq": seq, "width": 640, "height": 360, "layer": layer}


def room_audio(room_id: str, seq: int, rms: float = 0.3) -> dict[str, Any]:
    return {"room_id": room_id, "seq": seq, "sample_rate": 16000, "channels": 1, "rms": rms}


def kind_of(t: str) -> Any:
    return lambda f: f.type == t


async def create(client: Client, name: str = "standup", private: bool = False,
                 call_type: str = "Video") -> dict[str, Any]:
    ack = await client.request({"type": "create_room", "name": name, "call_type": call_type,
                                "private": private})
    assert ack["type"] == "ack", ack
    await client.expect(lambda f: f.type == "snapshot" and f.obj["table"] == "room_members")
    await client.expect(kind_of("room_layers"))  # the last message of a member's snapshot
    return ack


async def join(client: Client, room_id: str, key: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "join_room", "room_id": room_id}
    if key is not None:
        msg["key"] = key
    ack = await client.request(msg)
    assert ack["type"] == "ack", ack
    await client.expect(lambda f: f.type == "snapshot" and f.obj["table"] == "room_members"
                        and any(r["identity"] == client.identity for r in f.obj["rows"]))
    await client.expect(kind_of("room_layers"))  # the last message of a member's snapshot
    return ack


@contextlib.asynccontextmanager
async def room_of(server: str, n: int) -> AsyncIterator[tuple[str, list[Client]]]:
    async with open_clients(server, n) as clients:
        room_id = (await create(clients[0]))["room_id"]
        for c in clients[1:]:
            await join(c, room_id)
        yield room_id, clients


async def test_create_join_fan_out_one_row_per_frame(server: str, db: Pool) -> None:
    async with room_of(server, 4) as (room_id, (a, b, c, d)):
        # Everyone knows everyone: the last to join got the whole member list.
        snap = [f for f in d.received if f.type == "snapshot"
                and f.obj["table"] == "room_members"][-1]
        assert {r["identity"] for r in snap.obj["rows"]} == {x.identity for x in (a, b, c, d)}
        # Four members: a small room, everyone sends and gets the full layer.
        layers = [f for f in d.received if f.type == "room_layers"][-1]
        assert (layers.obj["full"], layers.obj["thumb"]) == (True, False)
        for seq in range(5):
            await a.send_media("video", room_video(room_id, seq), JPEG)
        for receiver in (b, c, d):
            got = [await receiver.expect(lambda f: f.kind == "video") for _ in range(5)]
            assert [f.obj["seq"] for f in got] == list(range(5))
            assert all(f.obj["from"] == a.identity and f.obj["room_id"] == room_id
                       and f.obj["layer"] == "full" and f.payload == JPEG for f in got)
        rows = (await db.execute("SELECT count(*), count(DISTINCT seq) FROM room_video_frames "
                                 "WHERE room_id = $1", [room_id])).rows
        assert rows == [(5, 5)]  # written once, whatever the number of receivers
        assert not [f for f in a.received if f.kind == "video"]  # never echoed


async def test_media_sent_right_after_the_join_ack_is_routed(server: str) -> None:
    """The join is acked once this relay has seen the membership in the stream, so a client
    may send at once, without waiting for its room snapshot."""
    async with open_clients(server, 2) as (a, b):
        room_id = (await create(a))["room_id"]
        ack = await b.request({"type": "join_room", "room_id": room_id})
        assert ack["type"] == "ack", ack
        await b.send_media("audio", room_audio(room_id, 0), PCM)
        await b.send_media("video", room_video(room_id, 0), JPEG)
        got = await a.expect(lambda f: f.kind == "video")
        assert got.obj["from"] == b.identity and got.payload == JPEG
        await b.request({"type": "send_room_message", "room_id": room_id, "text": "fence"})
        await b.expect(event("insert", "room_messages", text="fence"))
        assert not [f for f in b.received if f.type == "error"]


async def test_bystander_gets_nothing_and_non_members_are_refused(server: str) -> None:
    async with room_of(server, 3) as (room_id, (a, b, c)), open_clients(server, 1) as (x,):
        await a.request({"type": "send_room_message", "room_id": room_id, "text": "secret"})
        await a.send_media("video", room_video(room_id, 1), JPEG)
        await a.send_media("audio", room_audio(room_id, 1), PCM)
        await b.expect(event("insert", "room_messages", text="secret"))
        await b.expect(lambda f: f.kind == "audio")
        # The bystander tries to join in without being a member.
        assert (await x.request({"type": "send_room_message", "room_id": room_id,
                                 "text": "hi"}))["message"] == w.ERR_NOT_MEMBER
        await x.send_media("video", room_video(room_id, 9), JPEG)
        err = await x.expect(reply_to("send_video_frame"))
        assert err.obj["message"] == w.ERR_NOT_MEMBER
        await x.send_media("audio", room_audio(room_id, 9), PCM)
        err = await x.expect(reply_to("send_audio_frame"))
        assert err.obj["message"] == w.ERR_NOT_MEMBER
        for t in ("leave_room", "set_room_state", "pin"):
            msg: dict[str, Any] = {"type": t, "room_id": room_id}
            if t == "set_room_state":
                msg["mic"] = False
            assert (await x.request(msg))["message"] == w.ERR_NOT_MEMBER, t
        # Members saw none of the bystander's frames; the bystander saw nothing of the room.
        await a.request({"type": "send_room_message", "room_id": room_id, "text": "fence"})
        await c.expect(event("insert", "room_messages", text="fence"))
        for member in (b, c):
            assert not [f for f in member.received if f.is_media and f.obj["from"] == x.identity]
        leaked = [f for f in x.received if f.is_media or (
            f.type in ("insert", "update", "delete", "snapshot")
            and str(f.obj.get("table", "")).startswith("room"))
            or f.type in ("room_layers", "room_speaker")]
        assert leaked == []


async def test_private_room_needs_the_key_or_an_invitation(server: str) -> None:
    async with open_clients(server, 4) as (a, b, c, d):
        ack = await create(a, "private one", private=True)
        room_id, key = ack["room_id"], ack["key"]
        assert len(key) >= 16
        assert (await b.request({"type": "join_room", "room_id": room_id}))["message"] \
            == w.ERR_ROOM_KEY
        assert (await b.request({"type": "join_room", "room_id": room_id, "key": "nope"})
                )["message"] == w.ERR_ROOM_KEY
        assert (await join(b, room_id, key))["key"] == key
        # An invitation lets c in without the key, and c then learns the key for its link.
        assert (await a.request({"type": "invite_to_room", "room_id": room_id,
                                 "target": c.identity}))["type"] == "ack"
        invite = await c.expect(event("insert", "room_invites", invitee=c.identity))
        assert invite.obj["row"]["room_name"] == "private one"
        assert invite.obj["row"]["inviter"] == a.identity
        assert (await join(c, room_id))["key"] == key
        await c.expect(event("delete", "room_invites", invitee=c.identity))
        # d was invited and declines.
        await b.request({"type": "invite_to_room", "room_id": room_id, "target": d.identity})
        await d.expect(event("insert", "room_invites", invitee=d.identity))
        assert (await d.request({"type": "decline_room_invite", "room_id": room_id})
                )["type"] == "ack"
        assert (await d.request({"type": "decline_room_invite", "room_id": room_id})
                )["message"] == w.ERR_INVITE_NOT_FOUND


async def test_one_call_or_room_at_a_time(server: str) -> None:
    async with open_clients(server, 4) as (a, b, c, d):
        room_id = (await create(a))["room_id"]
        await setup_call(c, d)
        assert (await c.request({"type": "join_room", "room_id": room_id}))["message"] \
            == w.ERR_BUSY
        assert (await a.request({"type": "create_room", "name": "second"}))["message"] \
            == w.ERR_BUSY
        reply = await b.request({"type": "request_call", "target": a.identity,
                                 "call_type": "Video"})
        assert reply["message"] == "Caller or callee is already in a call"


async def test_leave_remove_and_the_empty_room_ends(server: str, db: Pool) -> None:
    async with room_of(server, 3) as (room_id, (a, b, c)):
        assert (await b.request({"type": "remove_from_room", "room_id": room_id,
                                 "target": c.identity}))["message"] == w.ERR_ONLY_CREATOR
        assert (await a.request({"type": "remove_from_room", "room_id": room_id,
                                 "target": c.identity}))["type"] == "ack"
        await c.expect(event("delete", "room_members", identity=c.identity))
        await b.expect(event("delete", "room_members", identity=c.identity))
        await c.send_media("video", room_video(room_id, 1), JPEG)
        assert (await c.expect(reply_to("send_video_frame"))).obj["message"] == w.ERR_NOT_MEMBER
        assert (await a.request({"type": "leave_room", "room_id": room_id}))["type"] == "ack"
        await b.expect(event("delete", "room_members", identity=a.identity))
        await b.request({"type": "invite_to_room", "room_id": room_id, "target": c.identity})
        await c.expect(event("insert", "room_invites", invitee=c.identity))
        assert (await b.request({"type": "leave_room", "room_id": room_id}))["type"] == "ack"
        await b.expect(event("delete", "room_members", identity=b.identity))
        # The room ended with its last member; the invitation waiting in it went too.
        await c.expect(event("delete", "room_invites", invitee=c.identity))
        assert (await db.execute("SELECT count(*) FROM rooms")).rows == [(0,)]
        assert (await c.request({"type": "join_room", "room_id": room_id}))["message"] \
            == w.ERR_ROOM_NOT_FOUND


async def test_disconnect_leaves_the_room(server: str, db: Pool) -> None:
    async with open_clients(server, 1) as (a,):
        async with open_clients(server, 1) as (b,):
            room_id = (await create(a))["room_id"]
            await join(b, room_id)
        await a.expect(event("delete", "room_members", identity=b.identity))
        assert (await db.execute("SELECT identity FROM room_members")).rows == [(a.identity,)]


async def test_member_state_pins_and_room_chat_reach_members(server: str) -> None:
    async with room_of(server, 3) as (room_id, (a, b, c)):
        assert (await b.request({"type": "set_room_state", "room_id": room_id, "mic": False,
                                 "hand": True}))["type"] == "ack"
        for member in (a, c):
            upd = await member.expect(event("update", "room_members", identity=b.identity))
            assert (upd.obj["row"]["mic"], upd.obj["row"]["hand"]) == (False, True)
        assert (await c.request({"type": "pin", "room_id": room_id, "target": b.identity})
                )["type"] == "ack"
        await a.expect(event("update", "room_members", identity=c.identity, pinned=b.identity))
        assert (await c.request({"type": "pin", "room_id": room_id, "target": None})
                )["type"] == "ack"
        await a.expect(event("update", "room_members", identity=c.identity, pinned=None))


async def test_large_room_sends_thumbnails_and_the_speaker_at_full_size(server: str) -> None:
    async with room_of(server, 6) as (room_id, clients):
        a, b, *rest = clients
        # A fence: the chat message travels the stream after every join.
        await a.request({"type": "send_room_message", "room_id": room_id, "text": "fence"})
        for c in clients:
            await c.expect(event("insert", "room_messages", text="fence"))
        latest: dict[str, Frame] = {}
        for c in clients:
            latest[c.identity] = [f for f in c.received if f.type == "room_layers"][-1]
        # Nobody has spoken: everyone's main is the first to join (a); a's main is b.
        assert latest[a.identity].obj["full"] is True
        assert latest[b.identity].obj["full"] is True
        assert all(latest[c.identity].obj == {"type": "room_layers", "room_id": room_id,
                                              "full": False, "thumb": True} for c in rest)
        # c starts speaking: it becomes the speaker and is told to send its full layer.
        speaker = rest[0]
        for seq in range(12):
            await speaker.send_media("audio", room_audio(room_id, seq, rms=0.4), PCM)
            await trio.sleep(0.05)
        await speaker.expect(lambda f: f.type == "room_layers" and f.obj["full"]
                             and f.obj["thumb"])
        await a.expect(lambda f: f.type == "room_speaker"
                       and f.obj["speaker"] == speaker.identity)
        # Its full frames go to everyone whose main it is: all but itself.
        await speaker.send_media("video", room_video(room_id, 1, "full"), JPEG)
        for c in clients:
            if c is not speaker:
                got = await c.expect(lambda f: f.kind == "video" and f.obj["layer"] == "full")
                assert got.obj["from"] == speaker.identity
        # A silent member's thumbnail goes to everyone else.
        quiet = rest[1]
        await quiet.send_media("video", room_video(room_id, 1, "thumb"), JPEG)
        for c in clients:
            if c is not quiet:
                got = await c.expect(lambda f: f.kind == "video" and f.obj["layer"] == "thumb")
                assert got.obj["from"] == quiet.identity
