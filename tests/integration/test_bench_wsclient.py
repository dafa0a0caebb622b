"""The load generator's WebSocket client (``pgcall.bench.wsclient``) against a server on
loopback: trio-websocket's server, an independent implementation of RFC 6455, so that both
sides of the handshake, the framing and the close are not pgcall's own code checked against
itself. Timeouts run on trio's autojump clock (no waiting)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed as ServerClosed
from trio_websocket import WebSocketRequest, serve_websocket
from wsproto.handshake import generate_accept_token

from pgcall.bench.wsclient import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    open_ws,
)

Handler = Callable[[WebSocketRequest], Awaitable[None]]
LIMITS = {"connect_timeout": 5.0, "disconnect_timeout": 5.0, "max_message": 1 << 20}


@contextlib.asynccontextmanager
async def _serve(handler: Handler) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(lambda task_status=trio.TASK_STATUS_IGNORED: serve_websocket(
            handler, "127.0.0.1", 0, ssl_context=None, max_message_size=8 << 20,
            task_status=task_status))
        yield f"ws://127.0.0.1:{server.port}/path?x=1"
        nursery.cancel_scope.cancel()


async def test_messages_both_ways_whole_and_in_order() -> None:
    seen: list[bytes | str] = []

    async def echo(request: WebSocketRequest) -> None:
        assert request.path == "/path?x=1"
        ws = await request.accept()
        try:
            while True:
                message = await ws.get_message()
                seen.append(message)
                await ws.send_message(message)
        except ServerClosed:
            pass

    big = os.urandom(300_000)  # more than one read: assembled from several wsproto events
    async with _serve(echo) as url:
        async with open_ws(url, **LIMITS) as ws:
            for message in (b"\x01one", "two", big, b""):
                await ws.send_message(message)
            assert [await ws.get_message() for _ in range(4)] == [b"\x01one", "two", big, b""]
    assert seen == [b"\x01one", "two", big, b""]


async def test_concurrent_senders_never_interleave_frames() -> None:
    received: list[bytes] = []
    all_in = trio.Event()

    async def collect(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                received.append(await ws.get_message())  # type: ignore[arg-type]
                if len(received) == 80:
                    all_in.set()
        except ServerClosed:
            pass

    async def sender(ws: object, tag: int) -> None:
        for i in range(20):
            await ws.send_message(bytes([tag, i]) * 40_000)  # type: ignore[attr-defined]

    async with _serve(collect) as url:
        async with open_ws(url, **LIMITS) as ws, trio.open_nursery() as nursery:
            for tag in range(4):
                nursery.start_soon(sender, ws, tag)
        with trio.fail_after(5):
            await all_in.wait()
    assert len(received) == 80
    for message in received:  # each message is one sender's, whole
        assert len(message) == 80_000 and message == message[:2] * 40_000
    for tag in range(4):  # and each sender's arrive in its order
        assert [m[1] for m in received if m[0] == tag] == list(range(20))


async def test_pings_are_answered() -> None:
    answered = trio.Event()

    async def pinger(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.ping(b"are you there")  # returns once the pong came
        answered.set()
        await ws.send_message(b"done")
        await trio.sleep_forever()

    async with _serve(pinger) as url:
        async with open_ws(url, **LIMITS) as ws:
            with trio.fail_after(5):  # read on: the ping is answered meanwhile
                assert await ws.get_message() == b"done"
    assert answered.is_set()


async def test_the_servers_close_comes_after_what_it_sent_before() -> None:
    async def closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(b"last words")
        await ws.aclose(4001, "Replaced by new connection")

    async with _serve(closer) as url:
        async with open_ws(url, **LIMITS) as ws:
            assert await ws.get_message() == b"last words"
            with pytest.raises(ConnectionClosed) as caught:
                await ws.get_message()
            assert (caught.value.reason.code, caught.value.reason.reason) == \
                (4001, "Replaced by new connection")
            with pytest.raises(ConnectionClosed):
                await ws.send_message(b"too late")


async def test_leaving_closes_with_a_normal_closure() -> None:
    codes: list[int | None] = []
    closed = trio.Event()

    async def listener(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ServerClosed as exc:
            codes.append(exc.reason.code)
            closed.set()

    async with _serve(listener) as url:
        async with open_ws(url, **LIMITS):
            pass
        with trio.fail_after(5):
            await closed.wait()
    assert codes == [1000]


async def test_a_message_over_the_limit_ends_the_connection() -> None:
    async def flood(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(b"x" * 2_000_000)
        await trio.sleep_forever()

    async with _serve(flood) as url:
        async with open_ws(url, **LIMITS) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.get_message()
            assert caught.value.reason.code == 1009


async def test_a_rejected_handshake_names_the_status() -> None:
    async def refuse(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"no")

    async with _serve(refuse) as url:
        with pytest.raises(ConnectionRejected) as caught:
            async with open_ws(url, **LIMITS):
                pass
        assert caught.value.status_code == 403


async def _silent_server(nursery: trio.Nursery, answer_handshake: bool,
                         then: bytes = b"") -> int:
    """A TCP server that never answers (the handshake, or after it, the close); ``then``:
    bytes sent in the same write as the handshake's answer."""
    async def handler(stream: trio.SocketStream) -> None:
        if answer_handshake:
            request = await stream.receive_some(65536)
            assert b"Upgrade: websocket" in request
            key = next(line.split(b": ", 1)[1] for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                                  + generate_accept_token(key) + b"\r\n\r\n" + then)
        await trio.sleep_forever()

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    return int(listeners[0].socket.getsockname()[1])


@pytest.mark.parametrize(("answer_handshake", "error"), [(False, ConnectionTimeout),
                                                          (True, DisconnectionTimeout)])
async def test_no_handshake_or_no_close_frame_in_time(
        autojump_clock: trio.testing.MockClock, answer_handshake: bool,
        error: type[Exception]) -> None:
    async with trio.open_nursery() as nursery:
        port = await _silent_server(nursery, answer_handshake)
        with pytest.raises(error):
            async with open_ws(f"ws://127.0.0.1:{port}/", **LIMITS):
                pass
        nursery.cancel_scope.cancel()


async def test_messages_in_the_same_read_as_the_handshake_are_delivered(
        autojump_clock: trio.testing.MockClock) -> None:
    """A server that greets at once (pgcall sends the client its identity): the greeting may
    come in the very read that ends the handshake, and nothing may follow it for a while."""
    greeting = b"\x82\x05hello" + b"\x81\x02hi"  # two unmasked frames: binary, then text
    async with trio.open_nursery() as nursery:
        port = await _silent_server(nursery, answer_handshake=True, then=greeting)
        with pytest.raises(DisconnectionTimeout):  # the silent server never closes
            async with open_ws(f"ws://127.0.0.1:{port}/", **LIMITS) as ws:
                with trio.fail_after(1):
                    assert [await ws.get_message(), await ws.get_message()] == [b"hello", "hi"]
        nursery.cancel_scope.cancel()


def test_only_websocket_urls() -> None:
    from pgcall.bench.wsclient import _endpoint
    assert _endpoint("ws://h:81/a?b=1") == ("h", 81, False, "h:81", "/a?b=1")
    assert _endpoint("wss://h") == ("h", 443, True, "h", "/")
    with pytest.raises(ValueError, match="not a ws"):
        _endpoint("http://h/")
