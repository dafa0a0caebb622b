"""Hostile clients against a running pgcall, while a bystander call goes on (docs/limits.md,
docs/threat-model.md, protocol.md §2, §3, §3.1).

Every test keeps a bystander call streaming video one way and audio the other way for the whole
hostile phase, and checks at the end that it was served throughout: its frames arrived in
order, only from its peer, and a chat round trip plus media both ways still work. Limits are
read from ``pgcall.ratelimit`` rather than repeated here. A flooding client must get an answer
to every message the server handled before closing it with 4029 (docs/limits.md: "A refused
message gets an error"), so the floods count the errors, not only the close code. The last
test runs every phase in a row and checks that the server's memory stayed bounded (the server
runs in this process).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
from trio_websocket import ConnectionClosed

from pgcall.pg.pool import Pool
from pgcall.relay.ratelimit import LIMITS, STRIKES

from .test_observability import rss_bytes
from .wsclient import (
    Client,
    audio_header,
    event,
    fence,
    media,
    open_client,
    open_clients,
    reply_to,
    setup_call,
    video_header,
)

DEADLINE_S = 60.0  # generous: a busy 2-core machine; a healthy run takes a few seconds
OVERSIZED = 700 * 1024  # over the 600 KiB WebSocket limit (WsLimits.max_message)
UNDER_LIMIT = 590 * 1024  # under it, but over video_max_frame_bytes
MALFORMED_COUNT = 5000
FLOOD_COUNT = 300
BYSTANDER_VIDEO_FPS = 10.0
BYSTANDER_AUDIO_FPS = 10.0
MIN_DELIVERED = 0.9  # share of the bystander's frames that must arrive while under attack
ROUNDS = 3
RSS_GROWTH_MAX = 100 * 1024 * 1024  # boundedness, not performance: generous on purpose
SQL_LOOKING = ("'); DROP TABLE users; --", '" OR 1=1 --')
MALFORMED = {"type": "error", "req_type": "unknown", "message": "Malformed message"}
RATE_LIMITED = "Rate limit exceeded"


def jpeg(size: int) -> bytes:
    return b"\xff\xd8" + os.urandom(size - 2)


def error(req_type: str, message: str) -> dict[str, str]:
    return {"type": "error", "req_type": req_type, "message": message}


def errors(frames: list[Any]) -> list[dict[str, Any]]:
    return [f.obj for f in frames if f.type == "error"]


def raw_media(tag: int, header: bytes, declared: int | None = None,
              payload: bytes = b"") -> bytes:
    """A media message with ``header`` as given (any bytes) and a declared length that may lie."""
    length = len(header) if declared is None else declared
    return bytes([tag]) + length.to_bytes(4, "big") + header + payload


# -- the bystander call ---------------------------------------------------------------------------


@attrs.define
class Bystander:
    """Two clients in an Active video call, streaming, and everything they received."""

    x: Client
    y: Client
    session_id: str
    stop: trio.Event = attrs.Factory(trio.Event)
    sent: dict[str, int] = attrs.Factory(lambda: {"video": 0, "audio": 0})
    # Per receiving client: (kind, header) of every media frame it got.
    got: dict[str, list[tuple[str, dict[str, Any]]]] = attrs.Factory(dict)
    # Identities whose users row was deleted (x sees every delete), and an event per change.
    gone: set[str] = attrs.Factory(set)
    gone_changed: trio.Event = attrs.Factory(trio.Event)

    async def wait_gone(self, identity: str) -> None:
        """Until the server has cleaned up after ``identity`` (its users row deleted)."""
        while identity not in self.gone:
            await self.gone_changed.wait()


async def _stream(by: Bystander, kind: str, fps: float) -> None:
    """x sends video to y, y sends audio to x, at a steady rate until ``stop``; never cancelled
    mid-message (that would cut a WebSocket frame in half)."""
    sender, to = (by.x, by.y) if kind == "video" else (by.y, by.x)
    start = trio.current_time()
    seq = 0
    while not by.stop.is_set():
        if kind == "video":
            await sender.send_media("video", video_header(by.session_id, to.identity, seq),
                                    jpeg(2000))
        else:
            await sender.send_media("audio", audio_header(by.session_id, to.identity, seq),
                                    b"\0\1" * 320)
        seq += 1
        by.sent[kind] = seq
        with trio.move_on_at(start + seq / fps):  # the pace, not a synchronisation
            await by.stop.wait()


async def _drain(by: Bystander, client: Client) -> None:
    """Read everything the client gets: media is recorded, the rest stays in its buffer."""
    got = by.got.setdefault(client.identity, [])
    while True:
        frame = await client._read()
        if frame.is_media:
            got.append((frame.kind, frame.obj))
            continue
        client.buffer.append(frame)
        if client is by.x and event("delete", "users")(frame):
            by.gone.add(frame.obj["old"]["identity"])
            by.gone_changed.set()
            by.gone_changed = trio.Event()


@contextlib.asynccontextmanager
async def bystander_call(server: str) -> AsyncIterator[Bystander]:
    """A streaming bystander call for the duration of the block; checked when it ends."""
    async with open_clients(server, 2) as (x, y):
        by = Bystander(x, y, await setup_call(x, y, "Video"))
        async with trio.open_nursery() as readers:
            readers.start_soon(_drain, by, x)
            readers.start_soon(_drain, by, y)
            async with trio.open_nursery() as streams:
                streams.start_soon(_stream, by, "video", BYSTANDER_VIDEO_FPS)
                streams.start_soon(_stream, by, "audio", BYSTANDER_AUDIO_FPS)
                yield by
                by.stop.set()
            readers.cancel_scope.cancel()
        await _check_bystander(by)


async def _check_bystander(by: Bystander) -> None:
    x, y = by.x, by.y
    # Still served: a chat round trip...
    text = f"still here {uuid.uuid4().hex}"
    assert await x.request({"type": "send_message", "text": text}) == {
        "type": "ack", "req_type": "send_message"}
    for c in (x, y):
        await c.expect(event("insert", "chat_messages", sender=x.identity, text=text))
    # ...and media both ways.
    last_video, last_audio = by.sent["video"], by.sent["audio"]
    payload = jpeg(3000)
    await x.send_media("video", video_header(by.session_id, y.identity, last_video), payload)
    assert (await y.expect(media("video", seq=last_video))).payload == payload
    await y.send_media("audio", audio_header(by.session_id, x.identity, last_audio), b"\2\3")
    assert (await x.expect(media("audio", seq=last_audio))).payload == b"\2\3"
    # Served throughout: in order, nearly all, and only the peer's frames of this call. Frames
    # that came after the readers stopped are in the buffers; none is still in flight, as the
    # last frames above came after them.
    for receiver, sender, kind in ((y, x, "video"), (x, y, "audio")):
        got = by.got[receiver.identity] + [(f.kind, f.obj) for f in receiver.buffer
                                           if f.is_media]
        assert all(h["from"] == sender.identity and h["session_id"] == by.session_id
                   and k == kind for k, h in got), got
        seqs = [h["seq"] for _, h in got]
        assert seqs == sorted(set(seqs)), "frames duplicated or out of order"
        assert len(seqs) >= MIN_DELIVERED * by.sent[kind], (kind, len(seqs), by.sent)


# -- hostile phases: each asserts what the server answered --------------------------------------


async def oversized_message(server: str, by: Bystander, db: Pool) -> None:
    async with open_client(server) as c:
        # Under the WebSocket limit but over the video limit: an error, the socket stays.
        await c.send_media("video", video_header(by.session_id, by.x.identity, 0),
                           jpeg(UNDER_LIMIT))
        assert await c.reply("send_video_frame") == error("send_video_frame",
                                                          "Video frame too large")
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            await c.send_raw(b"\x00" + b" " * OVERSIZED)
        code, _ = await c.expect_closed()
    assert code == 1009
    await by.wait_gone(c.identity)


def _malformed_messages() -> list[bytes]:
    """One of each way a message can break §2's framing."""
    return [
        b"",  # no tag
        b"\x07{}",  # unknown tag
        b"\x00{not json",  # tag 0, invalid JSON
        b"\x00[1,2]",  # tag 0, JSON but not an object
        b"\x01\x00\x00",  # media shorter than 5 bytes
        raw_media(1, b"{}", declared=0xFFFFFFFF),  # header length past the end
        raw_media(2, b"[]"),  # header not an object
    ]


async def malformed_flood(server: str, by: Bystander, db: Pool) -> None:
    kinds = _malformed_messages()
    async with open_client(server) as c:
        start = len(c.received)
        sent = 0
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            for i in range(MALFORMED_COUNT):
                await c.send_raw(kinds[i % len(kinds)])
                sent += 1
        code, reason = await c.expect_closed()
        replies = errors(c.received[start:])
    # Each message got "Malformed message" until the per-message limit refused them; then
    # "Rate limit exceeded" until the strikes ran out and the server closed with 4029.
    assert (code, reason) == (4029, RATE_LIMITED)
    refusal = error("unknown", RATE_LIMITED)
    assert refusal in replies, f"{len(replies)} replies to {sent} messages, none refused"
    first_refusal = replies.index(refusal)
    assert first_refusal >= LIMITS["message"].burst
    assert replies[:first_refusal] == [MALFORMED] * first_refusal
    assert all(r in (MALFORMED, error("unknown", RATE_LIMITED)) for r in replies), replies
    assert replies.count(error("unknown", RATE_LIMITED)) >= STRIKES.burst
    assert len(replies) <= sent
    await by.wait_gone(c.identity)


async def invalid_utf8(server: str, by: Bystander, db: Pool) -> None:
    bad = [
        b'\x00{"type":"send_message","text":"\xff\xfe"}',  # after tag 0
        b"\x00\xc3\x28",  # an invalid two-byte sequence
        raw_media(1, b'{"session_id":"\xed\xa0\x80"}'),  # an encoded surrogate, audio header
        raw_media(2, b'{"to":"\xc0\xaf"}', payload=b"\xff\xd8"),  # overlong, video header
    ]
    async with open_client(server) as c:
        for data in bad:
            await c.send_raw(data)
            assert (await c.expect(lambda f: f.type == "error")).obj == MALFORMED
        # The connection is still fine.
        assert await c.request({"type": "set_nickname", "nickname": "ok"}) == {
            "type": "ack", "req_type": "set_nickname"}


async def absurd_header_lengths(server: str, by: Bystander, db: Pool) -> None:
    header = json.dumps(video_header(by.session_id, by.y.identity, 1)).encode()
    cases = [
        raw_media(2, header, 0xFFFFFFFF, jpeg(100)),
        raw_media(1, header, 0xFFFFFFFF),
        raw_media(2, header, len(header) + 101, jpeg(100)),  # one past the end
        raw_media(2, header, 2**31, jpeg(100)),
        raw_media(1, header, 0, b"\0\0"),  # empty header: not JSON
    ]
    async with open_client(server) as c:
        for data in cases:
            await c.send_raw(data)
            assert (await c.expect(lambda f: f.type == "error")).obj == MALFORMED
        assert await c.request({"type": "send_message", "text": "fine"}) == {
            "type": "ack", "req_type": "send_message"}


async def non_uuid_session_ids(server: str, by: Bystander, db: Pool) -> None:
    not_found = "Call session not found"
    strings = ["", "x", "not-a-uuid", by.session_id + "0", by.session_id[:-1],
               "'; DELETE FROM call_sessions; --", "00000000-0000-0000-0000-00000000000g",
               "{" + by.session_id, "\u0661" * 32]
    async with open_client(server) as c:
        for req in ("accept_call", "decline_call", "end_call"):
            for sid in strings:
                assert await c.request({"type": req, "session_id": sid}) == error(
                    req, not_found), (req, sid)
            for value in (123, None, [by.session_id], {"id": by.session_id}, True):
                assert await c.request({"type": req, "session_id": value}) == error(
                    req, "Invalid field: session_id must be a string"), (req, value)
        for sid in [*strings, 123, None]:
            header = audio_header(by.session_id, by.x.identity, 0)
            header["session_id"] = sid
            await c.send_media("audio", header, b"\0\0")
            assert await c.reply("send_audio_frame") == error("send_audio_frame", not_found)
    rows = (await db.execute("SELECT session_id::text, state FROM call_sessions")).rows
    assert rows == [(by.session_id, "Active")]


async def sql_looking_text(server: str, by: Bystander, db: Pool) -> None:
    ack = {"type": "ack", "req_type": "set_nickname"}
    async with open_clients(server, 2) as (c, watcher):
        for nick in SQL_LOOKING:
            assert await c.request({"type": "set_nickname", "nickname": nick}) == ack
            # Broadcast verbatim, and stored verbatim.
            await watcher.expect(event("update", "users", identity=c.identity, nickname=nick))
            rows = (await db.execute("SELECT nickname FROM users WHERE identity = $1",
                                     [c.identity])).rows
            assert rows == [(nick,)]
        for text in SQL_LOOKING:
            assert await c.request({"type": "send_message", "text": text}) == {
                "type": "ack", "req_type": "send_message"}
            await watcher.expect(event("insert", "chat_messages", sender=c.identity,
                                       text=text))
        stored = (await db.execute("SELECT text FROM chat_messages WHERE sender = $1 "
                                   "ORDER BY id", [c.identity])).rows
        assert stored == [(t,) for t in SQL_LOOKING]
    # Every table is still there, with the bystanders in it.
    users = (await db.execute("SELECT identity FROM users")).rows
    assert {by.x.identity, by.y.identity} <= {u for (u,) in users}


async def chat_flood(server: str, by: Bystander, db: Pool) -> None:
    async with open_client(server) as c:
        start = len(c.received)
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            for i in range(FLOOD_COUNT):
                await c.send_control({"type": "send_message", "text": f"flood {i}"})
        code, reason = await c.expect_closed()
        replies = [f.obj for f in c.received[start:] if reply_to("send_message")(f)]
    assert (code, reason) == (4029, RATE_LIMITED)
    acks = replies.count({"type": "ack", "req_type": "send_message"})
    refused = replies.count(error("send_message", RATE_LIMITED))
    assert acks + refused == len(replies)  # nothing but acks and refusals
    assert acks >= LIMITS["chat"].burst
    assert refused >= STRIKES.burst
    assert replies.index(error("send_message", RATE_LIMITED)) >= LIMITS["chat"].burst
    # Exactly the acknowledged messages were stored.
    stored = (await db.execute("SELECT count(*) FROM chat_messages WHERE sender = $1",
                               [c.identity])).rows[0][0]
    assert stored == acks
    await by.wait_gone(c.identity)


async def foreign_media(server: str, by: Bystander, db: Pool) -> None:
    """A client outside the call knows its session_id and targets either participant."""
    refused = "Invalid recipient"
    async with open_client(server) as c:
        for seq, (to, spoofed) in enumerate(((by.x, by.y), (by.y, by.x))):
            header = video_header(by.session_id, to.identity, 10_000 + seq)
            header["from"] = spoofed.identity
            await c.send_media("video", header, jpeg(500))
            assert await c.reply("send_video_frame") == error("send_video_frame", refused)
            header = audio_header(by.session_id, to.identity, 10_000 + seq)
            header["from"] = spoofed.identity
            await c.send_media("audio", header, b"\0\0")
            assert await c.reply("send_audio_frame") == error("send_audio_frame", refused)
    # The participants' side is checked by the bystander: every frame they got was the peer's.


async def eavesdropper(server: str, by: Bystander, db: Pool) -> None:
    async with open_clients(server, 3) as (eve, p, q):
        # The bystander call, Active before eve came, is not in eve's snapshot.
        assert eve.snapshots["call_sessions"] == []
        session_id = await setup_call(p, q, "Video")
        await p.send_media("video", video_header(session_id, q.identity, 0), jpeg(800))
        await q.send_media("audio", audio_header(session_id, p.identity, 0), b"\0\0")
        await q.expect(media("video", seq=0))
        await p.expect(media("audio", seq=0))
        assert await p.request({"type": "end_call", "session_id": session_id}) == {
            "type": "ack", "req_type": "end_call"}
        for c in (p, q):
            await c.expect(event("delete", "call_sessions", session_id=session_id))
        # A token equal to somebody's identity is not their token.
        async with open_client(server, token=p.identity, snapshot=False) as mallory:
            assert mallory.identity != p.identity
        # Past the fence, anything the server would ever send eve about this has arrived.
        await fence(db, eve)
    assert not [f for f in eve.received if f.is_media]
    calls = [f.obj for f in eve.received if f.obj.get("table") == "call_sessions"]
    assert calls == [{"type": "snapshot", "table": "call_sessions", "rows": []}], calls


Phase = Callable[[str, Bystander, Pool], Awaitable[None]]
PHASES: list[Phase] = [
    oversized_message, malformed_flood, invalid_utf8, absurd_header_lengths,
    non_uuid_session_ids, sql_looking_text, chat_flood, foreign_media, eavesdropper,
]


@pytest.mark.parametrize("phase", PHASES, ids=[p.__name__ for p in PHASES])
async def test_hostile_client_leaves_the_bystander_call_served(server: str, db: Pool,
                                                               phase: Phase) -> None:
    with trio.fail_after(DEADLINE_S):
        async with bystander_call(server) as by:
            await phase(server, by, db)


async def test_all_phases_in_a_row_keep_memory_bounded(server: str, db: Pool) -> None:
    with trio.fail_after(ROUNDS * DEADLINE_S):
        async with bystander_call(server) as by:
            before = rss_bytes()
            for _ in range(ROUNDS):  # anything kept per hostile client would add up
                for phase in PHASES:
                    await phase(server, by, db)
            after = rss_bytes()
    assert after - before < RSS_GROWTH_MAX, (before, after)
