"""The pure parts of rooms: speaker detection from audio levels (stream time only), each
member's main and layers, the video forwarding rule, and the room requests on the wire."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgcall.rooms import forwarding as fw
from pgcall.rooms.speaker import AUDIBLE_MAX, HANGOVER_US, HOLD_US, SpeakerTracker
from pgcall.wire import protocol as p
from pgcall.wire import rooms as w

A, B, C, D, E = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64)
RID = "0f0e0d0c-0b0a-4908-8706-050403020100"
FRAME_US = 50_000


def talk(tracker: SpeakerTracker, who: str, start: int, frames: int, rms: float = 0.3) -> bool:
    changed = False
    for i in range(frames):
        changed |= tracker.frame(who, rms, start + i * FRAME_US)
    return changed


# -- speaker -----------------------------------------------------------------------------------


def test_the_first_voice_is_the_speaker_at_once() -> None:
    t = SpeakerTracker()
    assert t.frame(A, 0.2, 0) is True
    assert (t.speaker, t.previous) == (A, None)


def test_a_challenger_must_lead_for_the_hold_time() -> None:
    t = SpeakerTracker()
    talk(t, A, 0, 10, rms=0.1)
    start = 10 * FRAME_US
    frames_before_hold = HOLD_US // FRAME_US
    for i in range(frames_before_hold):
        now = start + i * FRAME_US
        assert (t.frame(A, 0.1, now), t.frame(B, 0.5, now)) == (False, False), i
    # Whichever frame comes once B has led for the hold time makes the change.
    assert t.frame(A, 0.1, start + frames_before_hold * FRAME_US) is True
    assert (t.speaker, t.previous) == (B, A)


def test_a_short_interjection_does_not_take_over() -> None:
    t = SpeakerTracker()
    talk(t, A, 0, 20, rms=0.2)
    now = 20 * FRAME_US
    for i in range(3):  # 150 ms louder than the speaker, then quiet again
        t.frame(A, 0.2, now + i * FRAME_US)
        t.frame(B, 0.6, now + i * FRAME_US)
    talk(t, A, now + 3 * FRAME_US, 20, rms=0.2)
    assert t.speaker == A


def test_silence_keeps_the_last_speaker_and_a_new_voice_takes_over_sooner() -> None:
    t = SpeakerTracker()
    talk(t, A, 0, 10)
    quiet_from = 10 * FRAME_US + HANGOVER_US + 1  # A stopped sending: silent
    assert t.level(A, quiet_from) == 0.0 and t.speaker == A
    assert talk(t, B, quiet_from, (HOLD_US // 2) // FRAME_US) is False
    assert talk(t, B, quiet_from + HOLD_US // 2, 1) is True
    assert t.speaker == B


def test_audible_is_the_loudest_few_and_silent_members_drop_out() -> None:
    t = SpeakerTracker()
    levels = {A: 0.1, B: 0.2, C: 0.3, D: 0.4, E: 0.001}
    for who, rms in levels.items():
        t.frame(who, rms, 0)
    assert t.audible(0) == [D, C, B][:AUDIBLE_MAX]
    assert E not in t.audible(0)  # below the speech threshold
    assert t.audible(HANGOVER_US + 1) == []


def test_removing_the_speaker_falls_back_to_the_previous_one() -> None:
    t = SpeakerTracker()
    talk(t, A, 0, 5)
    talk(t, B, 5 * FRAME_US + HANGOVER_US + 1, 10)
    assert (t.speaker, t.previous) == (B, A)
    t.remove(B)
    assert (t.speaker, t.previous) == (A, None)


# -- mains, layers and forwarding ----------------------------------------------------------------


def test_mains_follow_pin_then_speaker_then_previous_then_first_joined() -> None:
    members = [A, B, C, D, E]
    mains = fw.mains(members, {C: E, D: D}, speaker=B, previous=C)
    assert mains == {A: B, B: C, C: E, D: B, E: B}  # D pinned itself: ignored
    assert fw.mains(members, {}, None, None) == {A: B, B: A, C: A, D: A, E: A}
    assert fw.mains(members, {A: "f" * 64}, None, None)[A] == B  # pinned someone gone


def test_small_rooms_send_and_get_everything_at_full_size() -> None:
    members = [A, B, C, D]
    mains = fw.mains(members, {}, A, None)
    assert all(fw.layers(members, mains, m) == (True, False) for m in members)
    assert fw.forward_video(True, mains, B, C, "full") is True
    assert fw.forward_video(True, mains, B, C, "thumb") is False
    assert fw.forward_video(True, mains, B, B, "full") is False


def test_large_rooms_send_full_only_to_whoever_has_it_as_main() -> None:
    members = [A, B, C, D, E]
    mains = fw.mains(members, {E: D}, speaker=C, previous=A)
    assert fw.layers(members, mains, C) == (True, True)  # the speaker
    assert fw.layers(members, mains, A) == (True, True)  # the speaker's own main
    assert fw.layers(members, mains, D) == (True, True)  # pinned by E
    assert fw.layers(members, mains, B) == (False, True)
    assert fw.forward_video(False, mains, B, C, "full") is True
    assert fw.forward_video(False, mains, E, C, "full") is False  # E watches D
    assert fw.forward_video(False, mains, E, D, "full") is True
    assert all(fw.forward_video(False, mains, r, B, "thumb") for r in (A, C, D, E))


# -- the wire --------------------------------------------------------------------------------------


def control(obj: dict[str, Any]) -> bytes:
    return b"\x00" + json.dumps(obj).encode()


def parse(obj: dict[str, Any]) -> Any:
    return p.parse_message(control(obj))


def error_of(obj: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(p.ProtocolError) as info:
        parse(obj)
    return info.value.req_type, info.value.message


def test_create_room_trims_and_checks_the_name() -> None:
    msg = parse({"type": "create_room", "name": "  Stand-up  ", "call_type": "Video",
                 "private": True})
    assert msg == p.Control("create_room", {"name": "Stand-up", "call_type": "Video",
                                            "private": True})
    assert parse({"type": "create_room", "name": "x", "call_type": "video"}).fields[
        "call_type"] == "Voice"
    assert error_of({"type": "create_room", "name": "   "})[1] == w.ERR_NAME_EMPTY
    assert error_of({"type": "create_room", "name": "x" * 65})[1] == w.ERR_NAME_LONG
    assert error_of({"type": "create_room", "name": "a\u202eb"})[1] == w.ERR_NAME_CHARS
    assert error_of({"type": "create_room", "name": "x", "private": "yes"})[1] == \
        "Invalid field: private must be true or false"


@pytest.mark.parametrize("mtype", sorted(w.ROOM_CONTROL_TYPES - {"create_room"}))
def test_every_room_request_needs_a_room_id(mtype: str) -> None:
    assert error_of({"type": mtype, "room_id": "nope"}) == (mtype, w.ERR_ROOM_NOT_FOUND)
    assert error_of({"type": mtype, "room_id": 5}) == (
        mtype, "Invalid field: room_id must be a string")


def test_room_request_fields() -> None:
    upper = RID.upper()
    assert parse({"type": "join_room", "room_id": upper, "key": "k"}).fields == {
        "room_id": RID, "key": "k"}
    assert error_of({"type": "join_room", "room_id": RID, "key": 7})[1] == w.ERR_ROOM_KEY
    assert parse({"type": "pin", "room_id": RID, "target": None}).fields["target"] is None
    assert error_of({"type": "pin", "room_id": RID, "target": "x"})[1] == \
        w.ERR_TARGET_NOT_MEMBER
    assert parse({"type": "set_room_state", "room_id": RID, "mic": False}).fields[
        "state"] == {"mic": False}
    assert error_of({"type": "set_room_state", "room_id": RID})[1] == w.ERR_NO_STATE
    assert error_of({"type": "set_room_state", "room_id": RID, "hand": 1})[1] == \
        "Invalid field: hand must be true or false"
    assert error_of({"type": "invite_to_room", "room_id": RID, "target": "B" * 64})[1] == \
        "Target is not online"
    assert parse({"type": "send_room_message", "room_id": RID, "text": " hi "}).fields[
        "text"] == "hi"


def media(tag: int, header: dict[str, Any], payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return bytes([tag]) + len(head).to_bytes(4, "big") + head + payload


def test_room_media_headers() -> None:
    video = p.parse_message(media(2, {"room_id": RID, "seq": 3, "width": 160, "height": 90,
                                      "layer": "thumb"}, b"\xff\xd8xx"))
    assert isinstance(video, w.RoomMedia)
    assert (video.kind, video.room_id, video.seq, video.header) == (
        "video", RID, 3, {"width": 160, "height": 90, "layer": "thumb"})
    audio = p.parse_message(media(1, {"room_id": RID, "seq": 1, "sample_rate": 16000,
                                      "channels": 1, "rms": 0.5}, b"\0\0"))
    assert isinstance(audio, w.RoomMedia) and audio.header["rms"] == 0.5
    default = p.parse_message(media(2, {"room_id": RID, "seq": 3, "width": 1, "height": 1},
                                    b"\xff\xd8"))
    assert isinstance(default, w.RoomMedia) and default.header["layer"] == "full"
    for header, payload, message in (
        ({"room_id": "x", "seq": 1, "width": 1, "height": 1}, b"\xff\xd8", w.ERR_ROOM_NOT_FOUND),
        ({"room_id": RID, "seq": 1, "width": 1, "height": 1, "layer": "big"}, b"\xff\xd8",
         "Invalid frame header: layer"),
        ({"room_id": RID, "seq": -1, "width": 1, "height": 1}, b"\xff\xd8",
         "Invalid frame header: seq"),
        ({"room_id": RID, "seq": 1, "width": 1, "height": 1}, b"no", p.ERR_NOT_JPEG),
    ):
        with pytest.raises(p.ProtocolError) as info:
            p.parse_message(media(2, header, payload))
        assert (info.value.req_type, info.value.message) == ("send_video_frame", message)
