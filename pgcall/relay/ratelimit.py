"""Per-connection rate limits: token buckets, and the strikes that end an abusive connection.

Owns: the limits (named, documented in docs/limits.md) and the bookkeeping; the caller passes
the time in, so this module is pure. Does not own: replying or closing (``session``).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Rate:
    per_s: float
    burst: float


# Every limit pgcall applies to one connection. Media is limited to twice the configured
# rates (15 fps video, 20 frames/s audio by default), which leaves room for jitter and bursts.
LIMITS = {
    "message": Rate(200.0, 400.0),  # any WebSocket message
    "chat": Rate(5.0, 10.0),  # send_message
    "nickname": Rate(1.0, 5.0),  # set_nickname
    "call": Rate(1.0, 5.0),  # request_call (ring harassment)
    "control": Rate(20.0, 40.0),  # accept/decline/end
    "replay": Rate(10.0, 20.0),  # get_recording: each a few seconds of a recording
}
# Each refused message is a strike; a connection that runs out of strikes is closed with
# CLOSE_RATE_LIMITED. 10/s with a burst of 100: a client must keep flooding for a while.
STRIKES = Rate(10.0, 100.0)
CLOSE_RATE_LIMITED = 4029
ERR_RATE_LIMITED = "Rate limit exceeded"


def media_rate(frames_per_s: float) -> Rate:
    return Rate(2.0 * frames_per_s, max(4.0, 2.0 * frames_per_s))


class TokenBucket:
    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.tokens = rate.burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.rate.burst, self.tokens + (now - self.stamp) * self.rate.per_s)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class ConnectionLimits:
    """All buckets of one connection. ``allow`` → True or False; ``exhausted`` once the strikes
    are used up."""

    def __init__(self, now: float, video_fps: float = 15.0, audio_fps: float = 20.0) -> None:
        # A room's thumbnails (every second camera frame) have a bucket of their own.
        rates = dict(LIMITS, video=media_rate(video_fps), thumb=media_rate(video_fps / 2),
                     audio=media_rate(audio_fps))
        self.buckets = {name: TokenBucket(rate, now) for name, rate in rates.items()}
        self.strikes = TokenBucket(STRIKES, now)
        self.exhausted = False
        self.refused = 0

    def allow(self, name: str, now: float) -> bool:
        if self.buckets[name].take(now):
            return True
        self.refused += 1
        if not self.strikes.take(now):
            self.exhausted = True
        return False
