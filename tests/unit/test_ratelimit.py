"""Per-connection token buckets and strikes; pure: every test passes the time in."""

from __future__ import annotations

import math

import pytest

from pgcall.relay.ratelimit import LIMITS, STRIKES, ConnectionLimits, Rate, TokenBucket, media_rate


def test_a_new_bucket_allows_its_burst_then_refuses() -> None:
    rate = Rate(per_s=2.0, burst=5.0)
    bucket = TokenBucket(rate, now=100.0)
    assert [bucket.take(100.0) for _ in range(int(rate.burst))] == [True] * int(rate.burst)
    assert bucket.take(100.0) is False


def test_refill_is_proportional_to_elapsed_time() -> None:
    rate = Rate(per_s=4.0, burst=3.0)
    bucket = TokenBucket(rate, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    step = 1.0 / rate.per_s
    assert bucket.take(step * 0.9) is False  # not quite one token yet
    assert bucket.take(step * 1.01) is True  # now one: taken
    assert bucket.take(step * 1.02) is False


def test_refill_is_capped_at_the_burst() -> None:
    rate = Rate(per_s=10.0, burst=4.0)
    bucket = TokenBucket(rate, now=0.0)
    bucket.take(0.0)
    later = 3600.0  # an hour idle refills to the burst, not beyond
    allowed = sum(bucket.take(later) for _ in range(100))
    assert allowed == rate.burst


def test_a_cost_takes_that_many_tokens() -> None:
    bucket = TokenBucket(Rate(1.0, 10.0), now=0.0)
    assert bucket.take(0.0, cost=7.0)
    assert not bucket.take(0.0, cost=4.0)
    assert bucket.take(0.0, cost=3.0)


def test_steady_traffic_at_the_rate_is_never_refused() -> None:
    limits = ConnectionLimits(0.0)
    per_s = LIMITS["chat"].per_s
    for i in range(int(60 * per_s)):  # a minute of chat at exactly the allowed rate
        assert limits.allow("chat", i / per_s)
    assert limits.refused == 0 and not limits.exhausted


def test_each_refusal_counts_and_strikes_are_exhausted_by_a_sustained_flood() -> None:
    limits = ConnectionLimits(0.0)
    chat = LIMITS["chat"]
    flood_per_s = 100.0
    t, sent, accepted = 0.0, 0, 0
    while not limits.exhausted:
        accepted += limits.allow("chat", t)
        sent += 1
        t = sent / flood_per_s
        assert t < 60, "a flood must run out of strikes"
    assert limits.refused == sent - accepted
    # The chat burst lasts burst / (flood - chat rate); then refusals come at (flood - chat
    # rate) per second while strikes refill at their own rate, from a full bucket.
    chat_burst_s = chat.burst / (flood_per_s - chat.per_s)
    strikes_s = STRIKES.burst / (flood_per_s - chat.per_s - STRIKES.per_s)
    assert t == pytest.approx(chat_burst_s + strikes_s, abs=0.05)


def test_occasional_refusals_never_exhaust_the_strikes() -> None:
    limits = ConnectionLimits(0.0)
    chat = LIMITS["chat"]
    # Twice the chat rate for ten minutes: chat.per_s refusals per second, below the strike
    # refill rate, so the connection is never closed.
    assert chat.per_s < STRIKES.per_s
    rate = 2 * chat.per_s
    for i in range(int(600 * rate)):
        limits.allow("chat", i / rate)
    assert limits.refused > 0
    assert not limits.exhausted


def test_buckets_are_independent() -> None:
    limits = ConnectionLimits(0.0)
    while limits.allow("nickname", 0.0):
        pass
    assert limits.allow("chat", 0.0)
    assert limits.allow("call", 0.0)
    assert limits.allow("video", 0.0)


@pytest.mark.parametrize("fps", [5.0, 15.0, 20.0, 30.0])
def test_media_buckets_run_at_twice_the_configured_rate(fps: float) -> None:
    limits = ConnectionLimits(0.0, video_fps=fps, audio_fps=fps)
    for kind in ("video", "audio"):
        rate = limits.buckets[kind].rate
        assert rate == media_rate(fps)
        assert rate.per_s == 2 * fps
        # Ten seconds at twice the rate, evenly spaced: every frame passes.
        n = int(10 * 2 * fps)
        assert all(limits.allow(kind, i / (2 * fps)) for i in range(n))
    assert limits.refused == 0


def test_media_above_twice_the_rate_is_refused() -> None:
    fps = 15.0
    limits = ConnectionLimits(0.0, video_fps=fps)
    rate = 3 * fps  # a client sending 1.5 times the allowance
    seconds = 10
    accepted = sum(limits.allow("video", i / rate) for i in range(int(seconds * rate)))
    burst = media_rate(fps).burst
    assert accepted == pytest.approx(burst + seconds * 2 * fps, abs=2)


def test_default_media_rates_follow_the_demo_defaults() -> None:
    limits = ConnectionLimits(0.0)
    assert limits.buckets["video"].rate.per_s == 2 * 15
    assert limits.buckets["audio"].rate.per_s == 2 * 20


def test_a_low_media_rate_still_has_a_usable_burst() -> None:
    rate = media_rate(1.0)
    assert rate.per_s == 2.0
    assert rate.burst >= 4.0
    assert math.isfinite(rate.burst)
