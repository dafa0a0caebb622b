"""Shedding video at the door when the database path falls behind: graceful overload. Pure.

Every frame pgcall relays goes through one shared path (the frame writer, PostgreSQL's commit
and WAL, the walsender's decoding, the replication stream). Past capacity a queue grows on that
path, and because everything shares it, every frame of every call waits: without shedding,
audio and video alike reached seconds of delay. A media server sheds load instead, and so does
this: it watches the *pipeline lag* (a frame received here until it comes back decoded from
the stream, ``Hub``) and, while the median lag of the last ``interval_s`` is above
``high_s``, drops a growing share of the video frames senders hand in, before they are
written; below ``low_s`` the share falls again. Audio is never shed here (it is small, and
what a call needs most); the outboxes still shed per receiver (``outbox``).

The controller is additive increase, additive decrease, slower down than up so that it
settles instead of oscillating: ``step_up`` per interval over ``high_s``, ``step_down`` per
interval under ``low_s``, between 0 and ``max_ratio`` (some video always goes: a frozen
picture would look like a dead call). The share is applied per sender with an accumulator, so
that a sender shedding a third of its frames drops every third one, evenly, and every sender
alike.
"""

from __future__ import annotations

import attrs


@attrs.define
class VideoShedder:
    high_s: float = 0.1
    low_s: float = 0.03
    interval_s: float = 0.1
    step_up: float = 0.2
    step_down: float = 0.05
    max_ratio: float = 0.9
    ratio: float = 0.0  # the share of video frames shed now
    shed: int = 0  # frames shed so far
    _lags: list[float] = attrs.Factory(list)
    _next_at: float | None = None
    _credit: dict[str, float] = attrs.Factory(dict)  # per sender: shares owed, see drop()

    def observe(self, lag_s: float, now: float) -> None:
        """A frame's pipeline lag, seen at ``now``; once an interval, the share is adjusted."""
        self._lags.append(lag_s)
        if self._next_at is None:
            self._next_at = now + self.interval_s
        if now < self._next_at:
            return
        lags = sorted(self._lags)
        median = lags[len(lags) // 2]
        self._lags.clear()
        self._next_at = now + self.interval_s
        if median > self.high_s:
            self.ratio = round(min(self.max_ratio, self.ratio + self.step_up), 6)
        elif median < self.low_s:
            self.ratio = round(max(0.0, self.ratio - self.step_down), 6)
            if self.ratio == 0.0:
                self._credit.clear()

    def drop(self, sender: str) -> bool:
        """Shed this video frame of ``sender``? Evenly spread: each frame adds the share to the
        sender's credit, and a whole unit of credit sheds one frame."""
        if self.ratio == 0.0:
            return False
        credit = self._credit.get(sender, 0.0) + self.ratio
        if credit >= 1.0:
            self._credit[sender] = credit - 1.0
            self.shed += 1
            return True
        self._credit[sender] = credit
        return False
