"""``ServerWebSocket`` in virtual time: a wsproto client on one end of an in-memory stream, and
on the other pgcall's real front door, upgrade and ``run_session`` (with a fake store), so
the socket is read by the session's reading task and written by its sender, as in pgcall.

What is checked (docs/limits.md): pongs are answered and pings sent by the writer; a silent
peer is closed after ``idle_timeout_s``, an unfinished message ``message_timeout_s`` after its
first byte; the closing handshake, answered or not (TCP closes at once, or after
``close_timeout_s``), whoever starts it, and a peer that keeps TCP open after it; protocol
errors close with 1002/1007 and an oversized message with 1009, its rest unread; and that the
front door counts each failure by its cause. ``trio.testing.memory_stream_pair`` refuses two
tasks reading one stream at once (``BusyResourceError``), which pgcall must never do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
)

from pgcall.config import WsLimits
from pgcall.relay.hub import Hub
from pgcall.relay.session import SessionContext, run_session
from pgcall.web.frontdoor import FrontDoor
from pgcall.web.upgrade import Admission, Upgraded
from pgcall.web.websocket import ServerWebSocket
from tests.wsframes import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    binary,
    close_frame,
    frame,
    upgrade_request,
)

from .fakes import FakeStore, control, insert, settings, snapshot, txn, update, user

LIMITS = WsLimits()
StreamPair = Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]]


def play_upserts(hub: Hub, store: FakeStore) -> None:
    """The users upsert of ``connect_user`` comes back through the 'stream' at once."""

    def upsert(identity: str, at: dt.datetime) -> None:
        row = user(identity, at=at)
        change = update("users", row, None) if identity in hub.mirror.tables["users"] \
            else insert("users", row)
        hub.publish(txn(change))

    store.on_connect = upsert


class Counting(trio.abc.Stream):
    """The server's end of the connection, counting the bytes the server has read."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.received = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.stream.receive_some(max_bytes)
        self.received += len(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


class Peer:
    """The client: sends what a test says (wsproto frames or raw bytes) and records, with its
    virtual time, every event the server sends and the end of TCP. Answers pings and the
    server's close frame unless told not to."""

    def __init__(self, stream: trio.abc.Stream, start: float) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.start = start
        self.events: list[tuple[float, Event]] = []
        self.eof_at: float | None = None
        self.answer_pings = True
        self.answer_close = True
        self.changed = trio.Event()

    def now(self) -> float:
        return trio.current_time() - self.start

    async def send(self, data: bytes | Event) -> None:
        await self.stream.send_all(data if isinstance(data, bytes) else self.ws.send(data))

    async def _answer(self, event: Event) -> None:
        # The server may have closed TCP right after its frame: the answer is then too late.
        with contextlib.suppress(trio.BrokenResourceError):
            await self.send(event)

    async def run(self) -> None:
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.ClosedResourceError:
                return
            if not data:
                self.eof_at = self.now()
                self.changed.set()
                return
            self.ws.receive_data(bytes(data))
            for event in self.ws.events():
                self.events.append((self.now(), event))
                if isinstance(event, Ping) and self.answer_pings and self.open:
                    await self._answer(event.response())
                if isinstance(event, CloseConnection) and self.answer_close \
                        and self.ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._answer(event.response())
            self.changed.set()
            self.changed = trio.Event()

    @property
    def open(self) -> bool:
        return self.ws.state is ConnectionState.OPEN

    def of(self, kind: type[Event]) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind)]

    def messages(self) -> list[bytes]:
        return [e.data for _, e in self.of(BytesMessage)]

    def closes(self) -> list[tuple[float, int, str]]:
        return [(t, e.code, e.reason) for t, e in self.of(CloseConnection)]

    async def wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self.changed.wait()

    async def wait_eof(self) -> float:
        await self.wait(lambda: self.eof_at is not None)
        assert self.eof_at is not None
        return self.eof_at


class Server:
    """pgcall's side: the front door, and the session of the one client."""

    def __init__(self, limits: WsLimits, store: FakeStore | None = None) -> None:
        self.hub = Hub()
        self.hub.restart(snapshot(users=[], media_settings=[settings()]))
        self.store = store or FakeStore()
        play_upserts(self.hub, self.store)
        self.ctx = SessionContext(hub=self.hub, store=self.store,  # type: ignore[arg-type]
                                  frames=self.store)
        self.door = FrontDoor(None, self.on_websocket, admission=Admission(),  # type: ignore[arg-type]
                              limits=limits)
        self.ws: ServerWebSocket | None = None
        self.done = trio.Event()
        self.stream: Counting | None = None

    async def on_websocket(self, up: Upgraded) -> None:
        self.ws = up.ws
        await run_session(self.ctx, up.ws, up.token)

    async def handle(self, stream: trio.abc.Stream) -> None:
        self.stream = Counting(stream)
        try:
            await self.door.handle(self.stream)
        finally:
            self.done.set()

    def session(self) -> Any:
        (session,) = self.hub.owners.values()
        return session


@contextlib.asynccontextmanager
async def connected(limits: WsLimits = LIMITS, *, store: FakeStore | None = None,
                    pair: StreamPair = trio.testing.memory_stream_pair,  # type: ignore[assignment]
                    after_head: bytes = b"", read: bool = True,
                    ) -> AsyncIterator[tuple[Peer, Server]]:
    """A client that has opened a WebSocket (and, if ``read``, reads what comes)."""
    client_end, server_end = pair()
    server = Server(limits, store)
    peer = Peer(client_end, trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle, server_end)
        await client_end.send_all(peer.ws.send(Request(host="localhost", target="/"))
                                  + after_head)
        while not peer.events:  # the 101 answer
            peer.ws.receive_data(bytes(await client_end.receive_some(65536)))
            peer.events += [(peer.now(), e) for e in peer.ws.events()]
        assert isinstance(peer.events[0][1], AcceptConnection)
        if read:
            nursery.start_soon(peer.run)
        yield peer, server
        nursery.cancel_scope.cancel()


async def snapshot_read(peer: Peer) -> None:
    """Until the identity and the five snapshots have arrived."""
    await peer.wait(lambda: len(peer.messages()) >= 6)


# -- pings and pongs ----------------------------------------------------------------------------


async def test_a_ping_is_answered_with_its_payload(autojump_clock: Any) -> None:
    async with connected() as (peer, _):
        await trio.sleep(3)
        await peer.send(Ping(b"hello"))
        await peer.wait(lambda: bool(peer.of(Pong)))
        assert peer.of(Pong) == [(3.0, Pong(b"hello"))]


async def test_the_writer_pings_every_10_s_and_a_live_peer_stays(autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        await trio.sleep(65)
        assert [t for t, _ in peer.of(Ping)] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        assert peer.closes() == [] and peer.eof_at is None
        assert len(peer.messages()) == 6  # identity and snapshots; pings are no messages
        assert not server.done.is_set()


async def test_pongs_owed_to_a_peer_that_does_not_read_do_not_pile_up(
        autojump_clock: Any) -> None:
    # lockstep: a send blocks until the peer reads, so the writer is stuck on the identity
    # message while the reader takes ping after ping. RFC 6455 §5.5.3 allows answering only
    # the latest, and only that is kept.
    pair = trio.testing.lockstep_stream_pair
    async with connected(pair=pair, read=False) as (peer, server):  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()  # the writer stuck, before any ping
        pings = b"".join(frame(PING, b"%09d" % i + b"x" * 100) for i in range(900))
        await peer.stream.send_all(pings)
        await trio.testing.wait_all_tasks_blocked()
        assert server.ws is not None
        owed = server.ws.take_control()
        assert owed == b"\x8a\x6d" + b"000000899" + b"x" * 100  # one pong: the latest
        async with trio.open_nursery() as nursery:  # now read, and close
            nursery.start_soon(peer.run)
            await peer.send(CloseConnection(1000))
            await peer.wait_eof()


# -- timeouts -------------------------------------------------------------------------------------


async def test_a_silent_peer_is_closed_after_25_s(autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        peer.answer_pings = False
        eof = await peer.wait_eof()
        assert eof == LIMITS.idle_timeout_s == 25.0
        assert [t for t, _ in peer.of(Ping)] == [10.0, 20.0]
        assert peer.closes() == [(25.0, 1008, "No data from the client")]
        await server.done.wait()
    assert server.door.stats.failures == {"idle": 1}
    assert server.store.called("disconnect_user")


@pytest.mark.parametrize("trickle", [
    [binary(bytes(100))[:8]] + [b"x"] * 100,  # a byte at a time of a 100-byte message
    [binary(b"x", fin=False)] + [frame(CONTINUATION, b"", fin=False)] * 100,  # empty frames
    [frame(PING, b"a" * 100)[:3]] + [b"x"] * 100,  # even a control frame must finish
    # pings between the fragments do not make the message any younger
    [binary(b"x", fin=False)] + [frame(PING, b"") + frame(CONTINUATION, b"", fin=False)] * 100,
], ids=["bytes of a message", "empty fragments", "a ping", "fragments and pings"])
async def test_a_message_not_finished_10_s_after_its_first_byte_is_closed(
        trickle: list[bytes], autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        await snapshot_read(peer)
        await trio.sleep(1)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            for piece in trickle:
                await peer.send(piece)
                await trio.sleep(0.7)
        eof = await peer.wait_eof()
        assert eof == 1 + LIMITS.message_timeout_s == 11.0
        assert peer.closes() == [(11.0, 1008, "Message not completed in time")]
        await server.done.wait()
    assert server.door.stats.failures == {"slow_message": 1}


# -- the closing handshake ---------------------------------------------------------------------


@pytest.mark.parametrize("answer", [True, False], ids=["answered", "not answered"])
async def test_a_close_from_the_server(answer: bool, autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        await snapshot_read(peer)
        peer.answer_close = answer
        await trio.sleep(1)
        server.session().replace()  # a newer connection of the same identity: 4001
        eof = await peer.wait_eof()
        assert peer.closes() == [(1.0, 4001, "Replaced by new connection")]
        # Answered: TCP closes at once; not answered: after close_timeout_s (2 s).
        assert eof == (1.0 if answer else 3.0)
        await server.done.wait()
    assert server.door.stats.failures == ({} if answer else {"close_timeout": 1})


@pytest.mark.parametrize("code", [1000, 1001, 4000])
async def test_a_close_from_the_peer_is_answered_and_tcp_closed(
        code: int, autojump_clock: Any) -> None:
    # The peer keeps TCP open after the handshake: the server closes it (RFC 6455 §7.1.1).
    async with connected() as (peer, server):
        await snapshot_read(peer)
        await trio.sleep(5)
        await peer.send(CloseConnection(code, "bye"))
        eof = await peer.wait_eof()
        assert eof == 5.0
        assert peer.closes() == [(5.0, code, "bye")]
        await server.done.wait()
    assert server.door.stats.failures == {}
    assert server.store.called("disconnect_user")


@pytest.mark.parametrize("answer", [True, False], ids=["answered", "not answered"])
async def test_a_closing_server_does_not_read_twice_while_a_message_is_handled(
        answer: bool, autojump_clock: Any) -> None:
    # The reader is inside a slow handler when the sender starts the closing handshake; the
    # sender must not read the socket itself meanwhile (two readers: BusyResourceError).
    class SlowStore(FakeStore):
        async def send_message(self, identity: str, text: str) -> str | None:
            await trio.sleep(1)
            return await super().send_message(identity, text)

    async with connected(store=SlowStore()) as (peer, server):
        await snapshot_read(peer)
        peer.answer_close = answer
        await peer.send(BytesMessage(control({"type": "send_message", "text": "hi"})))
        await trio.sleep(0.5)
        server.session().replace()  # while the message is handled, until t=1
        eof = await peer.wait_eof()
        assert peer.closes() == [(0.5, 4001, "Replaced by new connection")]
        assert eof == (0.5 if answer else 2.5)
        await server.done.wait()
    assert server.door.stats.failures == ({} if answer else {"close_timeout": 1})


# -- protocol errors -----------------------------------------------------------------------------

PROTOCOL_ERRORS = {
    "unmasked frame": (binary(b"\x00{}", mask=None), 1002),
    "opcode 0x3": (frame(0x3, b"x"), 1002),
    "opcode 0xB": (frame(0xB, b""), 1002),
    "RSV1": (binary(b"x", rsv=4), 1002),
    "RSV2 and RSV3": (binary(b"x", rsv=3), 1002),
    "invalid UTF-8 text": (frame(TEXT, b"\x00\xff\xfe"), 1007),
    "a surrogate in UTF-8 text": (frame(TEXT, b"\xed\xa0\x80"), 1007),
    "invalid UTF-8 across fragments": (frame(TEXT, b"\xc3", fin=False)
                                       + frame(CONTINUATION, b"\x28"), 1007),
    "a continuation with no message": (frame(CONTINUATION, b"x"), 1002),
    "a new message inside a fragmented one": (binary(b"a", fin=False) + binary(b"b"), 1002),
    "a fragmented ping": (frame(PING, b"x", fin=False), 1002),
    "a ping of 126 bytes": (frame(PING, b"x" * 126), 1002),
    "a close of 1 byte": (frame(CLOSE, b"\x03"), 1002),
    "a close with code 999": (close_frame(999), 1002),
    "a close with code 1005": (close_frame(1005), 1002),
    "a close with an invalid reason": (close_frame(1000, b"\xff"), 1007),
    "a 16-bit length for 5 bytes": (binary(b"x" * 5, width=16), 1002),
    "a 64-bit length for 200 bytes": (binary(b"x" * 200, width=64), 1002),
}


@pytest.mark.parametrize("data,code", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
@pytest.mark.parametrize("when", ["after the snapshot", "with the upgrade request"])
async def test_a_protocol_error_closes_with_its_code_then_tcp(
        data: bytes, code: int, when: str, autojump_clock: Any) -> None:
    early = when == "with the upgrade request"
    async with connected(after_head=data if early else b"") as (peer, server):
        if not early:
            await snapshot_read(peer)
            await trio.sleep(1)
            await peer.send(data)
        eof = await peer.wait_eof()
        ((at, got, _),) = peer.closes()
        assert got == code
        assert at == eof == (0.0 if early else 1.0)
        await server.done.wait()
    assert server.door.stats.failures == {"protocol": 1}
    assert server.store.called("disconnect_user")


# -- message size -------------------------------------------------------------------------------


async def test_a_message_of_600_kib_is_taken(autojump_clock: Any) -> None:
    async with connected() as (peer, _):
        await snapshot_read(peer)
        await peer.send(binary(b"\x00" + b" " * (LIMITS.max_message - 1)))
        await peer.wait(lambda: len(peer.messages()) == 7)
        assert peer.messages()[-1] == (
            b'\x00{"type":"error","req_type":"unknown","message":"Malformed message"}')
        assert peer.closes() == []


@pytest.mark.parametrize("frames", [
    [binary(bytes(LIMITS.max_message + 1))[:14 + 1000]],
    [binary(b"", declared=50_000_000)],
    [frame(TEXT, b"", declared=2**63 - 1)],
    [binary(bytes(400_000), fin=False), frame(CONTINUATION, bytes(400_000))[:14]],
], ids=["one byte over", "50 MB declared", "2^63-1 declared", "over in the second fragment"])
async def test_an_oversized_message_closes_with_1009_and_the_rest_is_never_kept(
        frames: list[bytes], autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        await snapshot_read(peer)
        sent = b"".join(frames)
        await peer.send(sent)
        eof = await peer.wait_eof()
        # Refused the moment the header arrived, though the message is far from complete.
        assert peer.closes() == [(0.0, 1009, f"Message larger than {LIMITS.max_message} bytes")]
        assert len(sent) < LIMITS.max_message
        # The peer never answers (it is still inside its message): TCP closes once the
        # closing handshake has had its time. Meanwhile what came was dropped, unparsed.
        assert eof == LIMITS.close_timeout_s
        assert server.stream is not None
        read = server.stream.received
        with pytest.raises((trio.BrokenResourceError, trio.ClosedResourceError)):
            await peer.send(bytes(1_000_000))
        await server.done.wait()
        assert server.stream.received == read
    assert server.door.stats.failures == {"too_big": 1}


async def test_after_an_oversized_message_the_peer_s_close_frame_ends_it_at_once(
        autojump_clock: Any) -> None:
    # A browser finishes sending its message, then answers our close: TCP closes then, the
    # peer having read our 1009; what it sent was dropped without being kept.
    async with connected() as (peer, server):
        await snapshot_read(peer)
        await peer.send(binary(bytes(LIMITS.max_message + 1)))  # the peer answers our close
        eof = await peer.wait_eof()
        assert peer.closes() == [(0.0, 1009, f"Message larger than {LIMITS.max_message} bytes")]
        assert eof == 0.0
        await server.done.wait()
        assert server.stream is not None
        assert server.stream.received > LIMITS.max_message  # read to the close, dropped
    assert server.door.stats.failures == {"too_big": 1}


async def test_an_endless_oversized_message_is_dropped_only_up_to_a_bound(
        autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        await snapshot_read(peer)
        peer.answer_close = False  # it just goes on sending
        await peer.send(binary(b"", declared=50_000_000))
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            for _ in range(100):
                await peer.send(bytes(64 * 1024))
        await peer.wait_eof()
        assert server.stream is not None
        assert server.stream.received <= 2 * LIMITS.max_message + 64 * 1024


@pytest.mark.parametrize("opcode", [BINARY, TEXT])
async def test_a_message_in_one_byte_fragments_is_bounded_by_the_limit(
        opcode: int, autojump_clock: Any) -> None:
    async with connected(WsLimits(max_message=2000, frames_burst=10_000)) as (peer, _):
        await snapshot_read(peer)
        frames = [frame(opcode, b"\x00", fin=False)]
        frames += [frame(CONTINUATION, b" ", fin=False)] * 1998
        await peer.send(b"".join(frames) + frame(CONTINUATION, b" "))
        await peer.wait(lambda: len(peer.messages()) == 7)  # a whole 2000-byte message
        await peer.send(b"".join(frames) + frame(CONTINUATION, b"  "))
        await peer.wait_eof()
        assert peer.closes() == [(0.0, 1009, "Message larger than 2000 bytes")]


async def test_frames_sent_with_the_upgrade_request_are_read_as_frames(
        autojump_clock: Any) -> None:
    # hypercorn#225: bytes after the request head ended a whole server; here they are the
    # first frames of the socket.
    first = binary(control({"type": "send_message", "text": "early"}))
    async with connected(after_head=first + frame(PING, b"p")) as (peer, server):
        await peer.wait(lambda: len(peer.messages()) == 7 and bool(peer.of(Pong)))
        assert peer.messages()[-1] == b'\x00{"type":"ack","req_type":"send_message"}'
        assert peer.of(Pong) == [(0.0, Pong(b"p"))]
        assert server.store.called("send_message") == [(server.session().identity, "early")]


@pytest.mark.parametrize("target", ["//[", "//[::1/?token=x", "//a]b/"])
async def test_a_target_that_is_no_url_is_refused_with_400(
        target: str, autojump_clock: Any) -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    server = Server(LIMITS)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle, server_end)
        await client_end.send_all(upgrade_request(path=target))
        answer = b""
        while chunk := await client_end.receive_some(65536):
            answer += chunk
        await server.done.wait()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert server.door.stats.failures == {}
    assert server.ws is None


# -- the frame budget ----------------------------------------------------------------------------


@pytest.mark.parametrize("flood", [
    [frame(PING, b"x" * 125)] * 1001,
    [frame(0xA, b"")] * 1001,  # unsolicited pongs get no answer, but cost the same
    [binary(b"\x00", fin=False)] + [frame(CONTINUATION, b" ", fin=False)] * 1001,
], ids=["pings", "pongs", "one-byte fragments"])
async def test_more_frames_at_once_than_the_budget_closes_with_1008(
        flood: list[bytes], autojump_clock: Any) -> None:
    async with connected() as (peer, server):
        await snapshot_read(peer)
        assert LIMITS.frames_burst == 1000 and LIMITS.frames_per_s == 500
        await peer.send(b"".join(flood))
        eof = await peer.wait_eof()
        assert peer.closes() == [(0.0, 1008, "Too many frames")]
        assert eof == 0.0
        await server.done.wait()
    assert server.door.stats.failures == {"frame_flood": 1}


async def test_whole_messages_are_not_frames_of_the_budget(autojump_clock: Any) -> None:
    # 1200 messages at once: over the budget's burst, but each one is the session's to limit,
    # with a reply to each until it closes with 4029.
    async with connected() as (peer, _):
        await snapshot_read(peer)
        await peer.send(binary(b"\x07") * 1200)
        eof = await peer.wait_eof()
        assert peer.closes() == [(0.0, 4029, "Rate limit exceeded")]
        assert eof == 0.0
        assert len(peer.messages()) > 6 + 400  # "Malformed message", then refusals


async def test_frames_within_the_budget_are_fine(autojump_clock: Any) -> None:
    # 450 frames a second for 10 s (pings, and a message in fragments), under 500/s.
    async with connected() as (peer, server):
        await snapshot_read(peer)
        for tick in range(100):
            burst = [frame(PING, b"%d" % tick)] * 35
            burst += [binary(b"\x00", fin=False), *[frame(CONTINUATION, b" ", fin=False)] * 8,
                      frame(CONTINUATION, b"}")]
            await peer.send(b"".join(burst))
            await trio.sleep(0.1)
        await peer.wait(lambda: len(peer.messages()) == 6 + 100)  # a reply to each message
        assert peer.closes() == [] and not server.done.is_set()
        assert len(peer.of(Pong)) >= 100


async def test_a_steady_stream_read_mid_message_every_time_is_not_slow(
        autojump_clock: Any) -> None:
    # A client streaming without pause, read in chunks that each end inside a message (as
    # a busy server reads 64 KiB at a time): every message finishes in well under 10 s, so
    # the message deadline must follow each new message, not the first one of the stream.
    async with connected() as (peer, server):
        await snapshot_read(peer)
        peer.answer_pings = False  # a pong now would land inside a half-sent frame
        message = binary(b"\x00" + b" " * 98)
        half = len(message) // 2
        await peer.send(message[:half])
        for _ in range(60):  # 30 s
            await trio.sleep(0.5)
            await peer.send(message[half:] + message[:half])
        await peer.wait(lambda: len(peer.messages()) == 6 + 60)
        assert peer.closes() == [] and not server.done.is_set()
