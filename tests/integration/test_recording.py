"""Recording against a real pgcall and PostgreSQL (docs/recording.md): consent through the
clients' ``hello``, the indicator reaching every participant and nobody else, a recording's
frames surviving the reaper while others go, replay and listing for participants only, the
end of a call stopping its recording, deletion by its starter, and rooms."""

from __future__ import annotations

from typing import Any

import trio

from pgcall.pg.pool import Pool
from pgcall.wire import recording as w

from .test_security import serving, ws_base
from .wsclient import (
    Client,
    audio_header,
    event,
    open_client,
    open_clients,
    reply_to,
    setup_call,
    video_header,
)

JPEG = b"\xff\xd8" + b"\x33" * 400
PCM = b"\x01\x00" * 200
HELLO = {"type": "hello", "features": ["recording"]}


async def hello(*clients: Client) -> None:
    for c in clients:
        assert await c.request(HELLO) == {"type": "ack", "req_type": "hello",
                                          "features": ["recording"]}


async def stream(a: Client, b: Client, session_id: str, frames: int, first: int = 0) -> None:
    for seq in range(first, first + frames):
        await a.send_media("video", video_header(session_id, b.identity, seq), JPEG)
        await b.send_media("audio", audio_header(session_id, a.identity, seq), PCM)
        await trio.sleep(0.02)
    await b.expect(lambda f: f.kind == "video" and f.obj["seq"] == first + frames - 1)


async def count(db: Pool, sql: str, *params: Any) -> int:
    return int((await db.execute(sql, list(params))).rows[0][0])


async def test_recording_needs_everyone_able_to_show_the_indicator(db_dsn: str) -> None:
    async with serving(db_dsn) as running, open_clients(ws_base(running), 3) as (a, b, x):
        session_id = await setup_call(a, b, "Video")
        await hello(a)
        start = {"type": "start_recording", "session_id": session_id}
        assert (await a.request(start))["message"] == w.ERR_CONSENT  # b never said it can
        await hello(b)
        assert (await x.request(start))["message"] == w.ERR_NOT_PARTICIPANT
        ack = await a.request(start)
        assert ack["type"] == "ack" and len(ack["recording_id"]) == 36
        for c in (a, b):  # the indicator, at once, for both
            got = await c.expect(event("insert", "recordings", recording_id=ack["recording_id"]))
            assert sorted(got.obj["row"]["participants"]) == sorted([a.identity, b.identity])
            assert got.obj["row"]["started_by"] == a.identity
        assert (await b.request(start))["message"] == w.ERR_ALREADY
        await a.request({"type": "send_message", "text": "fence"})
        await x.expect(event("insert", "chat_messages", text="fence"))
        assert not [f for f in x.received if f.obj.get("table") == "recordings"]


async def test_recorded_frames_survive_the_reaper_others_do_not(db_dsn: str, db: Pool) -> None:
    async with serving(db_dsn, retain_s=0.5) as running, \
            open_clients(ws_base(running), 4) as (a, b, c, d):
        recorded = await setup_call(a, b, "Video")
        other = await setup_call(c, d, "Video")
        await hello(a, b)
        rid = (await a.request({"type": "start_recording", "session_id": recorded}))[
            "recording_id"]
        await stream(a, b, recorded, 10)
        await stream(c, d, other, 10)
        assert (await a.request({"type": "stop_recording", "session_id": recorded}))[
            "type"] == "ack"
        stopped = await b.expect(event("update", "recordings", recording_id=rid))
        assert stopped.obj["row"]["stopped_at"] is not None
        # The reaper (every 2 s) moves the recorded frames, then deletes the others.
        for _ in range(75):  # PostgreSQL offers no event: look every 0.2 s, 15 s at most
            if not await count(db, "SELECT count(*) FROM video_frames") + \
                    await count(db, "SELECT count(*) FROM audio_frames"):
                break
            await trio.sleep(0.2)
        assert await count(db, "SELECT count(*) FROM recorded_frames WHERE recording_id = $1 "
                           "AND kind = 'video'", rid) == 10
        assert await count(db, "SELECT count(*) FROM recorded_frames WHERE recording_id = $1 "
                           "AND kind = 'audio'", rid) == 10
        assert await count(db, "SELECT count(*) FROM recorded_frames") == 20


async def test_replay_list_and_delete_are_for_participants_only(db_dsn: str) -> None:
    async with serving(db_dsn) as running, open_clients(ws_base(running), 3) as (a, b, x):
        session_id = await setup_call(a, b, "Video")
        await hello(a, b)
        rid = (await a.request({"type": "start_recording", "session_id": session_id}))[
            "recording_id"]
        await stream(a, b, session_id, 6)
        # Replay while it goes on: the last seconds come from the live tables.
        await b.send_control({"type": "get_recording", "recording_id": rid, "from_ms": 0})
        ack = await b.expect(reply_to("get_recording"))
        assert ack.obj["type"] == "ack" and ack.obj["frames"] == 12
        replayed = [f for f in b.buffer if f.is_media and f.obj.get("recording_id") == rid]
        assert [f.obj["seq"] for f in replayed if f.kind == "video"] == list(range(6))
        assert all(f.payload == JPEG for f in replayed if f.kind == "video")
        ts = [f.obj["t"] for f in replayed]
        assert ts == sorted(ts) and ts[0] >= 0
        # The end of the call stops the recording.
        await a.request({"type": "end_call", "session_id": session_id})
        stopped = await b.expect(lambda f: f.type == "update" and f.obj.get("table") ==
                                 "recordings" and f.obj["row"]["stopped_at"], timeout_s=10)
        assert stopped.obj["row"]["recording_id"] == rid
        listed = (await b.request({"type": "list_recordings"}))["recordings"]
        assert [r["recording_id"] for r in listed] == [rid]
        assert listed[0]["kind"] == "call" and listed[0]["duration_ms"] > 0
        # Its size counts the frames of the last seconds too, not yet moved out of the live
        # tables: a recording just stopped does not show as empty.
        assert listed[0]["frames"] == 12 and listed[0]["bytes"] > 6 * len(JPEG)
        # A non-participant: nothing, whatever it asks.
        assert (await x.request({"type": "list_recordings"}))["recordings"] == []
        for req in ({"type": "get_recording", "recording_id": rid},
                    {"type": "delete_recording", "recording_id": rid}):
            assert (await x.request(req))["message"] == w.ERR_NOT_FOUND
        assert not [f for f in x.received if f.is_media]
        # Only who started it deletes it.
        assert (await b.request({"type": "delete_recording", "recording_id": rid}))[
            "message"] == w.ERR_ONLY_STARTER
        assert (await a.request({"type": "delete_recording", "recording_id": rid}))[
            "type"] == "ack"
        assert (await a.request({"type": "list_recordings"}))["recordings"] == []


async def test_a_recorded_room_takes_only_clients_that_show_the_indicator(db_dsn: str) -> None:
    async with serving(db_dsn) as running, open_clients(ws_base(running), 3) as (a, b, c):
        await hello(a, b)
        room_id = (await a.request({"type": "create_room", "name": "recorded",
                                    "call_type": "Video"}))["room_id"]
        assert (await b.request({"type": "join_room", "room_id": room_id}))["type"] == "ack"
        rid = (await a.request({"type": "start_recording", "room_id": room_id}))[
            "recording_id"]
        await b.expect(event("insert", "recordings", recording_id=rid))
        refused = await c.request({"type": "join_room", "room_id": room_id})
        assert refused["type"] == "error" and "recorded" in refused["message"]
        await hello(c)
        assert (await c.request({"type": "join_room", "room_id": room_id}))["type"] == "ack"
        joined = await c.expect(lambda f: f.obj.get("table") == "recordings" and
                                c.identity in (f.obj.get("row") or {}).get("participants", []))
        assert joined.type in ("update", "snapshot", "insert")
        async with open_client(ws_base(running)) as outsider:
            assert (await outsider.request({"type": "list_recordings"}))["recordings"] == []
