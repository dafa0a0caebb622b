"""The load generator's streams are not in step: each of a call's four streams (video and
audio, each way) has its own phase, fixed for a given call, so runs repeat."""

from __future__ import annotations

import itertools

from pgcall.bench.client import AUDIO_FPS, stream_phase

RATES = {"video": 15.0, "audio": float(AUDIO_FPS)}  # the bench's default video rate


def phases_of(call: int) -> dict[tuple[str, str], float]:
    return {(role, kind): stream_phase(call, role, kind, rate)
            for role in ("a", "b") for kind, rate in RATES.items()}


def test_a_phase_lies_within_the_first_frame_interval() -> None:
    for call in range(50):
        for (_, kind), phase in phases_of(call).items():
            assert 0 <= phase < 1 / RATES[kind]


def test_no_two_streams_of_a_call_are_due_together() -> None:
    for call in range(50):
        due = sorted(phases_of(call).values())
        gaps = [b - a for a, b in itertools.pairwise(due)]
        assert min(gaps) > 0


def test_phases_are_fixed_per_call_and_differ_between_calls() -> None:
    assert phases_of(3) == phases_of(3)
    assert len({phases_of(call)[("a", "video")] for call in range(20)}) == 20
