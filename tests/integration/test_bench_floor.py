"""The report's floor against a real PostgreSQL: the writer sends each frame's transaction in
one round trip, and the bare consumer reads back, per frame, when it was sent and when the
server had run its INSERT (``benchreport.floor``)."""

from __future__ import annotations

import pytest
import trio
from benchreport.floor import FloorSamples, floor_writer, read_back
from benchreport.settings import AUDIO_FPS, VIDEO_FPS, WARMUP_S

from pgcall.bench.client import stream_phase
from pgcall.pg.stream import open_stream

DURATION_S = WARMUP_S + 0.5
DEADLINE_S = 30.0


def frames(kind: str, fps: int, *, from_seq: int = 0) -> int:
    """Frames the writer sends for one call's two streams of ``kind`` in ``DURATION_S``, each
    at its own phase, counting those with ``seq >= from_seq``."""
    return sum(1 for side in ("a", "b") for seq in range(from_seq, int(DURATION_S * fps) + 1)
               if stream_phase(0, side, kind, fps) + seq / fps < DURATION_S)


@pytest.mark.one_pg  # the benchmark's own tool, not a behaviour of PostgreSQL's versions
async def test_the_floor_reads_back_every_frame_sent_and_inserted_stamps(db_dsn: str) -> None:
    samples = FloorSamples()
    counts: dict[str, int] = {}
    async with open_stream(db_dsn) as stream:  # the slot exists before the first INSERT

        async def write() -> None:
            counts.update(await floor_writer(db_dsn, 1, DURATION_S))

        with trio.fail_after(DEADLINE_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write)
                await read_back(stream, samples)
    # Both directions of one call: every frame sent, the first second's left out.
    assert counts["sent"] == frames("video", VIDEO_FPS) + frames("audio", AUDIO_FPS)
    for kind, fps in (("video", VIDEO_FPS), ("audio", AUDIO_FPS)):
        assert len(samples.sent_us[kind]) == frames(kind, fps, from_seq=int(WARMUP_S * fps))
    for kind in ("video", "audio"):
        pairs = list(zip(samples.sent_us[kind], samples.inserted_us[kind], strict=True))
        # The INSERT ran after the writer sent it, and both before the change was decoded.
        assert all(0 <= inserted <= sent < DEADLINE_S * 1e6 for sent, inserted in pairs)
