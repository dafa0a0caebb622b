"""Checklist §10 "Media" against a running pgcall (protocol.md §3.1, §4.6): audio and video
relayed through ``audio_frames``/``video_frames`` to the peer only, pg-relay's checks and error
strings, and frames written straight into the tables by another process (variant R's AI
worker), plus ``ai_transcripts`` and an ``is_ai`` user that can be called.

"Nobody else got it" is checked with a fence (``wsclient.fence``): a chat row committed after
the frame reaches every client after anything the frame caused, so a frame, echo or ack absent
before the fence was never sent.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import trio

from .polling import poll_until
from .wsclient import (
    audio_header,
    event,
    fence,
    media,
    open_clients,
    random_identity,
    reply_to,
    ring,
    setup_call,
    video_header,
)

DEADLINE_S = 20.0
STORE_WAIT_S = 4.0  # the reaper deletes a frame 5 s after it is written
AUDIO_KEYS = ["session_id", "from", "seq", "sample_rate", "channels", "rms"]
VIDEO_KEYS = ["session_id", "from", "seq", "width", "height"]
AUDIO_ERR = "send_audio_frame"
VIDEO_ERR = "send_video_frame"


def jpeg(size: int) -> bytes:
    return b"\xff\xd8" + os.urandom(size - 2)


def error(req_type: str, message: str) -> dict[str, str]:
    return {"type": "error", "req_type": req_type, "message": message}


def replies(frames: list[Any]) -> list[Any]:
    return [f for f in frames if f.type in ("ack", "error")]


async def test_audio_reaches_only_the_peer(server: str, db: Any) -> None:
    payloads = [os.urandom(1600) for _ in range(10)]
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            session_id = await setup_call(a, b, "Voice")
            for seq, payload in enumerate(payloads):
                header = audio_header(session_id, b.identity, seq, rms=0.012345678901)
                header["from"] = c.identity  # the server sets `from`, whatever a client says
                await a.send_media("audio", header, payload)
            got = [await b.expect(media("audio")) for _ in payloads]
            seen_a, seen_c = await fence(db, a, c)
    for seq, (frame, payload) in enumerate(zip(got, payloads, strict=True)):
        assert frame.tag == 0x01
        assert list(frame.obj) == AUDIO_KEYS  # pg-relay's keys and order; no `to`
        assert frame.obj == {"session_id": session_id, "from": a.identity, "seq": seq,
                             "sample_rate": 16000, "channels": 1, "rms": 0.012345679}
        assert frame.payload == payload  # byte-identical, in order
    # No echo and no ack for the sender; nothing for the bystander.
    assert not [f for f in seen_a if f.is_media] and not replies(seen_a)
    assert not [f for f in seen_c if f.is_media]


async def test_audio_errors(server: str, db: Any) -> None:
    def audio_error(message: str) -> dict[str, str]:
        return error(AUDIO_ERR, message)

    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            session_id = await ring(a, b, "Voice")
            await a.send_media("audio", audio_header(session_id, b.identity, 0), b"\0" * 8)
            assert await a.reply(AUDIO_ERR) == audio_error("Call is not active")
            await a.send_media("audio", audio_header(str(uuid.uuid4()), b.identity, 0), b"")
            assert await a.reply(AUDIO_ERR) == audio_error("Call session not found")
            header = audio_header(session_id, b.identity, 0)
            del header["session_id"]
            await a.send_media("audio", header, b"")
            assert await a.reply(AUDIO_ERR) == audio_error("Call session not found")

            assert (await b.request({"type": "accept_call", "session_id": session_id}))[
                "type"] == "ack"
            for client in (a, b):
                await client.expect(event("update", "call_sessions", state="Active"))
            # `to` must equal the peer exactly (case-sensitive); the sender must take part.
            for sender, to in ((a, c.identity), (a, b.identity.upper()), (a, a.identity),
                               (c, b.identity), (c, a.identity)):
                await sender.send_media("audio", audio_header(session_id, to, 1), b"\0\0")
                assert await sender.reply(AUDIO_ERR) == audio_error("Invalid recipient")
            await a.send_media("audio", audio_header(session_id, b.identity, 2),
                               b"\1" * 64001)
            assert await a.reply(AUDIO_ERR) == audio_error("Audio frame too large")
            # Exactly 64000 bytes is accepted and relayed.
            biggest = os.urandom(64000)
            await a.send_media("audio", audio_header(session_id, b.identity, 3), biggest)
            frame = await b.expect(media("audio", seq=3))
            assert frame.payload == biggest
            seen_a, seen_b = await fence(db, a, b)
    assert not replies(seen_a)
    assert not [f for f in seen_b if f.is_media]  # none of the refused frames got through


async def test_video_relay_and_errors(server: str, db: Any) -> None:
    def video_error(message: str) -> dict[str, str]:
        return error(VIDEO_ERR, message)

    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 3) as (a, b, c):
            voice = await setup_call(a, b, "Voice")
            await a.send_media("video", video_header(voice, b.identity, 0), jpeg(100))
            assert await a.reply(VIDEO_ERR) == video_error("Not a video call")
            assert (await a.request({"type": "end_call", "session_id": voice}))["type"] == "ack"
            for client in (a, b):
                await client.expect(event("delete", "call_sessions", session_id=voice))

            session_id = await ring(a, b, "Video")
            await a.send_media("video", video_header(session_id, b.identity, 0), jpeg(100))
            assert await a.reply(VIDEO_ERR) == video_error("Call is not active")
            assert (await b.request({"type": "accept_call", "session_id": session_id}))[
                "type"] == "ack"
            for client in (a, b):
                await client.expect(event("update", "call_sessions", state="Active"))

            await a.send_media("video", video_header(str(uuid.uuid4()), b.identity, 0),
                               jpeg(100))
            assert await a.reply(VIDEO_ERR) == video_error("Call session not found")
            await c.send_media("video", video_header(session_id, b.identity, 0), jpeg(100))
            assert await c.reply(VIDEO_ERR) == video_error("Invalid recipient")
            await a.send_media("video", video_header(session_id, c.identity, 0), jpeg(100))
            assert await a.reply(VIDEO_ERR) == video_error("Invalid recipient")
            # 512001 bytes fits in a WebSocket message (600 KiB) but not in a video frame.
            await a.send_media("video", video_header(session_id, b.identity, 0), jpeg(512001))
            assert await a.reply(VIDEO_ERR) == video_error("Video frame too large")

            sent = [jpeg(30000) for _ in range(5)] + [jpeg(512000)]
            for seq, payload in enumerate(sent):
                await a.send_media("video", video_header(session_id, b.identity, seq), payload)
            got = [await b.expect(media("video")) for _ in sent]
            back = jpeg(2000)
            await b.send_media("video", video_header(session_id, a.identity, 0), back)
            from_b = await a.expect(media("video"))
            seen_a, seen_c = await fence(db, a, c)
    for seq, (frame, payload) in enumerate(zip(got, sent, strict=True)):
        assert frame.tag == 0x02
        assert list(frame.obj) == VIDEO_KEYS
        assert frame.obj == {"session_id": session_id, "from": a.identity, "seq": seq,
                             "width": 640, "height": 360}
        assert frame.payload == payload
    assert from_b.obj["from"] == b.identity and from_b.payload == back
    assert not [f for f in seen_a if f.is_media] and not replies(seen_a)
    assert not [f for f in seen_c if f.is_media]


async def test_relayed_session_id_is_canonical_lower_case(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            session_id = await setup_call(a, b, "Video")
            await a.send_media("audio", audio_header(session_id.upper(), b.identity, 1), b"ab")
            await a.send_media("video", video_header(session_id.upper(), b.identity, 1),
                               jpeg(64))
            audio = await b.expect(media("audio"))
            video = await b.expect(media("video"))
    assert session_id == session_id.lower()
    assert audio.obj["session_id"] == session_id
    assert video.obj["session_id"] == session_id


async def test_frames_inserted_by_another_process_reach_to_id(server: str, db: Any) -> None:
    sender, session_id = random_identity(), uuid.uuid4()
    pcm, picture = os.urandom(2400), jpeg(5000)
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (b, c):
            await db.execute(
                "INSERT INTO audio_frames (session_id, from_id, to_id, seq, sample_rate, "
                "channels, rms, pcm16le) VALUES ($1, $2, $3, 5, 24000, 1, 0.5, $4)",
                [session_id, sender, b.identity, pcm])
            await db.execute(
                "INSERT INTO video_frames (session_id, from_id, to_id, seq, width, height, jpeg)"
                " VALUES ($1, $2, $3, 6, 320, 180, $4)",
                [session_id, sender, b.identity, picture])
            audio = await b.expect(media("audio"))
            video = await b.expect(media("video"))
            (seen_c,) = await fence(db, c)
    assert audio.obj == {"session_id": str(session_id), "from": sender, "seq": 5,
                         "sample_rate": 24000, "channels": 1, "rms": 0.5}
    assert audio.payload == pcm
    assert video.obj == {"session_id": str(session_id), "from": sender, "seq": 6,
                         "width": 320, "height": 180}
    assert video.payload == picture
    assert not [f for f in seen_c if f.is_media]


async def test_ai_user_and_transcripts(server: str, db: Any) -> None:
    """Variant R's AI worker: a user row with is_ai, calls it accepts by SQL, audio it inserts,
    and transcripts; pgcall relays all of it (§1.1, §6, §7.1)."""
    ai = "0" * 63 + "1"
    reply_pcm = os.urandom(2400)
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, c):
            await db.execute("INSERT INTO users (identity, nickname, is_ai) "
                             "VALUES ($1, 'AI Assistant', TRUE)", [ai])
            for client in (a, c):
                row = (await client.expect(event("insert", "users", identity=ai))).obj["row"]
                assert row["is_ai"] is True
            # Variant R sends no call_type.
            assert await a.request({"type": "request_call", "target": ai}) \
                == {"type": "ack", "req_type": "request_call"}
            row = (await a.expect(event("insert", "call_sessions", callee=ai))).obj["row"]
            session_id = row["session_id"]
            # The worker auto-accepts by SQL, bypassing the relay.
            await db.execute("UPDATE call_sessions SET state = 'Active', answered_at = now() "
                             "WHERE session_id = $1", [uuid.UUID(session_id)])
            await a.expect(event("update", "call_sessions", session_id=session_id,
                                 state="Active"))
            # The caller's audio is accepted (stored for the worker to read)...
            await a.send_media("audio", audio_header(session_id, ai, 0), b"\0" * 1600)
            # The writer commits it a moment after the session accepts it: the count is read
            # as soon as the row is there, not once at the end of the test (and the reaper).
            stored: list[int] = []

            async def audio_stored() -> bool:
                stored.append((await db.execute(
                    "SELECT count(*) FROM audio_frames WHERE from_id = $1 AND to_id = $2",
                    [a.identity, ai])).rows[0][0])
                return stored[-1] >= 1

            await poll_until(audio_stored, STORE_WAIT_S)
            # ...and the worker's audio, inserted by SQL, reaches the caller.
            await db.execute(
                "INSERT INTO audio_frames (session_id, from_id, to_id, seq, sample_rate, "
                "channels, rms, pcm16le) VALUES ($1, $2, $3, 0, 24000, 1, 0.1, $4)",
                [uuid.UUID(session_id), ai, a.identity, reply_pcm])
            frame = await a.expect(media("audio", **{"from": ai}))
            assert frame.payload == reply_pcm and frame.obj["session_id"] == session_id

            # Transcripts are broadcast: insert, update, delete.
            await db.execute("INSERT INTO ai_transcripts (session_id, role, text) "
                             "VALUES ($1, 'human', 'hello')", [uuid.UUID(session_id)])
            ids = set()
            for client in (a, c):
                row = (await client.expect(event("insert", "ai_transcripts"))).obj["row"]
                assert (row["session_id"], row["role"], row["text"]) \
                    == (session_id, "human", "hello")
                assert row["id"].isdigit()
                ids.add(row["id"])
            (tid,) = ids
            await db.execute("UPDATE ai_transcripts SET text = 'hello!' WHERE id = $1",
                             [int(tid)])
            await db.execute("DELETE FROM ai_transcripts WHERE id = $1", [int(tid)])
            for client in (a, c):
                await client.expect(event("update", "ai_transcripts", id=tid, text="hello!"))
                await client.expect(event("delete", "ai_transcripts", id=tid))
            (seen_a,) = await fence(db, a)
    assert not [f for f in seen_a if reply_to(AUDIO_ERR)(f)]
    assert stored[-1] == 1
