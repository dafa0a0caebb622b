"""The recording indicator against a scripted stream, deterministically: a recording's row
reaches its participants the moment it is committed (insert: the indicator on; update with
``stopped_at``: off), nobody else; a participant who connects while it goes on gets it in the
connect-time snapshot; a room member who joins a recording is told as well."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from pgcall.relay.hub import Hub

from .fakes import T0, Sub, insert, snapshot, txn, update, user

REC = uuid.UUID("3c1f7a52-9d0e-4b7a-8f1e-2a6b5c4d3e2f")
SID = uuid.UUID("11111111-2222-4333-8444-555555555555")
A, B, C, X = (c * 64 for c in "abcx")


def recording(participants: list[str], stopped: dt.datetime | None = None) -> dict[str, Any]:
    return {"recording_id": REC, "session_id": SID, "room_id": None, "started_by": A,
            "started_at": T0, "stopped_at": stopped, "participants": participants}


@pytest.fixture
def hub() -> Hub:
    hub = Hub()
    hub.restart(snapshot(users=[user(p) for p in (A, B, C, X)]))
    return hub


def connect(hub: Hub, identity: str) -> Sub:
    sub = Sub(identity)
    hub.claim(sub)
    hub.subscribe(sub)
    return sub


def recording_events(sub: Sub) -> list[tuple[str, Any]]:
    """(type, row or rows) of every recordings message ``sub`` got since the last call."""
    return [(m["type"], m.get("row", m.get("rows"))) for kind, m, _ in sub.drain()
            if kind == "control" and m.get("table") == "recordings"]


def test_the_indicator_goes_to_participants_only_and_at_once(hub: Hub) -> None:
    a, b, x = connect(hub, A), connect(hub, B), connect(hub, X)
    for s in (a, b, x):
        s.drain()
    hub.publish(txn(insert("recordings", recording([A, B]))))
    for s in (a, b):
        [(kind, row)] = recording_events(s)
        assert kind == "insert" and row["recording_id"] == str(REC)
        assert row["stopped_at"] is None and row["participants"] == [A, B]
    assert recording_events(x) == []
    stopped = T0 + dt.timedelta(minutes=3)
    hub.publish(txn(update("recordings", recording([A, B], stopped), recording([A, B]))))
    for s in (a, b):
        [(kind, row)] = recording_events(s)
        assert kind == "update" and row["stopped_at"] is not None
    assert recording_events(x) == []


def test_who_connects_during_a_recording_gets_it_in_the_snapshot(hub: Hub) -> None:
    hub.publish(txn(insert("recordings", recording([A, B]))))
    [(kind, rows)] = recording_events(connect(hub, B))
    assert kind == "snapshot" and [r["recording_id"] for r in rows] == [str(REC)]
    assert recording_events(connect(hub, X)) == []
    # Once stopped it is no longer going on: a later connect gets no indicator.
    hub.publish(txn(update("recordings", recording([A, B], T0), recording([A, B]))))
    assert recording_events(connect(hub, A)) == []


def test_a_participant_added_to_a_recording_is_told(hub: Hub) -> None:
    a, c = connect(hub, A), connect(hub, C)
    for s in (a, c):
        s.drain()
    hub.publish(txn(insert("recordings", recording([A]))))
    assert [k for k, _ in recording_events(a)] == ["insert"]
    assert recording_events(c) == []
    hub.publish(txn(update("recordings", recording([A, C]), recording([A]))))
    [(kind, row)] = recording_events(c)
    assert kind == "update" and row["participants"] == [A, C]
