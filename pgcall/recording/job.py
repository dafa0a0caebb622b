"""Running an export from trio (docs/recording.md "Export", "Download").

Owns: finding the recording for whoever asks (a participant, or the operator), how long its
video is (until it stopped; one still going is exported up to the moment it is looked up),
and running ``export.write_mp4`` in a worker thread while it pulls the frames from PostgreSQL
ten seconds at a time through the trio thread. A cancelled export stops at its next frame
and leaves no file.
Does not own: the SQL (``db.recordings``), the encoding (``export``, ``mp4``), who asked (the
command line, ``web.download``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import trio

from ..db.recordings import RecordingStore
from .export import DEFAULT_OPTIONS, ExportOptions, ExportStats, RecordingInfo, write_mp4
from .timeline import Frame

CHUNK_MS = 10_000  # the frames of this much of a recording are read at once


async def find(store: RecordingStore, recording_id: str,
               me: str | None) -> RecordingInfo | None:
    """The recording for participant ``me`` (anyone for None), or None: unknown, or not theirs."""
    rec = await store.recording(recording_id, me)
    if rec is None:
        return None
    end = rec["stopped_at"] or rec["now"]
    duration_ms = max(0, round((end - rec["started_at"]).total_seconds() * 1000))
    return RecordingInfo(rec["recording_id"], tuple(rec["participants"]), duration_ms,
                         rec["started_at"])


async def export(store: RecordingStore, rec: RecordingInfo, path: Path,
                 options: ExportOptions = DEFAULT_OPTIONS,
                 limiter: trio.CapacityLimiter | None = None) -> ExportStats:
    """Write ``rec`` to ``path`` off the trio thread (holding ``limiter`` while it runs)."""
    stop = threading.Event()

    def frames() -> Iterator[Frame]:
        for start in range(0, rec.duration_ms + 1, CHUNK_MS):
            if stop.is_set():
                return
            rows = trio.from_thread.run(store.frames_between, rec.recording_id, start,
                                        start + CHUNK_MS)
            for row in rows:
                yield Frame.from_row(row)

    try:
        return await trio.to_thread.run_sync(
            partial(write_mp4, rec, frames(), path, options, stop.is_set),
            abandon_on_cancel=True, limiter=limiter)
    except BaseException:  # cancelled, interrupted
        stop.set()  # the thread goes on alone until its next frame, then removes the file
        raise
