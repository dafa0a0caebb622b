"""When things happen in an exported video (docs/recording.md "Export"). Pure: no decoding,
no encoding, only times, positions and choices.

Owns: a recorded frame as the exporter reads it (``Frame``); the constant-rate picture clock
(which picture slot shows a frame, when a slot can no longer change); where each sender's
audio frames go on the sound's sample clock (``AudioPlacer``); the newest picture of each
person and the layer a tile shows (``Pictures``); who is talking and who the dominant speaker
is (``Speakers``); the main person of the speaker layout (``choose_main``).

Every frame carries the time it was written (ms after the recording started): pictures are
shown from that time and held until the next; audio is put at that time too, except that a
sender's consecutive frames that arrive within ``tolerance_ms`` of where the previous one
ended are laid end to end (arrival jitter would otherwise cut the sound into clicks), so every
audio frame is within ``tolerance_ms`` of its recorded time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

FRESH_MS = 1000  # a full-layer picture this recent beats a newer thumbnail (as the frontends)
TALKING_LEVEL = 0.01  # RMS (of full scale) at which a person counts as talking: the frontends'
HANGOVER_MS = 300  # still talking this long after the last loud frame (the frontends' gate)
LOUDNESS_WINDOW_MS = 300  # the dominant speaker is the loudest on average over this window
SWITCH_MS = 400  # a challenger must lead this long to take over (the server's policy) ...
SWITCH_SILENT_MS = 200  # ... or this long once the speaker is silent
AUDIO_TOLERANCE_MS = 40


@attrs.frozen(eq=False)
class Frame:
    """One recorded frame: ``ms`` after the recording started, as ``RecordingStore`` gives it
    (identity, not value, tells two frames apart)."""

    kind: str  # audio or video
    from_id: str
    seq: int
    ms: int
    layer: str | None
    width: int | None
    height: int | None
    sample_rate: int | None
    channels: int | None
    rms: float | None
    payload: bytes

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Frame:
        kind, from_id, seq, ms, layer, width, height, rate, channels, rms, payload = row
        return cls(kind, from_id, int(seq), int(ms), layer or ("full" if kind == "video" else
                                                                   None),
                   width, height, rate, channels, rms, bytes(payload))


# -- the picture clock -------------------------------------------------------------------------


def slot_count(duration_ms: int, fps: int) -> int:
    """How many pictures a video of ``duration_ms`` has at ``fps``."""
    return max(1, round(duration_ms * fps / 1000))


def slot_of(ms: float, fps: int) -> int:
    """The first picture slot that shows a frame written at ``ms``: the nearest one."""
    return math.floor(ms * fps / 1000 + 0.5)


def slot_final_ms(slot: int, fps: int) -> float:
    """Slot ``slot`` can still change until a frame at or after this time has been read."""
    return (slot + 0.5) * 1000 / fps


def slot_ms(slot: int, fps: int) -> float:
    return slot * 1000 / fps


# -- sound -----------------------------------------------------------------------------------


@attrs.define
class _Sent:
    seq: int
    end: int  # sample after the last one placed


class AudioPlacer:
    """Where each sender's audio frames start on a sample clock of ``rate`` per second."""

    def __init__(self, rate: int, tolerance_ms: float = AUDIO_TOLERANCE_MS) -> None:
        self.rate = rate
        self.tolerance = round(tolerance_ms * rate / 1000)
        self._last: dict[str, _Sent] = {}

    def place(self, sender: str, seq: int, ms: float, samples: int) -> tuple[int, int]:
        """(the sample where the frame's first kept sample goes, how many of its first samples
        to drop). A frame that would overlap the sender's previous one loses its overlapping
        start; one that would be dropped whole gives ``skip == samples``."""
        at = round(ms * self.rate / 1000)
        last = self._last.get(sender)
        start = at
        if last is not None and seq == last.seq + 1 and abs(at - last.end) <= self.tolerance:
            start = last.end  # the next frame of a stretch of speech: end to end
        skip = 0 if last is None else min(samples, max(0, last.end - start))
        self._last[sender] = _Sent(seq, max(start + samples, last.end if last else 0))
        return start + skip, skip

    def earliest_next(self, ms: float) -> int:
        """No frame written at or after ``ms`` starts before this sample: the sound before it is
        complete."""
        return max(0, round(ms * self.rate / 1000) - self.tolerance)


# -- pictures and speakers -------------------------------------------------------------------------


class Pictures:
    """The newest picture of each person, per layer."""

    def __init__(self) -> None:
        self._newest: dict[str, dict[str, Frame]] = {}

    def seen(self, frame: Frame) -> None:
        self._newest.setdefault(frame.from_id, {})[frame.layer or "full"] = frame

    def best(self, who: str, now_ms: float) -> Frame | None:
        """The full layer while it is fresh, else the newest picture of any layer (a gap holds
        the last picture); None before the person's first."""
        layers = self._newest.get(who)
        if not layers:
            return None
        full = layers.get("full")
        if full is not None and now_ms - full.ms < FRESH_MS:
            return full
        return max(layers.values(), key=lambda f: f.ms)

    def has_fresh_full(self, who: str, now_ms: float) -> bool:
        full = self._newest.get(who, {}).get("full")
        return full is not None and now_ms - full.ms < FRESH_MS


class Speakers:
    """Who is talking, from the level of each audio frame, and the dominant speaker: the
    loudest on average over ``LOUDNESS_WINDOW_MS`` (silence counting as nothing, so a short
    sound weighs little), who takes over only after leading ``SWITCH_MS`` (``SWITCH_SILENT_MS``
    once the previous one is silent). Ask with times that never go back."""

    def __init__(self) -> None:
        self._heard: dict[str, deque[tuple[float, float, float]]] = {}
        self._loud_at: dict[str, float] = {}
        self.current: str | None = None
        self._challenger: str | None = None
        self._since = 0.0

    def heard(self, who: str, ms: float, level: float, duration_ms: float = 50) -> None:
        """A frame of ``who`` at ``ms``: its RMS ``level`` (of full scale) and its length."""
        self._heard.setdefault(who, deque()).append((ms, level, duration_ms))
        if level >= TALKING_LEVEL:
            self._loud_at[who] = ms

    def talking(self, now_ms: float) -> set[str]:
        return {w for w, at in self._loud_at.items() if 0 <= now_ms - at <= HANGOVER_MS}

    def _loudness(self, who: str, now_ms: float) -> float:
        heard = self._heard[who]
        while heard and heard[0][0] <= now_ms - LOUDNESS_WINDOW_MS:
            heard.popleft()
        return sum(level * d for at, level, d in heard if at <= now_ms) / LOUDNESS_WINDOW_MS

    def dominant(self, now_ms: float) -> str | None:
        levels = {w: self._loudness(w, now_ms) for w in self._heard}
        loud = {w: v for w, v in levels.items() if v >= TALKING_LEVEL}
        leader = max(loud, key=lambda w: loud[w]) if loud else None
        if leader is None or leader == self.current:
            self._challenger = None
        elif self.current is None:
            self.current, self._challenger = leader, None
        elif leader != self._challenger:
            self._challenger, self._since = leader, now_ms
        else:
            silent = levels.get(self.current, 0.0) < TALKING_LEVEL
            if now_ms - self._since >= (SWITCH_SILENT_MS if silent else SWITCH_MS):
                self.current, self._challenger = leader, None
        return self.current


def choose_main(order: Iterable[str], dominant: str | None, fresh_full: set[str]) -> str | None:
    """The speaker layout's large tile: the dominant speaker; before anyone has spoken, the
    first person whose full layer is arriving (in a large room the server asks only its
    speaker for it), else the first person."""
    people = list(order)
    if dominant is not None:
        return dominant
    for who in people:
        if who in fresh_full:
            return who
    return people[0] if people else None
