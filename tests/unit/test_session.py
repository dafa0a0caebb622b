"""Client sessions driven end to end through the front door, the WebSocket layer and
``run_session``, with a fake store and a WebSocket client on an in-memory connection, in
virtual time: the connection sequence (protocol.md §4.1), replies (§3), media
(§3.1), replacement (§5), rate limits and the wait for the client's own users row."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from pgcall.pg.conn import ConnectionLost, PgError
from pgcall.relay.hub import Hub
from pgcall.relay.ratelimit import LIMITS
from pgcall.relay.session import USER_ROW_WAIT_S, SessionContext
from pgcall.wire import protocol

from .fakes import (
    STATE_TABLES,
    T0,
    A,
    B,
    C,
    FakePeer,
    FakeStore,
    call,
    chat,
    decode,
    insert,
    jpeg,
    media_message,
    settings,
    snapshot,
    txn,
    update,
    user,
    video,
)

SID = uuid.UUID("a0f375ab-fd13-48b1-8ba0-a68734dddfb8")
TOKENS = {A: "token-a", B: "token-b", C: "token-c"}

Spawn = Callable[..., Awaitable[tuple[FakePeer, trio.Event]]]


def play_upserts(hub: Hub, store: FakeStore) -> None:
    """Make the users upsert of ``connect_user`` come back through the 'stream' at once."""

    def upsert(identity: str, at: dt.datetime) -> None:
        row = user(identity, at=at)
        if identity in hub.mirror.tables["users"]:
            hub.publish(txn(update("users", row, None)))
        else:
            hub.publish(txn(insert("users", row)))

    store.on_connect = upsert


@pytest.fixture
def hub() -> Hub:
    hub = Hub()
    hub.restart(snapshot(users=[user(C)], chat_messages=[chat(1, C)],
                         call_sessions=[call(SID, A, B)], media_settings=[settings()]))
    return hub


@pytest.fixture
def store(hub: Hub) -> FakeStore:
    store = FakeStore()
    store.tokens = {t: i for i, t in TOKENS.items()}
    play_upserts(hub, store)
    return store


@pytest.fixture
async def spawn(hub: Hub, store: FakeStore) -> Any:
    """``await spawn(identity)`` opens a connection (``?token=`` of that identity) and runs its
    handler; returns the peer and an event set when the handler has returned."""
    ctx = SessionContext(hub=hub, store=store, frames=store)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:

        async def open_conn(identity: str | None = None) -> tuple[FakePeer, trio.Event]:
            query = f"token={TOKENS[identity]}".encode() if identity else b""
            peer, done = FakePeer(query), trio.Event()

            async def run() -> None:
                await peer.serve(ctx)
                done.set()

            nursery.start_soon(run)
            return peer, done

        yield open_conn
        nursery.cancel_scope.cancel()


async def connected(peer: FakePeer) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Read accept, identity and the snapshots; returns (identity message, rows by table)."""
    assert await peer.event() == {"type": "websocket.accept"}
    kind, ident, _ = await peer.message()
    assert kind == "control" and list(ident) == ["type", "identity", "token"]
    assert ident["type"] == "identity"
    rows = {}
    for table in STATE_TABLES:
        _, m, _ = await peer.message()
        assert (m["type"], m["table"]) == ("snapshot", table)
        rows[table] = m["rows"]
    return ident, rows


async def replies(peer: FakePeer, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        kind, m, _ = await peer.message()
        assert kind == "control"
        out.append(m)
    return out


async def leave(peer: FakePeer, done: trio.Event) -> None:
    peer.disconnect()
    await done.wait()


# -- the connection sequence ------------------------------------------------------------------


async def test_identity_first_then_the_five_snapshots(spawn: Spawn, store: FakeStore,
                                                      autojump_clock: Any) -> None:
    peer, done = await spawn(A)
    peer.connect()
    ident, rows = await connected(peer)
    assert ident == {"type": "identity", "identity": A, "token": TOKENS[A]}
    assert [r["identity"] for r in rows["users"]] == [C, A]  # its own row, once
    assert [r["id"] for r in rows["chat_messages"]] == ["1"]
    assert [r["session_id"] for r in rows["call_sessions"]] == [str(SID)]
    assert rows["media_settings"][0]["audio_talking_rms_threshold"] == 0.02
    await trio.testing.wait_all_tasks_blocked()
    assert peer.pending() == []  # its own users insert was in the snapshot, not sent again
    await leave(peer, done)
    assert store.calls == [("resolve_identity", TOKENS[A]), ("connect_user", A),
                           ("disconnect_user", A)]


async def test_a_new_client_gets_a_minted_identity(spawn: Spawn, store: FakeStore,
                                                   autojump_clock: Any) -> None:
    peer, done = await spawn()
    peer.connect()
    ident, rows = await connected(peer)
    assert store.calls[0] == ("resolve_identity", None)
    assert store.tokens[ident["token"]] == ident["identity"]
    assert ident["identity"] in [r["identity"] for r in rows["users"]]
    assert rows["call_sessions"] == []  # another pair's call is not shown
    await leave(peer, done)


async def test_control_sent_right_after_connect_is_processed_in_order(
        spawn: Spawn, hub: Hub, store: FakeStore, autojump_clock: Any) -> None:
    store.on_connect = None  # the users row arrives when the test says so
    peer, done = await spawn(A)
    peer.connect()
    peer.send_control({"type": "set_nickname", "nickname": "  bob  "})
    peer.send_control({"type": "send_message", "text": "first"})
    peer.send_control({"type": "constructor"})
    await trio.testing.wait_all_tasks_blocked()
    # Not subscribed yet (waiting for its users row): nothing handled, nothing lost.
    assert [e["type"] for e in peer.pending()] == ["websocket.accept", "websocket.send"]
    assert store.called("set_nickname") == []
    hub.publish(txn(insert("users", user(A, at=store.connected_at))))
    for table in STATE_TABLES:
        _, m, _ = await peer.message()
        assert m["table"] == table
    assert await replies(peer, 3) == [
        {"type": "ack", "req_type": "set_nickname"},
        {"type": "ack", "req_type": "send_message"},
        {"type": "error", "req_type": "constructor", "message": "Unknown message type"}]
    assert [c[0] for c in store.calls if c[0] in ("set_nickname", "send_message")] == [
        "set_nickname", "send_message"]
    assert store.called("set_nickname") == [(A, "bob")]
    await leave(peer, done)


# -- replies ------------------------------------------------------------------------------------

SID_TEXT = str(SID)
CONTROLS = [
    ({"type": "set_nickname", "nickname": "x"}, protocol.ERR_USER_NOT_FOUND),
    ({"type": "send_message", "text": "x"}, "anything the store says"),
    ({"type": "request_call", "target": B, "call_type": "Video"}, protocol.ERR_BUSY),
    ({"type": "accept_call", "session_id": SID_TEXT}, protocol.ERR_ONLY_CALLEE_ACCEPT),
    ({"type": "decline_call", "session_id": SID_TEXT}, protocol.ERR_ONLY_CALLEE_DECLINE),
    ({"type": "end_call", "session_id": SID_TEXT}, protocol.ERR_ONLY_PARTICIPANT),
]


@pytest.mark.parametrize(("msg", "err"), CONTROLS, ids=lambda x: str(x)[:30])
async def test_store_answers_become_acks_and_errors(
        spawn: Spawn, store: FakeStore, msg: dict[str, Any], err: str,
        autojump_clock: Any) -> None:
    peer, done = await spawn(A)
    peer.connect()
    await connected(peer)
    peer.send_control(msg)
    assert await replies(peer, 1) == [{"type": "ack", "req_type": msg["type"]}]
    store.results[msg["type"]] = err
    peer.send_control(msg)
    assert await replies(peer, 1) == [
        {"type": "error", "req_type": msg["type"], "message": err}]
    args = store.called(msg["type"])
    assert len(args) == 2 and args[0][0] == A
    await leave(peer, done)


@pytest.mark.parametrize("exc", [PgError('relation "users" is secret-ish', "42P01"),
                                 ConnectionLost("server closed the connection: secret-ish")])
async def test_a_database_error_is_not_leaked(spawn: Spawn, store: FakeStore,
                                              exc: PgError, autojump_clock: Any) -> None:
    peer, done = await spawn(A)
    peer.connect()
    await connected(peer)
    for method in ("send_message", "accept_call", "insert_frame"):
        store.results[method] = exc
    peer.send_control({"type": "send_message", "text": "hi"})
    peer.send_control({"type": "accept_call", "session_id": SID_TEXT})
    head = {"session_id": SID_TEXT, "to": B, "seq": 1, "width": 4, "height": 4}
    peer.send_bytes(media_message("video", head, jpeg(1)))
    events = [await peer.event() for _ in range(3)]
    assert all(b"secret" not in e["bytes"] for e in events)
    # An outage is worth waiting out; any other database error is the server's own fault.
    expected = ("Database unavailable, please retry" if isinstance(exc, ConnectionLost)
                else "Internal server error")
    assert [protocol_json(e) for e in events] == [
        {"type": "error", "req_type": t, "message": expected}
        for t in ("send_message", "accept_call", "send_video_frame")]
    await leave(peer, done)


def protocol_json(event: dict[str, Any]) -> Any:
    kind, m, _ = decode(event["bytes"])
    assert kind == "control"
    return m


async def test_resolve_failure_closes_with_1011(spawn: Spawn, store: FakeStore,
                                                autojump_clock: Any) -> None:
    store.results["resolve_identity"] = ConnectionLost("down")
    peer, done = await spawn(A)
    peer.connect()
    assert await peer.event() == {"type": "websocket.accept"}
    assert await peer.event() == {"type": "websocket.close", "code": 1011,
                                  "reason": "Database unavailable"}
    await done.wait()
    assert store.called("disconnect_user") == []


# -- media -------------------------------------------------------------------------------------


async def test_media_is_checked_then_inserted_in_the_order_sent(
        spawn: Spawn, hub: Hub, store: FakeStore, autojump_clock: Any) -> None:
    def relay(media: Any, from_id: str) -> None:  # what the stream would bring back
        hub.publish(txn(video(uuid.UUID(media.session_id), from_id, media.to, media.seq,
                              bytes(media.payload), **media.header)))

    store.on_frame = relay
    a, a_done = await spawn(A)
    b, b_done = await spawn(B)
    a.connect()
    await connected(a)
    b.connect()
    await connected(b)
    _, m, _ = await a.message()
    assert (m["type"], m["table"], m["row"]["identity"]) == ("insert", "users", B)
    sent: dict[int, bytes] = {}
    expected_errors = []
    for seq in range(12):
        head = {"session_id": SID_TEXT.upper(), "to": B, "seq": seq, "width": 320,
                "height": 180}
        if seq == 3:
            head["to"] = C
            expected_errors.append(protocol.ERR_RECIPIENT)
        elif seq == 6:
            head["session_id"] = str(uuid.UUID(int=6))
            expected_errors.append(protocol.ERR_SESSION_NOT_FOUND)
        else:
            sent[seq] = jpeg(seq, 1000 + seq)
        a.send_bytes(media_message("video", head, sent.get(seq, jpeg(seq))))
    await trio.testing.wait_all_tasks_blocked()
    inserts = store.called("insert_frame")
    assert [(i[0], i[1], i[2], i[3], i[4]) for i in inserts] == [
        ("video", SID_TEXT, B, seq, A) for seq in sent]
    assert [i[5] for i in inserts] == list(sent.values())
    errors = [protocol_json(e) for e in a.pending()]
    assert errors == [{"type": "error", "req_type": "send_video_frame", "message": m}
                      for m in expected_errors]
    frames = [await b.message() for _ in sent]
    assert [(k, h["seq"], h["from"], h["session_id"]) for k, h, _ in frames] == [
        ("video", seq, A, SID_TEXT) for seq in sent]
    assert [p for _, _, p in frames] == list(sent.values())
    await leave(a, a_done)
    await leave(b, b_done)


# -- replacement -------------------------------------------------------------------------------


@pytest.mark.parametrize("first_answers_close", [False, True])
async def test_a_second_connection_replaces_the_first(
        spawn: Spawn, hub: Hub, store: FakeStore, first_answers_close: bool,
        autojump_clock: Any) -> None:
    first, first_done = await spawn(A)
    first.connect()
    await connected(first)
    second, second_done = await spawn(A)
    second.connect()
    ident, rows = await connected(second)
    assert ident["identity"] == A
    assert [r["identity"] for r in rows["users"]].count(A) == 1
    assert await first.event() == {"type": "websocket.close", "code": 4001,
                                   "reason": "Replaced by new connection"}
    if first_answers_close:
        first.disconnect()
    await first_done.wait()
    assert store.called("disconnect_user") == []  # the user stays online
    hub.publish(txn(insert("chat_messages", chat(2, B))))
    _, m, _ = await second.message()
    assert (m["type"], m["row"]["id"]) == ("insert", "2")
    assert first.pending() == []
    second.send_control({"type": "set_nickname", "nickname": "still here"})
    assert await replies(second, 1) == [{"type": "ack", "req_type": "set_nickname"}]
    await leave(second, second_done)
    assert store.called("disconnect_user") == [(A,)]


class SlowDisconnectStore(FakeStore):
    """A store whose users table is a set, and whose disconnect takes a while to commit."""

    def __init__(self) -> None:
        super().__init__()
        self.online: set[str] = set()
        self.commit = trio.Event()

    async def connect_user(self, identity: str) -> dt.datetime:
        at = await super().connect_user(identity)
        self.online.add(identity)
        return at

    async def disconnect_user(self, identity: str) -> None:
        await super().disconnect_user(identity)
        await self.commit.wait()
        self.online.discard(identity)


async def test_a_reconnect_is_not_undone_by_the_previous_disconnect(
        hub: Hub, autojump_clock: Any) -> None:
    # A reload: the old socket closes, its clean-up (delete the user) is still running when
    # the new socket of the same identity connects. The user must end up online.
    store = SlowDisconnectStore()
    store.tokens = {TOKENS[A]: A}
    play_upserts(hub, store)
    ctx = SessionContext(hub=hub, store=store, frames=store)  # type: ignore[arg-type]
    old, new = FakePeer(b"token=token-a"), FakePeer(b"token=token-a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(old.serve, ctx)
        old.connect()
        await connected(old)
        old.disconnect()
        await trio.testing.wait_all_tasks_blocked()
        assert store.called("disconnect_user") == [(A,)]
        nursery.start_soon(new.serve, ctx)
        new.connect()
        await trio.testing.wait_all_tasks_blocked()
        store.commit.set()
        await connected(new)
        await trio.testing.wait_all_tasks_blocked()
        assert A in store.online, "the new connection's user was deleted by the old one"
        nursery.cancel_scope.cancel()


# -- rate limits -------------------------------------------------------------------------------


async def test_a_flood_is_closed_with_4029(spawn: Spawn, store: FakeStore,
                                           autojump_clock: Any) -> None:
    peer, done = await spawn(A)
    peer.connect()
    await connected(peer)
    for i in range(300):
        peer.send_control({"type": "send_message", "text": f"spam {i}"})
    events = []
    while not events or events[-1]["type"] != "websocket.close":
        events.append(await peer.event())
    assert events[-1] == {"type": "websocket.close", "code": 4029,
                          "reason": "Rate limit exceeded"}
    replies_seen = [protocol_json(e) for e in events[:-1]]
    assert {"type": "ack", "req_type": "send_message"} in replies_seen
    assert len(store.called("send_message")) == LIMITS["chat"].burst
    await done.wait()  # the server ends the session after the close grace period
    assert store.called("disconnect_user") == [(A,)]


# -- waiting for the client's own users row ----------------------------------------------------


async def test_the_wait_for_the_users_row_ends_when_the_stream_shows_it(
        spawn: Spawn, hub: Hub, store: FakeStore, autojump_clock: Any) -> None:
    store.on_connect = None
    store.connected_at = T0 + dt.timedelta(minutes=1)
    hub.publish(txn(insert("users", user(A, "stale", at=T0))))  # a row from before
    start = trio.current_time()
    peer, done = await spawn(A)
    peer.connect()
    await trio.testing.wait_all_tasks_blocked()
    assert [e["type"] for e in peer.pending()] == ["websocket.accept", "websocket.send"]
    hub.publish(txn(update("users", user(A, "older", at=T0 + dt.timedelta(seconds=59)),
                           None)))
    await trio.testing.wait_all_tasks_blocked()
    assert peer.pending() == []  # still waiting: that upsert is not this connection's
    hub.publish(txn(update("users", user(A, "stale", at=store.connected_at), None)))
    rows = {}
    for table in STATE_TABLES:
        _, m, _ = await peer.message()
        rows[table] = m["rows"]
    assert trio.current_time() == start  # no timeout was needed
    (own,) = [r for r in rows["users"] if r["identity"] == A]
    assert own["connected_at"] == "2026-11-25T18:01:47.333Z"
    await leave(peer, done)


async def test_the_wait_for_the_users_row_gives_up_after_5_s(
        spawn: Spawn, store: FakeStore, autojump_clock: Any) -> None:
    store.on_connect = None
    start = trio.current_time()
    peer, done = await spawn(A)
    peer.connect()
    await trio.testing.wait_all_tasks_blocked()
    accept, identity = peer.pending()
    assert accept["type"] == "websocket.accept"
    assert protocol_json(identity)["type"] == "identity"
    _, m, _ = await peer.message()
    assert (m["type"], m["table"]) == ("snapshot", "users")
    assert trio.current_time() - start == pytest.approx(USER_ROW_WAIT_S)
    assert USER_ROW_WAIT_S == 5.0
    assert A not in [r["identity"] for r in m["rows"]]
    for _ in STATE_TABLES[1:]:
        await peer.message()
    peer.send_control({"type": "send_message", "text": "late but served"})
    assert await replies(peer, 1) == [{"type": "ack", "req_type": "send_message"}]
    await leave(peer, done)


async def test_while_the_shedder_sheds_video_goes_evenly_and_audio_all(
        spawn: Spawn, hub: Hub, store: FakeStore, autojump_clock: Any) -> None:
    # Graceful overload (relay/shedding.py): with half the video shed, every second video
    # frame of the sender is dropped at the door (never written, counted), audio all goes.
    a, a_done = await spawn(A)
    a.connect()
    await connected(a)
    hub.shedder.ratio = 0.5
    for seq in range(8):
        a.send_bytes(media_message("video", {"session_id": SID_TEXT, "to": B, "seq": seq,
                                             "width": 320, "height": 180}, jpeg(seq)))
        a.send_bytes(media_message("audio", {"session_id": SID_TEXT, "to": B, "seq": seq,
                                             "sample_rate": 16000, "channels": 1,
                                             "rms": 0.1}, bytes(320)))
    await trio.testing.wait_all_tasks_blocked()
    written = [(i[0], i[3]) for i in store.called("insert_frame")]
    assert [seq for kind, seq in written if kind == "video"] == [0, 2, 4, 6]
    assert [seq for kind, seq in written if kind == "audio"] == list(range(8))
    assert hub.stats.frames_dropped == {"overload_video": 4}
    assert a.pending() == []  # no error: shedding is not the sender's fault
    await leave(a, a_done)
