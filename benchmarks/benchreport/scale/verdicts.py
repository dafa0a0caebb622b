"""Whether a step held, from the bench's ``--json`` object. Pure.

Owns: the criterion of a calls step (every planned video stream at least ``min_fps``, video p99
at most ``max_p99_ms``) and of a rooms step (every room streamed; the speaker at least
``min_fps`` at every receiver; the others at least ``min_fps`` in rooms of 4 or fewer, their
thumbnails at least ``min_thumb_fps`` in larger ones; the speaker's p99; frames lost; errors).
Does not own: the criteria's values (``plan``) or the bench's own verdict, which the records
keep beside these.
"""

from __future__ import annotations

from typing import Any

from pgcall.bench.roomstats import is_small

from ..figures import fmt
from .plan import Criteria

Verdict = tuple[bool, str]


def _verdict(problems: list[str]) -> Verdict:
    return not problems, "; ".join(problems) or "holds"


def _below(name: str, value: float | None, floor: float) -> str | None:
    if value is None:
        return f"no {name} rate"
    return f"{name} {fmt(value)} fps < {floor:g}" if value < floor else None


def _p99_over(name: str, p99: float | None, limit: float) -> str | None:
    if p99 is None:
        return f"no {name} latency"
    return f"{name} p99 {fmt(p99)} ms > {limit:g} ms" if p99 > limit else None


def call_holds(bench: dict[str, Any] | None, calls: int, c: Criteria) -> Verdict:
    if bench is None:
        return False, "the bench produced no figures"
    problems = []
    if (bench.get("video_streams") or 0) < 2 * calls:
        problems.append(f"only {bench.get('video_streams')} of {2 * calls} video streams ran")
    for problem in (_below("slowest stream", bench["fps"]["min"], c.min_fps),
                    _p99_over("video", bench["latency_ms"]["p99"], c.max_p99_ms)):
        if problem:
            problems.append(problem)
    return _verdict(problems)


def room_holds(bench: dict[str, Any] | None, rooms: int, size: int, c: Criteria) -> Verdict:
    if bench is None:
        return False, "the bench produced no figures"
    problems = []
    if (bench.get("rooms_streamed") or 0) < rooms:
        problems.append(f"only {bench.get('rooms_streamed')} of {rooms} rooms streamed")
    others_floor = c.min_fps if is_small(size) else c.min_thumb_fps
    for problem in (_below("speaker", bench["speaker_fps_min"], c.min_fps),
                    _below("others", bench["others_fps_min"], others_floor),
                    _p99_over("speaker", bench["speaker_latency_ms"]["p99"], c.max_p99_ms)):
        if problem:
            problems.append(problem)
    if bench["lost"] > c.max_lost:
        problems.append(f"{bench['lost']} frame(s) lost")
    if bench["errors"]:
        problems.append(f"{bench['errors']} error(s)")
    return _verdict(problems)
