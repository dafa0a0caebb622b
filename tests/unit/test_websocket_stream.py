"""A client streaming without pause for longer than the message deadline is not cut off, even
when the reads split every message (the deadline runs from the start of the unfinished
message, not from the first message of the stream)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

from pgcall.config import WsLimits
from pgcall.web.frameguard import FrameGuard
from pgcall.web.websocket import ServerWebSocket


def client_frames(n: int, size: int) -> list[bytes]:
    conn = Connection(ConnectionType.CLIENT)
    return [conn.send(BytesMessage(data=bytes([i % 256]) * size)) for i in range(n)]


def test_the_guard_counts_the_messages_begun() -> None:
    frames = b"".join(client_frames(3, 300))
    guard = FrameGuard(1000)
    guard.feed(frames[:10])
    assert (guard.messages, guard.mid_message) == (1, True)
    guard.feed(frames[10:])
    assert (guard.messages, guard.mid_message) == (3, False)


async def test_continuous_stream_split_mid_message_outlives_the_deadline(
        autojump_clock: Any) -> None:
    limits = WsLimits(message_timeout_s=1.0, idle_timeout_s=30.0)
    client_end, server_end = trio.testing.memory_stream_pair()
    ws = ServerWebSocket(server_end, Connection(ConnectionType.SERVER), limits)
    stream = b"".join(client_frames(60, 5000))
    chunk = 7919  # never a frame boundary: every read ends inside a message

    async def send() -> None:
        for at in range(0, len(stream), chunk):
            await client_end.send_all(stream[at:at + chunk])
            await trio.sleep(0.1)  # 3.8 s of streaming in all

    got = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        for _ in range(60):
            got.append(await ws.receive())
    assert [m[0] for m in got] == [i % 256 for i in range(60)]
    assert all(len(m) == 5000 for m in got)
    assert trio.current_time() > 3 * limits.message_timeout_s
