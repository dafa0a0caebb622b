"""Recording requests on the wire and a recorded frame as a replay message (pure parts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgcall.recording.frames import replay_message
from pgcall.wire import protocol as p
from pgcall.wire import recording as w

SID = "a0f375ab-fd13-48b1-8ba0-a68734dddfb8"
RID = "0f0e0d0c-0b0a-4908-8706-050403020100"


def parse(obj: dict[str, Any]) -> p.Control:
    msg = p.parse_message(b"\x00" + json.dumps(obj).encode())
    assert isinstance(msg, p.Control)
    return msg


def error_of(obj: dict[str, Any]) -> str:
    with pytest.raises(p.ProtocolError) as info:
        parse(obj)
    return info.value.message


def test_hello_features_are_a_short_list_of_strings() -> None:
    assert parse({"type": "hello", "features": ["rooms", "recording", "rooms"]}).fields == {
        "features": ["recording", "rooms"]}
    assert parse({"type": "hello"}).fields == {"features": []}
    for bad in ("recording", [1], ["x" * 33], ["a"] * 17):
        assert error_of({"type": "hello", "features": bad}).startswith("Invalid field")


def test_start_and_stop_name_a_call_or_a_room_not_both() -> None:
    assert parse({"type": "start_recording", "session_id": SID.upper()}).fields == {
        "session_id": SID, "room_id": None}
    assert parse({"type": "stop_recording", "room_id": RID}).fields == {
        "session_id": None, "room_id": RID}
    assert error_of({"type": "start_recording"}) == w.ERR_TARGET
    assert error_of({"type": "start_recording", "session_id": SID, "room_id": RID}) == \
        w.ERR_TARGET
    assert error_of({"type": "start_recording", "session_id": "x"}) == "Call session not found"


def test_get_recording_windows_are_bounded() -> None:
    got = parse({"type": "get_recording", "recording_id": RID, "from_ms": 1000})
    assert got.fields == {"recording_id": RID, "from_ms": 1000,
                          "to_ms": 1000 + w.CHUNK_MAX_MS}
    got = parse({"type": "get_recording", "recording_id": RID, "from_ms": 0, "to_ms": 10**9})
    assert got.fields["to_ms"] == w.CHUNK_MAX_MS
    assert error_of({"type": "get_recording", "recording_id": RID, "from_ms": 5,
                     "to_ms": 4}).startswith("Invalid field: to_ms")
    assert error_of({"type": "get_recording", "recording_id": RID, "from_ms": -1}) == \
        "Invalid field: from_ms must be milliseconds"
    assert error_of({"type": "delete_recording", "recording_id": "nope"}) == w.ERR_NOT_FOUND


def test_a_replayed_frame_carries_its_time_and_its_kind_s_fields() -> None:
    payload = b"\xff\xd8" + b"x" * 10
    data = replay_message(RID, ("video", "a" * 64, 7, 1234, "thumb", 160, 90, None, None,
                                None, payload))
    hlen = int.from_bytes(data[1:5], "big")
    assert data[0] == 2 and data[5 + hlen:] == payload
    assert json.loads(data[5:5 + hlen]) == {"recording_id": RID, "from": "a" * 64, "seq": 7,
                                            "t": 1234, "width": 160, "height": 90,
                                            "layer": "thumb"}
    data = replay_message(RID, ("audio", "b" * 64, 1, 50, None, None, None, 16000, 1,
                                0.019999999552965164, b"\x00\x01"))
    hlen = int.from_bytes(data[1:5], "big")
    assert data[0] == 1
    assert json.loads(data[5:5 + hlen])["rms"] == 0.02  # float4, shown as pg-relay does
