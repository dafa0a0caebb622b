"""The hub's room routing against a scripted stream, deterministically (commit times are the
rooms' clock): room state to members only, the snapshot a joining member gets, invitations to
the invitee, one frame fanned out by the forwarding policy, the speaker and layer messages,
and the audio of the loudest few only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pgcall.relay.hub import Hub
from pgcall.rooms.speaker import HANGOVER_US, HOLD_US

from .fakes import (
    Sub,
    delete,
    insert,
    member,
    room,
    room_audio,
    room_video,
    settings,
    snapshot,
    txn,
    update,
    user,
)

RID = uuid.UUID("0f0e0d0c-0b0a-4908-8706-050403020100")
PEOPLE = [c * 64 for c in "abcdefg"]
A, B, C, D, E, F, X = PEOPLE  # X never joins: the bystander


@pytest.fixture
def hub() -> Hub:
    hub = Hub()
    hub.restart(snapshot(users=[user(p) for p in PEOPLE], media_settings=[settings()]))
    return hub


@pytest.fixture
def subs(hub: Hub) -> dict[str, Sub]:
    out = {}
    for p in PEOPLE:
        out[p] = sub = Sub(p)
        hub.claim(sub)
        hub.subscribe(sub)
        sub.drain()  # the connect-time snapshot
    return out


def join(hub: Hub, *who: str, start_s: int = 0) -> None:
    for i, identity in enumerate(who):
        changes = [insert("room_members", member(RID, identity, start_s + i))]
        if identity == who[0] and hub.mirror.room(str(RID)) is None:
            changes.insert(0, insert("rooms", room(RID, identity)))
        hub.publish(txn(*changes))


def controls(sub: Sub) -> list[dict[str, Any]]:
    return [m for kind, m, _ in sub.drain() if kind == "control"]


def media(sub: Sub) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, m) for kind, m, _ in sub.drain() if kind != "control"]


def test_a_joining_member_gets_the_room_and_the_others_its_row(hub: Hub,
                                                                subs: dict[str, Sub]) -> None:
    join(hub, A)
    first = controls(subs[A])
    assert [(m["type"], m.get("table")) for m in first] == [
        ("snapshot", "rooms"), ("snapshot", "room_members"), ("snapshot", "room_messages"),
        ("room_speaker", None), ("room_layers", None)]
    assert first[0]["rows"][0]["room_id"] == str(RID)
    join(hub, B, start_s=1)
    assert [(m["type"], m["table"], m["row"]["identity"]) for m in controls(subs[A])] == [
        ("insert", "room_members", B)]
    snap = controls(subs[B])
    assert [r["identity"] for r in snap[1]["rows"]] == [A, B]
    assert controls(subs[X]) == []


def test_room_chat_and_state_go_to_members_only(hub: Hub, subs: dict[str, Sub]) -> None:
    join(hub, A, B)
    for s in subs.values():
        s.drain()
    msg = {"id": 1, "room_id": RID, "sender": A, "sent_at": member(RID, A)["joined_at"],
           "text": "hi"}
    hub.publish(txn(insert("room_messages", msg)))
    hub.publish(txn(update("room_members", member(RID, B) | {"hand": True},
                           member(RID, B))))
    for m in (A, B):
        assert [(c["type"], c["table"]) for c in controls(subs[m])] == [
            ("insert", "room_messages"), ("update", "room_members")]
    for other in (C, X):
        assert subs[other].drain() == []


def test_an_invitation_reaches_the_invitee_with_the_room_name(hub: Hub,
                                                               subs: dict[str, Sub]) -> None:
    join(hub, A)
    subs[A].drain()
    invite = {"room_id": RID, "invitee": C, "inviter": A,
              "created_at": member(RID, A)["joined_at"]}
    hub.publish(txn(insert("room_invites", invite)))
    (got,) = controls(subs[C])
    assert got["row"]["room_name"] == "room" and got["row"]["call_type"] == "Video"
    assert [c["table"] for c in controls(subs[A])] == ["room_invites"]
    assert subs[X].drain() == []
    # A client connecting with an invitation waiting gets it in its snapshot.
    later = Sub(C)
    hub.claim(later)
    hub.subscribe(later)
    tables = [m.get("table") for m in controls(later)]
    assert tables[-1] == "room_invites"
    hub.publish(txn(delete("room_invites", invite)))
    assert [c["type"] for c in controls(later)] == ["delete"]


def test_small_room_fans_every_full_frame_out_to_every_other_member(
        hub: Hub, subs: dict[str, Sub]) -> None:
    join(hub, A, B, C, D)
    for s in subs.values():
        s.drain()
    hub.publish(txn(room_video(RID, B, 1)))
    for m in (A, C, D):
        assert media(subs[m]) == [("video", {"room_id": str(RID), "from": B, "seq": 1,
                                             "width": 640, "height": 360, "layer": "full"})]
    assert media(subs[B]) == [] and media(subs[X]) == []
    assert hub.rooms.stats.frames_in["video"] == 1
    assert hub.rooms.stats.frames_out["video"] == 3


def test_large_room_layers_speaker_and_thumbnails(hub: Hub, subs: dict[str, Sub]) -> None:
    join(hub, A, B, C, D)
    for s in subs.values():
        s.drain()
    join(hub, E, start_s=10)  # five: the room is no longer small
    told = {m: [c for c in controls(subs[m]) if c["type"] == "room_layers"][-1]
            for m in (A, B, C, D, E)}
    assert {m: (t["full"], t["thumb"]) for m, t in told.items()} == {
        A: (True, True), B: (True, True), C: (False, True), D: (False, True),
        E: (False, True)}
    # C speaks: the first voice becomes the speaker at once.
    hub.publish(txn(room_audio(RID, C, 1), at_us=1_000_000))
    for m in (A, B, C, D, E):
        got = controls(subs[m])
        assert {"type": "room_speaker", "room_id": str(RID), "speaker": C} in got, m
    # Now A (C's main: the first to join) and C (everyone else's main) send full layers.
    hub.publish(txn(room_video(RID, C, 2), room_video(RID, B, 2, "full"),
                    room_video(RID, D, 2, "thumb"), at_us=1_050_000))
    assert [(k, m["from"], m["layer"]) for k, m in media(subs[A])] == [
        ("video", C, "full"), ("video", D, "thumb")]
    assert [(k, m["from"], m["layer"]) for k, m in media(subs[C])] == [
        ("video", D, "thumb")]  # C's main is A, who sent nothing; B's full is nobody's main
    assert [(k, m["from"]) for k, m in media(subs[D])] == [("video", C)]


def test_audio_of_the_loudest_three_only_and_a_speaker_switch(hub: Hub,
                                                              subs: dict[str, Sub]) -> None:
    join(hub, A, B, C, D, E)
    for s in subs.values():
        s.drain()
    t = 1_000_000
    levels = {A: 0.5, B: 0.4, C: 0.3, D: 0.2}
    hub.publish(txn(*(room_audio(RID, who, 1, rms) for who, rms in levels.items()), at_us=t))
    got = [m["from"] for k, m in media(subs[E]) if k == "audio"]
    assert got == [A, B, C]  # D is the fourth loudest: not forwarded
    assert hub.rooms.stats.frames_not_forwarded == 1
    assert hub.rooms.rooms[str(RID)].tracker.speaker == A
    # B outspeaks A for the hold time and takes over; everyone is told.
    for step in range(HOLD_US // 50_000 + 1):
        now = t + (step + 1) * 50_000
        hub.publish(txn(room_audio(RID, A, 2 + step, 0.1), room_audio(RID, B, 2 + step, 0.6),
                        at_us=now))
    assert hub.rooms.rooms[str(RID)].tracker.speaker == B
    speakers = [c["speaker"] for c in controls(subs[E]) if c["type"] == "room_speaker"]
    assert speakers == [B]
    # Silent long enough, a member is out of the audible set.
    hub.publish(txn(room_audio(RID, C, 99, 0.3), at_us=now + HANGOVER_US + 1))
    assert hub.rooms.rooms[str(RID)].tracker.audible(now + HANGOVER_US + 1) == [C]


def test_leaving_members_stop_getting_frames_and_the_last_one_ends_it(
        hub: Hub, subs: dict[str, Sub]) -> None:
    join(hub, A, B, C)
    for s in subs.values():
        s.drain()
    hub.publish(txn(delete("room_members", member(RID, C, 2))))
    assert [(c["type"], c["old"]["identity"]) for c in controls(subs[C])] == [("delete", C)]
    hub.publish(txn(room_video(RID, A, 1)))
    assert media(subs[C]) == [] and len(media(subs[B])) == 1
    hub.publish(txn(delete("room_members", member(RID, A, 0)),
                    delete("room_members", member(RID, B, 1)),
                    delete("rooms", room(RID, A))))
    assert str(RID) not in hub.rooms.rooms and hub.rooms.member_room == {}
