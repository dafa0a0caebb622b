"""The reaper: every 2 s, deletes media frames older than the retention time (in bounded
batches; the frames of recordings are moved to ``recorded_frames`` first) and calls left
ringing for 30 s, stops recordings whose call or room is over and deletes recordings past
``--recording-retention``.

Owns: the delete statements and their schedule. Does not own: what retention is (config).
The frame tables publish inserts only, so these deletes never travel the replication stream.
Batches keep each transaction short (no long lock, no WAL burst) after a backlog builds up.
"""

from __future__ import annotations

import logging

import trio

from ..pg.conn import PgError
from ..pg.pool import Pool
from . import recordings

log = logging.getLogger("pgcall.reaper")

BATCH = 5000
# Recorded frames move in batches of about 3 MB of video, with a pause between them so that
# live commits do not wait behind one large write (``recordings.move_recorded``).
MOVE_BATCH = 100
MOVE_PAUSE_S = 0.02
FRAME_TABLES = ("audio_frames", "video_frames", "room_audio_frames", "room_video_frames")
RING_TIMEOUT_S = 30.0  # a call nobody answers is removed (pg-relay let it ring for ever)


async def reap_once(pool: Pool, retain_s: float) -> dict[str, int]:
    """Delete every frame older than ``retain_s``, once the frames of recordings among them
    have been moved out of the way (``recorded_frames``); returns the count per table."""
    await recordings.move_recorded(pool, retain_s, MOVE_BATCH, MOVE_PAUSE_S)
    counts = {}
    for table in FRAME_TABLES:
        total = 0
        while True:
            res = await pool.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
                f"WHERE inserted_at < now() - make_interval(secs => $1) LIMIT {BATCH})",
                [retain_s], prepare=True)
            total += res.rowcount
            if res.rowcount < BATCH:
                break
        counts[table] = total
    return counts


async def expire_ringing(pool: Pool, ring_timeout_s: float) -> int:
    """Remove calls left ringing longer than ``ring_timeout_s``; both parties get the delete."""
    res = await pool.execute(
        "DELETE FROM call_sessions WHERE state = 'Ringing' "
        "AND created_at < now() - make_interval(secs => $1)", [ring_timeout_s], prepare=True)
    if res.rowcount:
        log.info("removed %d unanswered calls", res.rowcount)
    return res.rowcount


async def run_reaper(pool: Pool, retain_s: float, interval_s: float = 2.0,
                     deleted: dict[str, int] | None = None,
                     ring_timeout_s: float = RING_TIMEOUT_S,
                     recording_retention_days: float | None = None) -> None:
    """Never returns; a database outage only skips runs. Each run also stops the recordings
    of calls and rooms that are over, and deletes recordings past their retention."""
    while True:
        await trio.sleep(interval_s)
        try:
            await expire_ringing(pool, ring_timeout_s)
            await recordings.stop_ended(pool)
            if recording_retention_days is not None:
                await recordings.expire(pool, recording_retention_days)
            counts = await reap_once(pool, retain_s)
        except PgError as exc:
            log.debug("reaper skipped a run: %s", exc)
            continue
        if deleted is not None:
            for table, n in counts.items():
                deleted[table] = deleted.get(table, 0) + n
        log.debug("reaped %s", counts)
