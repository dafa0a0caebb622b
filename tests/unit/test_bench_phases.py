"""The load generator's streams are not in step: each of a call's four streams (video and
audio, each way) has its own phase, fixed for a given call, so runs repeat; so has each stream
of a room's member."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from pgcall.bench.client import AUDIO_FPS, stream_phase
from pgcall.bench.roomclient import _send_audio, _send_video, member_phase
from pgcall.bench.roommember import Member, Room, RoomPlan, read_due
from pgcall.bench.roomreport import RoomRecorder
from pgcall.bench.roomstats import speaker_at

RATES = {"video": 15.0, "audio": float(AUDIO_FPS)}  # the bench's default video rate


def phases_of(call: int) -> dict[tuple[str, str], float]:
    return {(role, kind): stream_phase(call, role, kind, rate)
            for role in ("a", "b") for kind, rate in RATES.items()}


def test_a_phase_lies_within_the_first_frame_interval() -> None:
    for call in range(50):
        for (_, kind), phase in phases_of(call).items():
            assert 0 <= phase < 1 / RATES[kind]


def test_no_two_streams_of_a_call_are_due_together() -> None:
    for call in range(50):
        due = sorted(phases_of(call).values())
        gaps = [b - a for a, b in itertools.pairwise(due)]
        assert min(gaps) > 0


def test_phases_are_fixed_per_call_and_differ_between_calls() -> None:
    assert phases_of(3) == phases_of(3)
    assert len({phases_of(call)[("a", "video")] for call in range(20)}) == 20


# Rooms: each member's streams at their own phase, the slots (and so turns and rates) on the
# room's one clock.

class _Socket:
    """Records when each message was sent, on trio's (virtual) clock."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    async def send_message(self, message: bytes) -> None:
        self.sent.append((trio.current_time(), message))


def _room(size: int) -> tuple[Room, list[_Socket]]:
    plan = RoomPlan(urls=("ws://x",), duration_s=1.0, room_size=size, fps=15.0,
                    frame_bytes=100, thumb_bytes=50, turn_s=0.5, settle_s=0.1)
    room = Room(plan, 7, RoomRecorder())
    room.room_id = "r"
    sockets = [_Socket() for _ in range(size)]
    for i, ws in enumerate(sockets):
        m = Member(ws, room, i)  # type: ignore[arg-type]
        m.full = True
        room.members.append(m)
    return room, sockets


async def test_room_members_send_video_at_their_own_phases_in_fixed_slots(
        autojump_clock: trio.testing.MockClock) -> None:
    room, sockets = _room(3)
    start, start_ns = trio.current_time(), 1_000_000_000
    async with trio.open_nursery() as nursery:
        for m in room.members:
            nursery.start_soon(_send_video, m, room.plan, start, start_ns, start + 1.0)
    offsets = []
    for m, ws in zip(room.members, sockets, strict=True):
        assert len(ws.sent) == 15  # one frame per slot of the second
        offset = ws.sent[0][0] - start
        assert 0 <= offset < 1 / 15
        assert offset == pytest.approx(member_phase(m, "video", 15.0))
        for tick, (at, message) in enumerate(ws.sent):
            assert at - start == pytest.approx(tick / 15 + offset)
            payload = message[5 + int.from_bytes(message[1:5], "big"):]
            assert read_due(payload) - start_ns == round(tick / 15 * 1e9)  # the slot
        offsets.append(offset)
    assert len(set(offsets)) == 3


async def test_a_speakers_audio_keeps_the_turns_slots_at_its_own_phase(
        autojump_clock: trio.testing.MockClock) -> None:
    room, sockets = _room(2)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for m in room.members:
            nursery.start_soon(_send_audio, m, room.plan, start, start + 1.0)
    for m, ws in zip(room.members, sockets, strict=True):
        phase = member_phase(m, "audio", AUDIO_FPS)
        slots = [round((at - start - phase) * AUDIO_FPS) for at, _ in ws.sent]
        # Its turns' slots, no others: member 0 speaks in [0, 0.5) s, member 1 in [0.5, 1).
        assert slots == [s for s in range(AUDIO_FPS) if speaker_at(s / AUDIO_FPS, 0.5, 2)
                         == m.index]
        assert all(at - start == pytest.approx(s / AUDIO_FPS + phase)
                   for (at, _), s in zip(ws.sent, slots, strict=True))


def test_the_scale_write_up_says_which_client_a_section_was_measured_with() -> None:
    from benchreport.scale.mdcommon import phasing
    earlier = phasing({"media": {"stream_phases": True}})  # type: ignore[typeddict-item]
    now = phasing({"media": {"stream_phases": True, "bench_client": "own"}})  # type: ignore
    assert "trio-websocket" in earlier and "trio-websocket" not in now
    assert "not in step" in earlier and "not in step" in now
