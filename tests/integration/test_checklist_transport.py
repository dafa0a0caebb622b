"""Checklist §10 "Transport" against a running pgcall: where upgrades are accepted, what plain
HTTP on ``/`` returns, and the framing of every server message (protocol.md §1.5, §2).

pgcall serves its frontend on ``/`` where pg-relay answered ``200 spacechat pg-relay``; that
difference is deliberate, so plain HTTP is checked for a 200 page, not for pg-relay's body.
Test policy: loopback, port 0, a deadline on every test, no sleeps: waiting for the expected
message is the synchronisation.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import trio

from .wsclient import (
    TAG_AUDIO,
    Client,
    audio_header,
    event,
    open_client,
    open_clients,
    setup_call,
)

DEADLINE_S = 20.0


async def http_get(ws_base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP/1.1 GET; (status, lower-cased headers, body)."""
    parts = urlsplit(ws_base)
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                              "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    return int(status_line.split()[1]), headers, body


async def test_plain_get_on_root_is_200(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        status, headers, body = await http_get(server, "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert body  # the frontend page


async def test_upgrade_on_root_and_on_any_path_and_token_is_honoured(server: str) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_client(server, path="/") as first:
            # Any other path is accepted too; an empty token counts as absent (§1.5).
            async with open_client(server, path="/anything/ws", token="") as other:
                assert other.identity != first.identity
                assert other.token != first.token
            token, identity = first.token, first.identity
        async with open_clients(server, 1) as (watcher,):
            # The first connection is gone (its user row too) before we come back with its token.
            if identity in {u["identity"] for u in watcher.snapshots["users"]}:
                await watcher.expect(event("delete", "users", identity=identity))
            async with open_client(server, path="/some/other/path", token=token) as again:
                assert again.identity == identity
                assert again.token == token


def _json_keys(frame_raw: bytes) -> list[str]:
    pairs = json.loads(frame_raw[1:].decode("utf-8"), object_pairs_hook=lambda p: p)
    return [k for k, _ in pairs]


async def test_every_server_message_is_binary_with_a_tag(server: str) -> None:
    # Produce every kind of server message: identity, snapshots, ack, error, insert, update,
    # delete and a media frame; each must have arrived as a binary frame (``Client`` fails the
    # test on a text frame) whose byte 0 is the tag.
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            await a.request({"type": "set_nickname", "nickname": "héllo ✓"})
            await a.request({"type": "set_nickname", "nickname": ""})
            await a.request({"type": "send_message", "text": "hi"})
            session_id = await setup_call(a, b)
            await a.send_media("audio", audio_header(session_id, b.identity, 0), b"\0\0")
            await b.expect(lambda f: f.tag == TAG_AUDIO)
            await a.request({"type": "end_call", "session_id": session_id})
            await b.expect(event("delete", "call_sessions", session_id=session_id))
            await a.expect(event("delete", "call_sessions", session_id=session_id))
    seen: set[str | None] = set()
    for client in (a, b):
        for frame in client.received:
            assert isinstance(frame.raw, bytes)
            assert frame.raw[0] == frame.tag
            if frame.tag == 0:
                # UTF-8 JSON straight after the tag: no length prefix, no terminator.
                assert frame.raw[1:2] == b"{"
                assert _json_keys(frame.raw)[0] == "type"
                seen.add(frame.type)
            else:
                seen.add(frame.kind)
    assert seen >= {"identity", "snapshot", "ack", "error", "insert", "update", "delete",
                    "audio"}


async def test_text_frame_is_read_like_a_binary_one(server: str) -> None:
    # pg-relay's `ws` handed text frames over as bytes and parsed them the same way (§2).
    with trio.fail_after(DEADLINE_S):
        async with open_client(server) as c:
            await c.send_raw('\x00{"type":"send_message","text":"as text"}')
            assert await c.reply("send_message") == {"type": "ack", "req_type": "send_message"}
            await c.expect(event("insert", "chat_messages", text="as text"))


async def _relay_raw(a: Client, b: Client, session_id: str, payload: bytes) -> bytes:
    """Send ``payload`` as audio from a to b; the raw bytes b receives."""
    await a.send_media("audio", audio_header(session_id, b.identity, 7, rms=0.5), payload)
    return (await b.expect(lambda f: f.tag == TAG_AUDIO)).raw


async def test_media_frame_layout(server: str) -> None:
    payload = bytes(range(256)) * 6  # every byte value, an even length (PCM16)
    with trio.fail_after(DEADLINE_S):
        async with open_clients(server, 2) as (a, b):
            session_id = await setup_call(a, b)
            raw = await _relay_raw(a, b, session_id, payload)
    # Tag, then the header length as an unsigned 32-bit big-endian integer (§2).
    assert raw[0] == 0x01
    hlen = int.from_bytes(raw[1:5], "big")
    header = json.loads(raw[5:5 + hlen].decode("utf-8"))
    assert header["session_id"] == session_id
    assert header["from"] == a.identity
    # The payload is everything after the header, byte for byte what the sender sent.
    assert raw[5 + hlen:] == payload
