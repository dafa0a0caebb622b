"""Who is speaking in a room, from the audio frames of the stream alone. Pure.

Owns: each member's recent audio level, the few members whose audio every receiver gets (the
``audible`` set, loudest first), and the dominant speaker (who is shown at full size and
rate). Does not own: what is forwarded to whom (``forwarding``).

Clients suppress silence (they stop sending audio a little after speech ends), so a member
whose last frame is older than ``HANGOVER_US`` is silent. Time is the commit time of the frame's
transaction (microseconds): every relay reading the same stream computes the same speaker, and
tests drive it without a clock.

The dominant speaker changes only after a challenger has been the loudest for ``HOLD_US``
without a break (half that once the speaker has gone quiet), so a cough or a short "yes" does
not flip everyone's main video; when all are silent the last speaker stays.
"""

from __future__ import annotations

import attrs

AUDIBLE_MAX = 3  # receivers get the audio of at most this many members at once
HANGOVER_US = 400_000  # no frame for this long: silent
HOLD_US = 400_000  # a challenger must lead this long to become the speaker
MIN_LEVEL = 0.005  # below this (RMS of full scale) a frame counts as silence
SMOOTHING = 0.3  # weight of each new frame in the level (about 150 ms at 20 frames/s)


@attrs.define
class _Member:
    level: float = 0.0
    last_us: int = -(10**18)


class SpeakerTracker:
    def __init__(self) -> None:
        self._members: dict[str, _Member] = {}
        self.speaker: str | None = None
        self.previous: str | None = None  # the speaker before the current one
        self._leader: str | None = None  # the loudest now, and since when
        self._leader_since = 0

    def remove(self, identity: str) -> None:
        self._members.pop(identity, None)
        if self.speaker == identity:
            self.speaker, self.previous = self.previous, None
        if self.previous == identity:
            self.previous = None
        if self._leader == identity:
            self._leader = None

    def level(self, identity: str, now_us: int) -> float:
        m = self._members.get(identity)
        if m is None or now_us - m.last_us > HANGOVER_US:
            return 0.0
        return m.level

    def frame(self, identity: str, rms: float, now_us: int) -> bool:
        """Account one audio frame; True if the dominant speaker changed."""
        m = self._members.get(identity)
        if m is None:
            m = self._members[identity] = _Member()
        if now_us - m.last_us > HANGOVER_US:
            m.level = rms  # speech starts: no history to smooth with
        else:
            m.level += SMOOTHING * (rms - m.level)
        m.last_us = now_us
        return self._update(now_us)

    def audible(self, now_us: int) -> list[str]:
        """The members whose audio is forwarded now, loudest first."""
        levels = [(self.level(i, now_us), i) for i in self._members]
        ranked = sorted((lv, i) for lv, i in levels if lv >= MIN_LEVEL)
        return [i for _, i in reversed(ranked[-AUDIBLE_MAX:])]

    def _update(self, now_us: int) -> bool:
        loud = self.audible(now_us)
        leader = loud[0] if loud else None
        if leader != self._leader:
            self._leader, self._leader_since = leader, now_us
        if leader is None or leader == self.speaker:
            return False
        if self.speaker is None:
            hold = 0  # the first voice in the room
        elif self.level(self.speaker, now_us) < MIN_LEVEL:
            hold = HOLD_US // 2  # the speaker paused: take over sooner
        else:
            hold = HOLD_US
        if now_us - self._leader_since >= hold:
            self.previous, self.speaker = self.speaker, leader
            return True
        return False
