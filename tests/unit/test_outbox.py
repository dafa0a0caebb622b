"""The bounded per-client outbox and its slow-client policy (DESIGN.md §2 "hypercorn")."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from pgcall.relay.outbox import CLOSE_TOO_SLOW, CloseRequested, Outbox, OutboxLimits

from .fakes import drops


def frame(kind: str, n: int, size: int = 10) -> bytes:
    return f"{kind}:{n}:".encode().ljust(size, b".")


def drain(box: Outbox) -> list[bytes]:
    out = []
    while (data := box.get_nowait()) is not None:
        out.append(data)
    return out


def test_video_dropped_oldest_first_beyond_max_video() -> None:
    limits = OutboxLimits(max_video=3, max_audio=100)
    box = Outbox(limits)
    sent = [frame("v", i) for i in range(8)]
    for data in sent:
        assert box.put("video", data)
    assert len(box) == limits.max_video
    assert drops(box) == (len(sent) - limits.max_video, 0)
    assert drain(box) == sent[-limits.max_video :]


def test_audio_dropped_oldest_first_beyond_max_audio() -> None:
    limits = OutboxLimits(max_video=100, max_audio=4)
    box = Outbox(limits)
    sent = [frame("a", i) for i in range(11)]
    for data in sent:
        assert box.put("audio", data)
    assert drops(box) == (0, len(sent) - limits.max_audio)
    assert drain(box) == sent[-limits.max_audio :]


def test_dropping_one_kind_keeps_the_others_and_the_order() -> None:
    box = Outbox(OutboxLimits(max_video=2, max_audio=2))
    puts = [("state", b"s0"), ("video", b"v0"), ("audio", b"a0"), ("video", b"v1"),
            ("state", b"s1"), ("video", b"v2"), ("audio", b"a1"), ("audio", b"a2"),
            ("state", b"s2")]
    for kind, data in puts:
        assert box.put(kind, data)  # type: ignore[arg-type]
    # v0 and a0 are the oldest of their kinds and went; everything else keeps its place.
    assert drain(box) == [b"s0", b"v1", b"s1", b"v2", b"a1", b"a2", b"s2"]
    assert drops(box) == (1, 1)


def test_state_is_never_dropped_up_to_max_state() -> None:
    limits = OutboxLimits(max_video=1, max_audio=1, max_state=50)
    box = Outbox(limits)
    sent = [frame("s", i) for i in range(limits.max_state)]
    for i, data in enumerate(sent):
        assert box.put("state", data)
        assert box.put("video", frame("v", i))  # video churns around the state messages
    assert not box.overflowed and box.close_request is None
    got = drain(box)
    assert [m for m in got if m.startswith(b"s:")] == sent
    assert drops(box)[0] == limits.max_state - 1


async def test_state_overflow_refuses_and_requests_close_4008() -> None:
    limits = OutboxLimits(max_state=5)
    box = Outbox(limits)
    for i in range(limits.max_state):
        assert box.put("state", frame("s", i))
    assert box.put("state", b"one too many") is False
    assert box.overflowed
    assert box.close_request == (CLOSE_TOO_SLOW, "Too far behind")
    assert box.put("state", b"after") is False  # an overflowed outbox takes nothing more
    assert box.put("video", b"after") is False
    with pytest.raises(CloseRequested) as info:
        await box.get()
    assert (info.value.code, info.value.reason) == (4008, "Too far behind")


async def test_byte_bound_drops_media_first_then_overflows_on_state() -> None:
    limits = OutboxLimits(max_video=100, max_audio=100, max_state=100, max_bytes=1000)
    box = Outbox(limits)
    for i in range(9):
        assert box.put("video", frame("v", i, 100))
    assert box.queued_bytes == 900
    assert box.put("audio", frame("a", 0, 100))
    assert box.queued_bytes == 1000 and drops(box) == (0, 0)
    # Over the byte bound: the oldest video goes, before audio.
    assert box.put("state", frame("s", 0, 250))
    assert box.queued_bytes <= limits.max_bytes
    assert drops(box) == (3, 0)
    # Media alone cannot make room for this much state: the client is too far behind.
    assert box.put("state", frame("s", 1, 900)) is False
    assert box.overflowed
    with pytest.raises(CloseRequested) as info:
        await box.get()
    assert info.value.code == CLOSE_TOO_SLOW


def test_queued_bytes_and_len_follow_put_and_get() -> None:
    box = Outbox()
    box.put("state", b"x" * 7)
    box.put("video", b"y" * 11)
    assert (len(box), box.queued_bytes) == (2, 18)
    assert box.get_nowait() == b"x" * 7
    assert (len(box), box.queued_bytes) == (1, 11)
    assert box.get_nowait() == b"y" * 11
    assert (len(box), box.queued_bytes) == (0, 0)
    assert box.get_nowait() is None


async def test_get_waits_for_a_put() -> None:
    box = Outbox()
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await box.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        box.put("state", b"hello")
    assert got == [b"hello"]


async def test_request_close_wakes_a_waiting_get() -> None:
    box = Outbox()
    raised: list[CloseRequested] = []

    async def reader() -> None:
        try:
            await box.get()
        except CloseRequested as exc:
            raised.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert raised == []
        box.request_close(4001, "Replaced by new connection")
    assert [(e.code, e.reason) for e in raised] == [(4001, "Replaced by new connection")]


async def test_close_is_urgent_and_the_first_request_wins() -> None:
    box = Outbox()
    box.put("state", b"queued")
    box.request_close(4029, "Rate limit exceeded")
    box.request_close(4001, "Replaced by new connection")
    assert box.put("state", b"later") is False
    with pytest.raises(CloseRequested) as info:
        await box.get()  # before the queued message: a close does not wait behind data
    assert (info.value.code, info.value.reason) == (4029, "Rate limit exceeded")


async def test_a_flushed_close_sends_what_is_queued_first_and_queues_nothing_more() -> None:
    box = Outbox()
    box.put("state", b"refused-1")
    box.put("state", b"refused-2")
    box.request_close(4029, "Rate limit exceeded", flush=True)
    assert box.put("state", b"too-late") is False
    assert await box.get() == b"refused-1"
    assert await box.get() == b"refused-2"
    with pytest.raises(CloseRequested) as raised:
        await box.get()
    assert (raised.value.code, raised.value.reason) == (4029, "Rate limit exceeded")


# -- shedding load: thumbnails first, bounded video bytes, late media skipped --------------------


def test_thumbnails_are_shed_before_the_full_picture() -> None:
    box = Outbox(OutboxLimits(max_video=4))
    for i in range(3):
        assert box.put("video", frame("v", i))
        assert box.put("thumb", frame("t", i))
    # Six video messages for four places: the two oldest thumbnails went, no full frame.
    assert drain(box) == [frame("v", 0), frame("v", 1), frame("v", 2), frame("t", 2)]
    assert box.dropped == {"slow_client_video": 2}


def test_video_is_bounded_in_bytes_too() -> None:
    box = Outbox(OutboxLimits(max_video=100, max_video_bytes=1000))
    for i in range(5):
        assert box.put("video", frame("v", i, 300))
    assert box.put("audio", frame("a", 0, 300))  # audio does not count against video bytes
    assert drain(box) == [frame("v", 2, 300), frame("v", 3, 300), frame("v", 4, 300),
                          frame("a", 0, 300)]
    assert drops(box) == (2, 0)


async def test_media_too_late_by_its_turn_is_skipped_and_counted(
        autojump_clock: trio.testing.MockClock) -> None:
    reasons: list[str] = []
    limits = OutboxLimits(video_max_age_s=0.5, audio_max_age_s=1.0)
    box = Outbox(limits, on_drop=reasons.append)
    now = trio.current_time()
    box.put("video", b"old video", stamp=now)
    box.put("audio", b"old audio", stamp=now)
    box.put("state", b"state", stamp=None)
    await trio.sleep(0.75)
    box.put("video", b"fresh video", stamp=trio.current_time())
    # 0.75 s on: the first video frame is late (a newer one waits), the audio still in time;
    # state never is.
    assert drain(box) == [b"old audio", b"state", b"fresh video"]
    assert reasons == ["late_video"]
    box.put("audio", b"older audio", stamp=now)
    box.put("audio", b"new audio", stamp=trio.current_time())
    assert drain(box) == [b"older audio", b"new audio"]  # 0.75 s < 1 s
    await trio.sleep(0.5)
    box.put("audio", b"stale audio", stamp=now)
    box.put("audio", b"newest audio", stamp=trio.current_time())
    assert drain(box) == [b"newest audio"] and reasons == ["late_video", "late_audio"]


async def test_the_newest_frame_goes_however_late(
        autojump_clock: trio.testing.MockClock) -> None:
    box = Outbox(OutboxLimits(video_max_age_s=0.5))
    box.put("video", b"late but last", stamp=trio.current_time())
    box.put("thumb", b"late thumb", stamp=trio.current_time())
    await trio.sleep(2)
    # The full frame has a thumbnail behind it (video of either layer counts); the thumbnail
    # is the last of all.
    assert drain(box) == [b"late thumb"]
    assert box.dropped == {"late_video": 1}
