"""The direct path: a message put while the sender is idle is written at once by the task that
puts it (``Outbox.direct``, ``ServerWebSocket.send_now``), and what the socket does not take
at once is finished by the sender, before anything else, in order."""

from __future__ import annotations

import socket
from typing import Any

import trio
import trio.testing
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

from pgcall.relay.outbox import Outbox
from pgcall.web.websocket import ServerWebSocket


async def test_put_goes_direct_only_while_the_sender_is_idle(autojump_clock: Any) -> None:
    box = Outbox()
    went: list[bytes] = []
    accept = True

    def direct(data: bytes, stamp: float | None) -> bool:
        if accept:
            went.append(data)
        return accept

    box.direct = direct
    assert box.put("video", b"v0")  # nobody waits in get(): queued
    assert went == []
    got: list[bytes | None] = []

    async def sender() -> None:
        while True:
            got.append(await box.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.sleep(1)
        assert got == [b"v0"]  # the queued one through the sender
        assert box.put("audio", b"a1")  # the sender waits: direct
        assert box.put("state", b"s2")
        assert went == [b"a1", b"s2"]
        accept = False  # the socket is full: queued, and the sender woken for it
        assert box.put("video", b"v3")
        assert box.put("video", b"v4")  # behind v3, never ahead of it
        await trio.sleep(1)
        assert got == [b"v0", b"v3", b"v4"]
        assert went == [b"a1", b"s2"]
        nursery.cancel_scope.cancel()


def _read_messages(sock: socket.socket, count: int) -> list[bytes]:
    client = Connection(ConnectionType.CLIENT)
    out: list[bytes] = []
    parts = b""
    sock.settimeout(10)
    while len(out) < count:
        client.receive_data(sock.recv(1 << 20))
        for event in client.events():
            assert isinstance(event, BytesMessage)
            parts += event.data
            if event.message_finished:
                out.append(parts)
                parts = b""
    return out


async def test_what_the_socket_does_not_take_is_finished_first_by_the_writer() -> None:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    ws = ServerWebSocket(server, Connection(ConnectionType.SERVER))
    woken = []
    ws.on_control = lambda: woken.append(True)
    big, after, later = b"B" * 2_000_000, b"after", b"later"

    assert ws.send_now(big)  # far more than the buffers hold: partly written, the rest owed
    assert woken == [True]
    assert not ws.send_now(after)  # the rest of `big` is owed first: this one is the writer's
    async with trio.open_nursery() as nursery:
        reading = trio.Event()
        result: list[bytes] = []

        async def read() -> None:
            result.extend(await trio.to_thread.run_sync(_read_messages, b, 3))
            reading.set()

        nursery.start_soon(read)
        await ws.send_raw(ws.take_control())  # the writer, woken: the rest of `big`
        await ws.send(after)
        assert ws.send_now(later)  # nothing owed any more, the socket drained: direct again
        await reading.wait()
    assert result == [big, after, later]
    b.close()
    await server.aclose()


async def test_a_stream_that_is_not_a_plain_socket_never_goes_direct() -> None:
    server, _client = trio.testing.memory_stream_pair()
    ws = ServerWebSocket(server, Connection(ConnectionType.SERVER))
    assert not ws.send_now(b"x")
