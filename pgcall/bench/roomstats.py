"""The arithmetic of a room bench: who speaks when, and what one room's members saw. Pure.

Owns: the speaking rotation (``rotation``, ``speaker_at``), the raw log of one room (what each
member sent, and each frame each member received with its scheduled and actual send times and
the receiver's *speaker epoch*), and reducing that log to the room's figures
(``RoomFigures``): the rate of the current speaker's full layer at every other member per
speaking turn, the rates of the others, latencies, frames lost by the forwarding policy,
bytes per second per receiver.
``combine`` adds the figures of several rooms. Does not own: sockets or clocks (the room
client passes every time in), the verdict or the report (``roomreport``).

Streams are named by what a receiver gets: ``full`` and ``thumb`` (the two video layers) and
``audio``. Each member numbers the frames of each stream it sends 0, 1, 2, ... with no gap.

What the server must forward (docs/protocol-rooms.md §4), in the bench's load, where one
member speaks at a time and nobody pins:

* audio of the speaker to everyone else (at most two members are ever audible at once);
* in a small room (``SMALL_ROOM``) every full frame to everyone else;
* in a larger room every thumbnail to everyone else, and a member's full frames to those
  whose main it is - which changes only when the speaker does, and each receiver learns of
  that change by the ``room_speaker`` message in its own (ordered) stream.

So a frame of the first kinds is *lost* when it never arrived (as in a 1:1 call). A full frame
of a large room is lost when it is missing between two frames of the same sender that arrived
in the same speaker epoch of the receiver (between the same two ``room_speaker`` messages): a
gap within a continuous run. Frames lost at the very edge of a run are not seen this way; the
frame rates show them.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable

import attrs

STREAMS = ("full", "thumb", "audio")
LATENCY_CLASSES = ("speaker", "video", "audio")
SMALL_ROOM = 4  # up to this many members everyone gets everyone's full layer (§4)
MIN_WINDOW_S = 0.5  # a shorter measuring window (a cut-off last turn) is not measured


@attrs.frozen
class Turn:
    """Member ``speaker`` speaks from ``start_s`` to ``end_s`` after the room starts."""

    index: int
    speaker: int
    start_s: float
    end_s: float


def speaker_at(t_s: float, turn_s: float, members: int) -> int:
    """Who speaks ``t_s`` seconds after the start: members take turns of ``turn_s`` in the
    order they joined (0 is the room's creator), over and over."""
    return int(t_s // turn_s) % members


def rotation(duration_s: float, turn_s: float, members: int) -> list[Turn]:
    """Every turn of a run of ``duration_s`` (the last one cut off at the end)."""
    count = max(1, math.ceil(duration_s / turn_s - 1e-9))  # no turn of a rounding error
    return [Turn(i, i % members, i * turn_s, duration_s if i == count - 1 else (i + 1) * turn_s)
            for i in range(count)]


def is_small(members: int) -> bool:
    return members <= SMALL_ROOM


def must_forward(stream: str, small: bool) -> bool:
    """Whether every frame of ``stream`` must reach every other member (see above)."""
    return stream == "audio" or (stream == "full") == small


@attrs.frozen
class Arrival:
    seq: int
    due_ns: int  # when the frame was due to be sent (its slot in the sender's schedule)
    latency_us: int  # from when it was actually sent
    epoch: int  # room_speaker messages the receiver had got before this frame


StreamId = tuple[int, int, str]  # (receiver, sender, stream)


class RoomLog:
    """What one room's members sent and received while it streamed (mutable, fed live)."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.sent = {(m, s): 0 for m in range(members) for s in STREAMS}
        self.late = 0
        self.payload_bytes = 0
        self.arrivals: dict[StreamId, list[Arrival]] = {}
        self._seen: dict[StreamId, set[int]] = {}
        self.duplicates = 0
        self.bytes_in = [0] * members
        self.start_ns: int | None = None
        self.duration_ns = 0

    def start(self, start_ns: int, duration_s: float) -> None:
        self.start_ns, self.duration_ns = start_ns, round(duration_s * 1e9)

    def on_sent(self, sender: int, stream: str, payload_bytes: int, *, late: bool) -> None:
        self.sent[sender, stream] += 1
        self.late += late
        self.payload_bytes += payload_bytes

    def on_bytes(self, receiver: int, size: int, now_ns: int) -> None:
        """A message of ``size`` bytes reached ``receiver``: counted inside the window only."""
        if self.start_ns is not None and 0 <= now_ns - self.start_ns < self.duration_ns:
            self.bytes_in[receiver] += size

    def on_received(self, stream_id: StreamId, seq: int, due_ns: int, sent_ns: int,
                    now_ns: int, epoch: int) -> None:
        seen = self._seen.setdefault(stream_id, set())
        if seq in seen:
            self.duplicates += 1
            return
        seen.add(seq)
        self.arrivals.setdefault(stream_id, []).append(
            Arrival(seq, due_ns, (now_ns - sent_ns) // 1000, epoch))

    def complete(self) -> bool:
        """Every frame that must reach every other member has reached it."""
        small = is_small(self.members)
        for (sender, stream), sent in self.sent.items():
            if not sent or not must_forward(stream, small):
                continue
            for receiver in range(self.members):
                if receiver != sender and len(self._seen.get(
                        (receiver, sender, stream), ())) < sent:
                    return False
        return True


@attrs.frozen
class RoomFigures:
    """The figures of one or more rooms (``combine`` adds them up)."""

    rooms: int = 0
    turns: int = 0  # speaking turns long enough to be measured
    speaker_fps: tuple[float, ...] = ()  # one per (turn, receiver other than the speaker)
    others_fps: tuple[float, ...] = ()  # see ``analyze``
    latency_us: dict[str, tuple[int, ...]] = attrs.field(
        factory=lambda: {c: () for c in LATENCY_CLASSES})
    sent: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(STREAMS, 0))
    received: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(STREAMS, 0))
    lost: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(STREAMS, 0))
    reordered: int = 0
    duplicates: int = 0
    late: int = 0
    payload_bytes: int = 0
    receiver_bytes_per_s: tuple[float, ...] = ()


def combine(parts: Iterable[RoomFigures]) -> RoomFigures:
    parts = list(parts)

    def total(name: str) -> dict[str, int]:
        return {s: sum(getattr(p, name)[s] for p in parts) for s in STREAMS}

    return RoomFigures(
        rooms=sum(p.rooms for p in parts), turns=sum(p.turns for p in parts),
        speaker_fps=tuple(v for p in parts for v in p.speaker_fps),
        others_fps=tuple(v for p in parts for v in p.others_fps),
        latency_us={c: tuple(v for p in parts for v in p.latency_us[c])
                    for c in LATENCY_CLASSES},
        sent=total("sent"), received=total("received"), lost=total("lost"),
        reordered=sum(p.reordered for p in parts), duplicates=sum(p.duplicates for p in parts),
        late=sum(p.late for p in parts), payload_bytes=sum(p.payload_bytes for p in parts),
        receiver_bytes_per_s=tuple(v for p in parts for v in p.receiver_bytes_per_s))


def lost_frames(arrivals: list[Arrival], sent: int, must: bool) -> int:
    """Frames of one stream at one receiver that should have arrived and did not: if every
    frame must arrive, those sent and never seen; else the gaps inside each speaker epoch."""
    if must:
        return sent - sum(1 for a in arrivals if a.seq < sent)
    lost = 0
    by_epoch: dict[int, list[int]] = {}
    for a in arrivals:
        by_epoch.setdefault(a.epoch, []).append(a.seq)
    for seqs in by_epoch.values():
        seqs.sort()
        lost += sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    return lost


def reordered_frames(arrivals: list[Arrival]) -> int:
    """Frames that arrived after a frame with a higher seq of the same stream."""
    count, highest = 0, -1
    for a in arrivals:
        if a.seq < highest:
            count += 1
        else:
            highest = a.seq
    return count


class _Windows:
    """Frames per second of one stream within a window, counted by *due* time, so that
    neither the network's jitter nor a late send moves a frame from one window to another.
    Each stream's due times are sorted once and windows found by bisection."""

    def __init__(self, log: RoomLog) -> None:
        self._log = log
        self._dues: dict[StreamId, list[int]] = {}

    def rate(self, stream_id: StreamId, from_ns: int, to_ns: int) -> float:
        dues = self._dues.get(stream_id)
        if dues is None:
            dues = self._dues[stream_id] = sorted(
                a.due_ns for a in self._log.arrivals.get(stream_id, ()))
        count = bisect.bisect_left(dues, to_ns) - bisect.bisect_left(dues, from_ns)
        return count / ((to_ns - from_ns) / 1e9)


def analyze(log: RoomLog, turns: list[Turn], settle_s: float) -> RoomFigures:
    """One room's figures.

    ``speaker_fps``: for each turn, for each receiver but the speaker, the rate of the
    speaker's full layer from ``settle_s`` after the turn began (the switch takes a few
    hundred milliseconds by design) to its end. ``others_fps``: in a small room, each member's
    full layer at each other member over the whole run; in a larger room, for each turn, the
    thumbnail rate of each member but the speaker at each other member. Latency ``speaker``:
    the full frames of each turn's speaker sent during its turn; ``video``: every video frame.
    """
    assert log.start_ns is not None, "the room never started streaming"
    k, start, small = log.members, log.start_ns, is_small(log.members)
    empty: list[Arrival] = []

    def got(receiver: int, sender: int, stream: str) -> list[Arrival]:
        return log.arrivals.get((receiver, sender, stream), empty)

    def at(t_s: float) -> int:
        return start + round(t_s * 1e9)

    windows = _Windows(log)
    speaker_fps, others_fps, speaker_lat, measured = [], [], [], 0
    for turn in turns:
        if turn.end_s - turn.start_s - settle_s >= MIN_WINDOW_S:
            measured += 1
            for r in range(k):
                if r != turn.speaker:
                    speaker_fps.append(windows.rate((r, turn.speaker, "full"),
                                                    at(turn.start_s + settle_s), at(turn.end_s)))
        for r in range(k):
            if r == turn.speaker:
                continue
            speaker_lat += [a.latency_us for a in got(r, turn.speaker, "full")
                            if at(turn.start_s) <= a.due_ns < at(turn.end_s)]
            if not small and turn.end_s - turn.start_s >= MIN_WINDOW_S:
                others_fps += [windows.rate((r, s, "thumb"), at(turn.start_s), at(turn.end_s))
                               for s in range(k) if s not in (r, turn.speaker)]
    if small:
        others_fps = [windows.rate((r, s, "full"), start, start + log.duration_ns)
                      for r in range(k) for s in range(k) if s != r]
    lost = dict.fromkeys(STREAMS, 0)
    received = dict.fromkeys(STREAMS, 0)
    reordered = 0
    for (_, _, stream), arrivals in log.arrivals.items():
        received[stream] += len(arrivals)
        reordered += reordered_frames(arrivals)
    for (s, stream), sent in log.sent.items():
        for r in range(k):
            if r != s:
                lost[stream] += lost_frames(got(r, s, stream), sent, must_forward(stream, small))
    duration_s = log.duration_ns / 1e9
    return RoomFigures(
        rooms=1, turns=measured, speaker_fps=tuple(speaker_fps), others_fps=tuple(others_fps),
        latency_us={"speaker": tuple(speaker_lat),
                    "video": tuple(a.latency_us for (_, _, st), arr in log.arrivals.items()
                                   if st != "audio" for a in arr),
                    "audio": tuple(a.latency_us for (_, _, st), arr in log.arrivals.items()
                                   if st == "audio" for a in arr)},
        sent={st: sum(n for (_, s), n in log.sent.items() if s == st) for st in STREAMS},
        received=received, lost=lost, reordered=reordered, duplicates=log.duplicates,
        late=log.late, payload_bytes=log.payload_bytes,
        receiver_bytes_per_s=tuple(b / duration_s for b in log.bytes_in))
