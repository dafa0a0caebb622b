"""The bench's room members at work: K clients make one room and stream into it as browsers do.

Owns: the room flow of docs/protocol-rooms.md (connect, the creator's ``create_room``, the
others' ``join_room``, a chat message as a fence that proves every member has its latest
``room_layers``, ``leave_room`` at the end), and what each member sends: video by the layers
it is told (the full layer at the full rate, the thumbnail on every second tick), audio only
during its speaking turn (silence suppressed otherwise), each frame on a fixed schedule, each
member's streams at their own phase (``member_phase``). Does
not own: reading what the server sends (``roommember``), the arithmetic (``roomstats``), the
report (``roomreport``) or processes (``roomrunner``).

All members of a room live in one process, so latency is measured on one clock, with the send
time written into each payload as the call bench does. A video frame also carries the time it
was due (its slot in the sender's schedule): rates are counted by slot, so a late send does
not move a frame out of its window.
"""

from __future__ import annotations

import contextlib
import itertools
import time

import trio

from ..wire.encode import encode_media
from .client import (
    AUDIO_BYTES,
    AUDIO_FPS,
    DRAIN_S,
    LATE_TOLERANCE_S,
    SETUP_TIMEOUT_S,
    audio_payload,
    describe_ws_error,
    open_ws,
    stream_phase,
)
from .roommember import Member, Room, RoomPlan, member_url, room_frame
from .roomreport import RoomRecorder
from .roomstats import analyze, rotation, speaker_at
from .wsclient import HandshakeError

FULL_SIZE = {"width": 640, "height": 360}
THUMB_SIZE = {"width": 160, "height": 90}
SPEECH = {"sample_rate": 16000, "channels": 1, "rms": 0.3}


def member_phase(m: Member, kind: str, rate: float) -> float:
    """How far into each of its slots a member's stream sends (``stream_phase``, as a call's
    streams): members' cameras and microphones are not in step. The slots, and so the
    speaker's turns and the windows rates are counted in, stay on the room's one clock."""
    return stream_phase(m.room.index, f"member {m.index}", kind, rate)


async def _send_video(m: Member, plan: RoomPlan, start: float, start_ns: int,
                      stop: float) -> None:
    """Tick n falls in the slot start + n/fps and is sent at the member's phase into it (a
    late tick does not shift the later ones): the full layer on every tick while told
    ``full``, the thumbnail on even ticks while told ``thumb``. Each layer numbers its own
    frames, and each frame carries its slot, by which rates are counted."""
    phase = member_phase(m, "video", plan.fps)
    seqs = {"full": 0, "thumb": 0}
    tick = 0
    while (slot := start + tick / plan.fps) < stop:
        due = slot + phase
        late = trio.current_time() - due > LATE_TOLERANCE_S
        if not late:
            await trio.sleep_until(due)
        for layer, on, size, dims in (("full", m.full, plan.frame_bytes, FULL_SIZE),
                                      ("thumb", m.thumb and tick % 2 == 0, plan.thumb_bytes,
                                       THUMB_SIZE)):
            if not on:
                continue
            seq = seqs[layer]
            header = {"room_id": m.room.room_id, "seq": seq, **dims, "layer": layer}
            payload = room_frame(time.monotonic_ns(),
                                 start_ns + round(tick / plan.fps * 1e9), seq, size)
            if not await m.send(encode_media("video", header, payload)):
                return
            m.room.log.on_sent(m.index, layer, size, late=late)
            m.room.recorder.sent()
            seqs[layer] = seq + 1
        tick += 1


async def _send_audio(m: Member, plan: RoomPlan, start: float, stop: float) -> None:
    """Slot n (start + n/AUDIO_FPS, sent at the member's phase into it) carries a frame only
    in this member's turns."""
    phase = member_phase(m, "audio", AUDIO_FPS)
    seq = 0
    for slot in itertools.count():
        if (at := start + slot / AUDIO_FPS) >= stop:
            return
        if speaker_at(slot / AUDIO_FPS, plan.turn_s, plan.room_size) != m.index:
            continue
        due = at + phase
        late = trio.current_time() - due > LATE_TOLERANCE_S
        if not late:
            await trio.sleep_until(due)
        header = {"room_id": m.room.room_id, "seq": seq, **SPEECH}
        if not await m.send(encode_media("audio", header,
                                         audio_payload(time.monotonic_ns(), seq))):
            return
        m.room.log.on_sent(m.index, "audio", AUDIO_BYTES, late=late)
        m.room.recorder.sent()
        seq += 1


async def _set_up(room: Room) -> bool:
    """Create, join, fence. False (the reason recorded) if the room did not come together."""
    creator, others = room.members[0], room.members[1:]
    step = ["identity and snapshot"]

    async def steps() -> None:
        for m in room.members:
            await m.ready.wait()
        room.index_of = {str(m.identity): m.index for m in room.members}
        step[0] = "create_room reply"
        if not await creator.request({"type": "create_room", "call_type": "Video",
                                      "name": f"bench room {room.index}"}):
            return
        room.room_id = creator.replies["create_room"].get("room_id")
        step[0] = "join_room replies"
        joined = []

        async def join(m: Member) -> None:
            joined.append(await m.request({"type": "join_room", "room_id": room.room_id}))

        async with trio.open_nursery() as nursery:
            for m in others:
                nursery.start_soon(join, m)
        if not all(joined):
            return
        # The fence travels the stream after every join and every layer change they caused.
        step[0] = "fence message"
        if not await creator.request({"type": "send_room_message", "room_id": room.room_id,
                                      "text": room.fence}):
            return
        for m in room.members:
            await m.fenced.wait()
        step[0] = "room_layers"
        for m in room.members:
            await m.layers.wait()
        if room.plan.record:
            step[0] = "hello replies"
            said = []

            async def hello(m: Member) -> None:
                said.append(await m.request({"type": "hello", "features": ["recording"]}))

            async with trio.open_nursery() as nursery:
                for m in room.members:
                    nursery.start_soon(hello, m)
            step[0] = "start_recording reply"
            if not all(said) or not await creator.request(
                    {"type": "start_recording", "room_id": room.room_id}):
                return
        step[0] = ""

    with trio.move_on_after(SETUP_TIMEOUT_S) as timer:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on, room.failed, nursery.cancel_scope)
            await steps()
            nursery.cancel_scope.cancel()
    if timer.cancelled_caught and not room.failed.is_set():
        room.recorder.error(f"room setup: no {step[0]} within {SETUP_TIMEOUT_S:g} s")
    return not step[0]


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _stream(room: Room) -> None:
    plan = room.plan
    start, start_ns = trio.current_time(), time.monotonic_ns()  # one instant, two clocks
    room.log.start(start_ns, plan.duration_s)
    stop = start + plan.duration_s
    async with trio.open_nursery() as nursery:
        for m in room.members:
            nursery.start_soon(_send_video, m, plan, start, start_ns, stop)
            nursery.start_soon(_send_audio, m, plan, start, stop)
    # Frames still in flight get DRAIN_S to arrive; a lost frame never does.
    room.draining = True
    if room.log.complete():
        return
    with trio.move_on_after(DRAIN_S):
        await room.drained.wait()


async def _leave(room: Room) -> None:
    """Every member leaves; waiting for the replies means an error is seen before closing."""
    with trio.move_on_after(DRAIN_S):
        async with trio.open_nursery() as nursery:
            for m in room.members:
                nursery.start_soon(m.request, {"type": "leave_room", "room_id": room.room_id})


async def run_room(plan: RoomPlan, index: int, start_at: float, recorder: RoomRecorder) -> None:
    """One room of fresh clients, from connect to leave; its figures go to ``recorder`` if it
    streamed. What the server does wrong is recorded, never raised."""
    await trio.sleep_until(start_at)
    room = Room(plan, index, recorder)
    streamed = False
    try:
        async with contextlib.AsyncExitStack() as stack:
            for i in range(plan.room_size):
                ws = await stack.enter_async_context(open_ws(member_url(plan, index, i)))
                room.members.append(Member(ws, room, i))
            async with trio.open_nursery() as nursery:
                for m in room.members:
                    nursery.start_soon(m.receive_loop)
                if await _set_up(room):
                    await _stream(room)
                    streamed = True
                    await _leave(room)
                for m in room.members:
                    m.closing = True
                nursery.cancel_scope.cancel()
    except (HandshakeError, OSError) as exc:
        recorder.error(describe_ws_error(exc))
    if streamed:
        turns = rotation(plan.duration_s, plan.turn_s, plan.room_size)
        recorder.rooms.append(analyze(room.log, turns, plan.settle_s))
