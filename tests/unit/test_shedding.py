"""The overload controller (relay/shedding.py): shares of video shed as the pipeline lags."""

from __future__ import annotations

import pytest

from pgcall.relay.shedding import VideoShedder


def run(shedder: VideoShedder, lag_s: float, seconds: float, start: float = 0.0) -> float:
    """Frames coming back every 10 ms for ``seconds``, each with ``lag_s``; the time after."""
    now = start
    for _ in range(round(seconds / 0.01)):
        now += 0.01
        shedder.observe(lag_s, now)
    return now


def test_no_lag_no_shedding() -> None:
    shedder = VideoShedder()
    run(shedder, 0.005, 5.0)
    assert shedder.ratio == 0.0
    assert not any(shedder.drop("a") for _ in range(100))


def test_the_share_grows_while_the_median_lag_is_high_up_to_the_cap() -> None:
    shedder = VideoShedder()
    now = run(shedder, 0.5, 0.25)  # two intervals over: two steps up
    assert shedder.ratio == pytest.approx(0.4)
    run(shedder, 0.5, 5.0, now)
    assert shedder.ratio == pytest.approx(shedder.max_ratio)


def test_a_lag_between_the_bounds_holds_the_share_and_a_low_one_lowers_it_slowly() -> None:
    shedder = VideoShedder()
    now = run(shedder, 0.5, 0.25)
    now = run(shedder, 0.05, 1.0, now)  # neither high nor low: held
    assert shedder.ratio == pytest.approx(0.4)
    now = run(shedder, 0.01, 0.5, now)  # five intervals low: five steps down
    assert shedder.ratio == pytest.approx(0.15)
    run(shedder, 0.01, 5.0, now)
    assert shedder.ratio == 0.0


def test_the_median_decides_not_an_outlier() -> None:
    shedder = VideoShedder()
    now = 0.0
    for i in range(100):  # one frame in ten very late, the rest on time
        now += 0.01
        shedder.observe(2.0 if i % 10 == 0 else 0.005, now)
    assert shedder.ratio == 0.0


@pytest.mark.parametrize(("ratio", "pattern"), [
    (0.5, [False, True] * 4),
    (0.25, [False, False, False, True] * 2),
])
def test_frames_are_shed_evenly_and_per_sender(ratio: float, pattern: list[bool]) -> None:
    shedder = VideoShedder(ratio=ratio)
    got_a, got_b = [], []
    for _ in pattern:
        got_a.append(shedder.drop("a"))
        got_b.append(shedder.drop("b"))
    assert got_a == pattern
    assert got_b == pattern  # each sender sheds its own share, whatever the other does
    assert shedder.shed == 2 * pattern.count(True)
