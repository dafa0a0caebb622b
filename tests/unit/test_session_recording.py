"""Recording over the protocol, scripted: a session with a fake recording store, in virtual
time. ``hello`` is acked with the features kept; ``start_recording`` is refused with the
consent error while a participant's client cannot show the indicator, acked with the new
recording's id once all can; the recording's row, coming back through the (scripted) stream,
turns the indicator on for the caller and the callee, and ``stop_recording`` turns it off."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import trio

from pgcall.relay.hub import Hub
from pgcall.relay.session import SessionContext
from pgcall.wire import recording as w

from .fakes import T0, A, B, FakePeer, FakeStore, insert, txn, update
from .test_session import SID, TOKENS, connected, hub, leave, store

__all__ = ["hub", "store"]  # fixtures, used by name
REC = uuid.UUID("5a4b3c2d-1e0f-4a1b-9c2d-3e4f5a6b7c8d")


class FakeRecordings:
    """What ``RecordingStore`` answers, decided by the test; a start or stop is committed by
    publishing the row, as the stream would bring it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.features: dict[str, list[str]] = {}
        self.row: dict[str, Any] | None = None

    async def hello(self, me: str, features: list[str]) -> None:
        self.features[me] = features

    async def start(self, me: str, session_id: str | None,
                    room_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
        people = [A, B]
        if any("recording" not in self.features.get(p, []) for p in people):
            return None, w.ERR_CONSENT
        self.row = {"recording_id": REC, "session_id": uuid.UUID(str(session_id)),
                    "room_id": None, "started_by": me, "started_at": T0, "stopped_at": None,
                    "participants": people}
        self.hub.publish(txn(insert("recordings", self.row)))
        return {"recording_id": str(REC)}, None

    async def stop(self, me: str, session_id: str | None, room_id: str | None) -> str | None:
        if self.row is None:
            return w.ERR_NOT_RECORDING
        old, self.row = self.row, {**self.row, "stopped_at": T0 + dt.timedelta(seconds=30)}
        self.hub.publish(txn(update("recordings", self.row, old)))
        return None


async def open_peer(nursery: trio.Nursery, ctx: SessionContext,
                    identity: str) -> tuple[FakePeer, trio.Event]:
    peer, done = FakePeer(f"token={TOKENS[identity]}".encode()), trio.Event()

    async def run() -> None:
        await peer.serve(ctx)
        done.set()

    nursery.start_soon(run)
    peer.connect()
    await connected(peer)
    return peer, done


async def next_not_users(peer: FakePeer) -> dict[str, Any]:
    """The next control message, past the other one's users row (its connect)."""
    while True:
        kind, m, _ = await peer.message()
        assert kind == "control"
        if m.get("table") != "users":
            return m


async def recording_rows(peer: FakePeer) -> tuple[str, dict[str, Any]]:
    m = await next_not_users(peer)
    assert m["table"] == "recordings", m
    return m["type"], m["row"]


async def test_consent_then_the_indicator_for_both(hub: Hub, store: FakeStore,
                                                   autojump_clock: Any) -> None:
    recordings = FakeRecordings(hub)
    ctx = SessionContext(hub=hub, store=store, frames=store,  # type: ignore[arg-type]
                         recordings=recordings)  # type: ignore[arg-type]
    start = {"type": "start_recording", "session_id": str(SID)}
    async with trio.open_nursery() as nursery:
        (a, a_done), (b, b_done) = (await open_peer(nursery, ctx, A),
                                    await open_peer(nursery, ctx, B))
        a.send_control({"type": "hello", "features": ["rooms", "recording"]})
        assert await next_not_users(a) == {"type": "ack", "req_type": "hello",
                                           "features": ["recording", "rooms"]}
        a.send_control(start)  # b's client has not said it shows the indicator
        assert await next_not_users(a) == {"type": "error", "req_type": "start_recording",
                                           "message": w.ERR_CONSENT}
        b.send_control({"type": "hello", "features": ["recording"]})
        assert (await next_not_users(b))["type"] == "ack"
        a.send_control(start)
        # The row reaches both before or after the ack; for a, order them by kind.
        got = [await next_not_users(a), await next_not_users(a)]
        acks = [m for m in got if m["type"] == "ack"]
        assert acks == [{"type": "ack", "req_type": "start_recording",
                         "recording_id": str(REC)}]
        [row_msg] = [m for m in got if m.get("table") == "recordings"]
        assert row_msg["type"] == "insert" and row_msg["row"]["stopped_at"] is None
        kind, row = await recording_rows(b)
        assert kind == "insert" and row["recording_id"] == str(REC)
        b.send_control({"type": "stop_recording", "session_id": str(SID)})
        got = [await next_not_users(b), await next_not_users(b)]
        assert {m["type"] for m in got} == {"ack", "update"}
        kind, row = await recording_rows(a)
        assert kind == "update" and row["stopped_at"] is not None
        await leave(a, a_done)
        await leave(b, b_done)


@pytest.mark.parametrize("bad", [
    {"type": "start_recording"},
    {"type": "start_recording", "session_id": str(SID), "room_id": str(REC)},
    {"type": "hello", "features": "recording"},
])
async def test_malformed_recording_requests_get_the_error_shape(
        hub: Hub, store: FakeStore, bad: dict[str, Any], autojump_clock: Any) -> None:
    ctx = SessionContext(hub=hub, store=store, frames=store,  # type: ignore[arg-type]
                         recordings=FakeRecordings(hub))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        peer, done = await open_peer(nursery, ctx, A)
        peer.send_control(bad)
        reply = await next_not_users(peer)
        assert reply["type"] == "error" and reply["req_type"] == bad["type"]
        assert reply["message"]
        await leave(peer, done)
