"""The pure parts of an export: tile layouts, the picture clock, where audio frames go, which
picture a tile shows, who is talking and who is the dominant speaker."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgcall.recording import layout, timeline
from pgcall.recording.layout import Rect
from pgcall.recording.timeline import (
    AudioPlacer,
    Frame,
    Pictures,
    Speakers,
    choose_main,
    slot_count,
    slot_final_ms,
    slot_of,
)

W, H = 1280, 720


def overlaps(a: Rect, b: Rect) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def inside(r: Rect, w: int = W, h: int = H) -> bool:
    return r.x >= 0 and r.y >= 0 and r.x + r.w <= w and r.y + r.h <= h


def even(r: Rect) -> bool:
    return all(v % 2 == 0 for v in (r.x, r.y, r.w, r.h)) and r.w > 0 and r.h > 0


# -- layout -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "cols"), [(1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (6, 3),
                                         (9, 3), (10, 4), (16, 4)])
def test_grid_columns_give_the_largest_tiles(n: int, cols: int) -> None:
    assert layout.grid_columns(n, W, H) == cols


def test_two_people_side_by_side_at_their_cameras_size() -> None:
    a, b = layout.grid(2, W, H)
    assert a.y == b.y and a.x < b.x and (a.w, a.h) == (b.w, b.h)
    assert 620 <= a.w <= 640 and abs(a.w / a.h - 16 / 9) < 0.02


def test_sixteen_tiles_fit_four_by_four() -> None:
    tiles = layout.grid(16, W, H)
    assert len({t.x for t in tiles}) == 4 and len({t.y for t in tiles}) == 4
    assert all(t.w >= 300 for t in tiles)


@given(st.integers(1, 25), st.sampled_from([(1280, 720), (640, 360), (1920, 1080), (720, 720)]))
def test_grid_tiles_are_even_inside_and_apart(n: int, size: tuple[int, int]) -> None:
    tiles = layout.grid(n, *size)
    assert len(tiles) == n
    assert all(even(t) and inside(t, *size) for t in tiles)
    assert not any(overlaps(a, b) for a, b in itertools.combinations(tiles, 2))


def test_a_last_row_that_is_not_full_is_centred() -> None:
    tiles = layout.grid(3, W, H)
    top, bottom = tiles[:2], tiles[2]
    middle = (top[0].x + top[1].x + top[1].w) / 2
    assert abs(bottom.x + bottom.w / 2 - middle) <= 2


@given(st.integers(0, 20))
def test_speaker_layout_main_above_a_strip(others: int) -> None:
    main, strip = layout.speaker(others, W, H)
    assert len(strip) == others
    assert all(even(t) and inside(t) for t in [main, *strip])
    assert all(t.y >= main.y + main.h for t in strip)
    assert all(t.w < main.w for t in strip)
    assert not any(overlaps(a, b) for a, b in itertools.combinations([main, *strip], 2))


def test_speaker_alone_fills_the_picture() -> None:
    assert layout.speaker(0, W, H) == (Rect(0, 0, W, H), [])


@pytest.mark.parametrize(("src", "expect"), [((640, 360), Rect(10, 20, 320, 180)),
                                             ((360, 640), Rect(120, 20, 100, 180)),
                                             ((1000, 100), Rect(10, 94, 320, 32))])
def test_fit_keeps_the_aspect_and_centres(src: tuple[int, int], expect: Rect) -> None:
    assert layout.fit(*src, Rect(10, 20, 320, 180)) == expect


# -- the picture clock --------------------------------------------------------------------------


def test_picture_slots_at_15_fps() -> None:
    assert slot_count(6500, 15) == 98 and slot_count(0, 15) == 1
    assert slot_of(0, 15) == 0 and slot_of(33, 15) == 0 and slot_of(34, 15) == 1
    assert slot_of(1000, 15) == 15


@given(st.floats(0, 10_000), st.sampled_from([10, 15, 24, 30]))
def test_a_slot_is_final_exactly_when_no_later_frame_lands_in_it(ms: float, fps: int) -> None:
    slot = slot_of(ms, fps)
    assert slot_final_ms(slot - 1, fps) <= ms < slot_final_ms(slot, fps) + 1e-9
    assert abs(ms - slot * 1000 / fps) <= 500 / fps + 1e-9  # the nearest slot


# -- audio placement ----------------------------------------------------------------------------

RATE = 16000
N = 800  # 50 ms


def test_frames_that_arrive_with_jitter_are_laid_end_to_end() -> None:
    placer = AudioPlacer(RATE, tolerance_ms=40)
    arrivals = [0, 62, 95, 160, 203, 249]  # every 50 ms, give or take 15
    starts = [placer.place("a", seq, ms, N) for seq, ms in enumerate(arrivals)]
    assert starts == [(k * N, 0) for k in range(len(arrivals))]


def test_a_pause_puts_the_next_frame_at_its_own_time() -> None:
    placer = AudioPlacer(RATE, tolerance_ms=40)
    placer.place("a", 0, 1000, N)
    assert placer.place("a", 1, 3000, N) == (3 * RATE, 0)  # silence suppressed in between


def test_lost_frames_leave_a_gap() -> None:
    placer = AudioPlacer(RATE, tolerance_ms=40)
    placer.place("a", 0, 0, N)
    assert placer.place("a", 5, 250, N) == (4000, 0)  # seq jumped: placed at its time


def test_a_frame_too_early_loses_what_overlaps() -> None:
    placer = AudioPlacer(RATE, tolerance_ms=40)
    placer.place("a", 0, 100, N)  # 1600..2400
    start, skip = placer.place("a", 1, 105, N)  # 45 ms early: re-anchored, overlap dropped
    assert (start, skip) == (2400, 2400 - 1680)
    assert placer.place("a", 7, 100, N) == (2400, N)  # wholly inside what was placed


def test_senders_are_placed_independently() -> None:
    placer = AudioPlacer(RATE)
    assert placer.place("a", 0, 100, N) == (1600, 0)
    assert placer.place("b", 0, 100, N) == (1600, 0)


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(-30, 30), st.booleans()),
                min_size=1, max_size=60))
def test_every_frame_stays_within_the_tolerance_of_its_time(
        steps: list[tuple[int, int, bool]]) -> None:
    """Whatever the jitter, gaps and lost frames, each placed frame starts within the
    tolerance of its recorded time (what keeps sound and pictures together), and a sender's
    frames never overlap."""
    placer = AudioPlacer(RATE, tolerance_ms=40)
    ms, seq, placed_until = 0.0, 0, 0
    for lost, jitter, pause in steps:
        seq += 1 + lost
        ms += 50 + (2000 if pause else 0)
        at = max(0.0, ms + jitter)
        start, skip = placer.place("a", seq, at, N)
        if skip < N:
            first = start - skip  # where the frame's first sample would be
            assert abs(first - at * RATE / 1000) <= placer.tolerance + 1
            assert start >= placed_until
            placed_until = start + N - skip
        assert placer.earliest_next(at) <= round(at * RATE / 1000)


# -- pictures and speakers ------------------------------------------------------------------------


def video(who: str, ms: int, layer: str = "full") -> Frame:
    return Frame("video", who, 0, ms, layer, 640, 360, None, None, None, b"")


def test_a_fresh_full_layer_beats_a_newer_thumbnail_then_the_newest_wins() -> None:
    pictures = Pictures()
    full, thumb = video("a", 1000), video("a", 1200, "thumb")
    pictures.seen(full)
    pictures.seen(thumb)
    assert pictures.best("a", 1500) is full
    assert pictures.has_fresh_full("a", 1500)
    assert pictures.best("a", 2100) is thumb  # the full layer stopped a second ago
    assert not pictures.has_fresh_full("a", 2100)
    assert pictures.best("a", 60_000) is thumb  # a gap holds the last picture
    assert pictures.best("b", 1500) is None


def test_talking_has_a_hangover() -> None:
    speakers = Speakers()
    speakers.heard("a", 1000, 0.2)
    speakers.heard("b", 1000, 0.001)
    assert speakers.talking(1000) == {"a"}
    assert speakers.talking(1000 + timeline.HANGOVER_MS) == {"a"}
    assert speakers.talking(1001 + timeline.HANGOVER_MS) == set()


def feed(speakers: Speakers, who: str, start: int, end: int, level: float) -> None:
    for ms in range(start, end, 50):
        speakers.heard(who, ms, level)


def dominant_over_time(speakers: Speakers, until: int) -> dict[int, str | None]:
    return {ms: speakers.dominant(ms) for ms in range(0, until, 10)}


def switch_time(seen: dict[int, str | None], to: str) -> int:
    return min(ms for ms, who in seen.items() if who == to)


def test_the_dominant_speaker_changes_only_after_the_challenger_leads() -> None:
    speakers = Speakers()
    feed(speakers, "a", 0, 3000, 0.1)
    feed(speakers, "b", 1000, 3000, 0.3)
    seen = dominant_over_time(speakers, 3000)
    assert seen[0] == "a"  # the first to speak, at once
    # b's average ties a's once b has spoken for a sixth of the window (two frames, at
    # 1050 ms) and passes it with the third (1100 ms); b takes over after leading SWITCH_MS.
    assert switch_time(seen, "b") == 1100 + timeline.SWITCH_MS
    assert all(who == "b" for ms, who in seen.items() if ms >= 1500)


def test_a_silent_speaker_gives_way_sooner() -> None:
    speakers = Speakers()
    feed(speakers, "a", 0, 1000, 0.2)
    feed(speakers, "b", 1600, 3000, 0.1)  # a has been silent since 950
    seen = dominant_over_time(speakers, 3000)
    assert seen[1590] == "a"  # nobody else spoke: a stays the speaker through its silence
    assert switch_time(seen, "b") == 1600 + timeline.SWITCH_SILENT_MS


def test_a_short_sound_does_not_take_over() -> None:
    speakers = Speakers()
    feed(speakers, "a", 0, 5000, 0.1)
    feed(speakers, "b", 2000, 2100, 0.5)  # a cough, five times as loud
    assert set(dominant_over_time(speakers, 5000).values()) == {"a"}


def test_main_is_the_speaker_else_the_full_layer_else_the_first() -> None:
    order = ["a", "b", "c"]
    assert choose_main(order, "c", {"b"}) == "c"
    assert choose_main(order, None, {"b", "c"}) == "b"
    assert choose_main(order, None, set()) == "a"
    assert choose_main([], None, set()) is None


def test_a_frame_row_reads_as_a_frame() -> None:
    row = ("video", "a", 3, 1500, None, 640, 360, None, None, None, memoryview(b"\xff\xd8"))
    frame = Frame.from_row(row)
    assert (frame.kind, frame.seq, frame.ms, frame.layer, frame.payload) == \
        ("video", 3, 1500, "full", b"\xff\xd8")
    audio = Frame.from_row(("audio", "a", 1, 20, None, None, None, 16000, 1, 0.5, b"\0\0"))
    assert audio.layer is None and audio.sample_rate == 16000
