"""The SQL of recording (docs/recording.md): consent, start and stop, what participants may
list, replay and delete, and keeping a recording's frames out of the reaper's way.

Owns: every statement about recordings. A recording is a row in ``recordings`` (published, so
every participant's relay shows the indicator at once); its frames stay where the live path
wrote them and, once older than ``--retain``, the reaper moves them (``move_recorded``) into
``recorded_frames``, a table the live path never touches, before it deletes the rest. The live
path thus writes exactly what it writes without a recording.
Does not own: parsing (``wire.recording``), encoding a file (``recording.export``).
"""

from __future__ import annotations

import uuid
from typing import Any

import trio

from ..pg.conn import PgConnection
from ..pg.pool import Pool
from ..wire import recording as w
from .store import CALL_LOCK, transaction

FEATURE = "recording"

# The frames of a recording, with the columns ``recorded_frames`` keeps, from each hot table:
# (table, the column naming the call or room, the recording's column, the kind's columns).
_HOT = (
    ("video_frames", "session_id", "session_id",
     "'video', from_id, seq, 'full', width, height, NULL::int, NULL::smallint, NULL::real, jpeg"),
    ("audio_frames", "session_id", "session_id",
     "'audio', from_id, seq, NULL, NULL::smallint, NULL::smallint, sample_rate, channels, rms, "
     "pcm16le"),
    ("room_video_frames", "room_id", "room_id",
     "'video', from_id, seq, layer, width, height, NULL::int, NULL::smallint, NULL::real, jpeg"),
    ("room_audio_frames", "room_id", "room_id",
     "'audio', from_id, seq, NULL, NULL::smallint, NULL::smallint, sample_rate, channels, rms, "
     "pcm16le"),
)
_COLUMNS = ("kind, from_id, seq, layer, width, height, sample_rate, channels, rms, payload")


class RecordingStore:
    def __init__(self, pool: Pool, instance_id: int, media_path: str = "table") -> None:
        self.pool = pool
        self.instance_id = instance_id
        self.media_path = media_path

    async def hello(self, me: str, features: list[str]) -> None:
        await self.pool.execute(
            "UPDATE pgcall_presence SET features = $3 WHERE identity = $1 AND instance_id = $2",
            [me, self.instance_id, features])

    async def start(self, me: str, session_id: str | None,
                    room_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
        if self.media_path != "table":
            return None, w.ERR_NEEDS_TABLES
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            people, err = await _participants(conn, session_id, room_id)
            if err is not None:
                return None, err
            if me not in people:
                return None, w.ERR_NOT_PARTICIPANT
            if await _without_indicator(conn, people):
                return None, w.ERR_CONSENT
            if await _active(conn, session_id, room_id) is not None:
                return None, w.ERR_ALREADY
            res = await conn.execute(
                "INSERT INTO recordings (session_id, room_id, started_by, participants) "
                "VALUES ($1, $2, $3, $4) RETURNING recording_id",
                [uuid.UUID(session_id) if session_id else None,
                 uuid.UUID(room_id) if room_id else None, me, people])
        return {"recording_id": str(res.rows[0][0])}, None

    async def stop(self, me: str, session_id: str | None, room_id: str | None) -> str | None:
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            people, err = await _participants(conn, session_id, room_id)
            if err is not None:
                return err
            if me not in people:
                return w.ERR_NOT_PARTICIPANT
            active = await _active(conn, session_id, room_id)
            if active is None:
                return w.ERR_NOT_RECORDING
            await conn.execute("UPDATE recordings SET stopped_at = now() "
                               "WHERE recording_id = $1", [active])
        return None

    async def listing(self, me: str | None) -> list[dict[str, Any]]:
        """The recordings ``me`` took part in (every one for None: the operator's command),
        newest first, with their size."""
        res = await self.pool.execute(
            "SELECT r.recording_id, r.session_id, r.room_id, r.started_by, r.started_at, "
            "r.stopped_at, r.participants, coalesce(s.bytes, 0), coalesce(s.frames, 0) "
            f"FROM recordings r LEFT JOIN LATERAL ({_SIZE}) s "
            "ON true WHERE $1::text IS NULL OR $1 = ANY(r.participants) "
            "ORDER BY r.started_at DESC", [me])
        return [_listed(row) for row in res.rows]

    async def delete(self, me: str, recording_id: str) -> str | None:
        res = await self.pool.execute(
            "SELECT started_by FROM recordings WHERE recording_id = $1 AND $2 = ANY(participants)",
            [uuid.UUID(recording_id), me])
        if not res.rows:
            return w.ERR_NOT_FOUND
        if res.rows[0][0] != me:
            return w.ERR_ONLY_STARTER
        await self.pool.execute("DELETE FROM recordings WHERE recording_id = $1",
                                [uuid.UUID(recording_id)])
        return None

    async def frames(self, me: str, recording_id: str, from_ms: int,
                     to_ms: int) -> tuple[dict[str, Any] | None, list[tuple[Any, ...]]]:
        """(the recording, its frames between ``from_ms`` and ``to_ms`` after its start in
        time order) for a participant; (None, []) for anyone else: to them it does not exist.
        Each frame: (kind, from_id, seq, ms, layer, width, height, sample_rate, channels, rms,
        payload)."""
        async with self.pool.connection() as conn:
            head = await conn.execute(
                "SELECT recording_id, session_id, room_id, started_by, started_at, stopped_at, "
                "participants, 0, 0 FROM recordings WHERE recording_id = $1 "
                "AND $2 = ANY(participants)", [uuid.UUID(recording_id), me])
            if not head.rows:
                return None, []
            rec = _listed(head.rows[0])
            res = await conn.execute(frames_sql(), [uuid.UUID(recording_id), from_ms, to_ms])
        return rec, res.rows


    async def recording(self, recording_id: str, me: str | None) -> dict[str, Any] | None:
        """The recording, with the time it was read (``now``), for a participant ``me`` (for
        anyone when None: the operator's command); None if it does not exist to them."""
        res = await self.pool.execute(
            "SELECT recording_id, session_id, room_id, started_by, started_at, stopped_at, "
            "participants, 0, 0, now() FROM recordings WHERE recording_id = $1 "
            "AND ($2::text IS NULL OR $2 = ANY(participants))", [uuid.UUID(recording_id), me])
        if not res.rows:
            return None
        return {**_listed(res.rows[0][:9]), "now": res.rows[0][9]}

    async def frames_between(self, recording_id: str, from_ms: int,
                             to_ms: int) -> list[tuple[Any, ...]]:
        """The recording's frames from ``from_ms`` to ``to_ms`` (as ``frames``), for a caller
        that has checked who may see them (an export)."""
        res = await self.pool.execute(frames_sql(), [uuid.UUID(recording_id), from_ms, to_ms])
        return res.rows


def _kept(column: str) -> str:
    """A hot table's row ``f`` at ``column`` within the recording ``r`` (from its start to
    its stop, if it stopped)."""
    return (f"f.{column} >= r.started_at "
            f"AND (r.stopped_at IS NULL OR f.{column} <= r.stopped_at)")


def _size_sql() -> str:
    """A recording's bytes and frames (for the lateral join of ``listing``): those moved to
    ``recorded_frames`` and those of the last seconds, still in the hot tables, so a recording
    just stopped does not show as empty."""
    parts = ["SELECT sum(length(payload)) AS b, count(*) AS n FROM recorded_frames f "
             "WHERE f.recording_id = r.recording_id"]
    for table, column, rcolumn, values in _HOT:
        payload = values.rsplit(", ", 1)[1]
        parts.append(f"SELECT sum(length({payload})), count(*) FROM {table} f "
                     f"WHERE f.{column} = r.{rcolumn} AND {_kept('inserted_at')}")
    return f"SELECT sum(b) AS bytes, sum(n) AS frames FROM ({' UNION ALL '.join(parts)}) t"


def _window(column: str) -> str:
    """``column`` within $2..$3 ms after the recording ``r`` started, and not after it stopped."""
    return (f"{column} >= r.started_at + make_interval(secs => $2 / 1000.0) "
            f"AND {column} < r.started_at + make_interval(secs => $3 / 1000.0) "
            f"AND (r.stopped_at IS NULL OR {column} <= r.stopped_at)")


def frames_sql() -> str:
    """A recording's frames from ``recorded_frames`` and, for the last seconds not moved yet,
    from the hot tables; $1 the recording, $2/$3 the window in ms after its start."""
    parts = [f"SELECT {_COLUMNS}, f.at FROM recorded_frames f JOIN recordings r "
             f"USING (recording_id) WHERE recording_id = $1 AND {_window('f.at')}"]
    for table, column, rcolumn, values in _HOT:
        parts.append(f"SELECT {values}, f.inserted_at FROM {table} f JOIN recordings r "
                     f"ON f.{column} = r.{rcolumn} WHERE r.recording_id = $1 "
                     f"AND {_window('f.inserted_at')}")
    union = " UNION ALL ".join(parts)
    return ("SELECT kind, from_id, seq, (extract(epoch FROM (fr.at - s.started_at)) * 1000)"
            "::int8, layer, width, height, sample_rate, channels, rms, payload "
            f"FROM ({union}) AS fr(kind, from_id, seq, layer, width, height, sample_rate, "
            "channels, rms, payload, at) CROSS JOIN (SELECT started_at FROM recordings "
            "WHERE recording_id = $1) s ORDER BY fr.at")


async def _participants(conn: PgConnection, session_id: str | None,
                        room_id: str | None) -> tuple[list[str], str | None]:
    if session_id is not None:
        res = await conn.execute("SELECT caller, callee, state FROM call_sessions "
                                 "WHERE session_id = $1", [uuid.UUID(session_id)])
        if not res.rows:
            return [], "Call session not found"
        caller, callee, state = res.rows[0]
        if state != "Active":
            return [], "Call is not active"
        return [caller, callee], None
    assert room_id is not None
    res = await conn.execute("SELECT identity FROM room_members WHERE room_id = $1 "
                             "ORDER BY joined_at", [uuid.UUID(room_id)])
    if not res.rows:
        return [], "Room not found"
    return [r[0] for r in res.rows], None


async def _without_indicator(conn: PgConnection, people: list[str]) -> bool:
    """True if any of ``people`` has not said it can show the recording indicator."""
    res = await conn.execute(
        "SELECT count(*) FROM unnest($1::text[]) AS i(identity) LEFT JOIN pgcall_presence p "
        "USING (identity) WHERE p.features IS NULL OR NOT ($2 = ANY(p.features))",
        [people, FEATURE])
    return bool(res.rows[0][0])


async def _active(conn: PgConnection, session_id: str | None,
                  room_id: str | None) -> uuid.UUID | None:
    column, value = ("session_id", session_id) if session_id else ("room_id", room_id)
    assert value is not None
    res = await conn.execute(f"SELECT recording_id FROM recordings WHERE {column} = $1 "
                             "AND stopped_at IS NULL", [uuid.UUID(value)])
    return res.rows[0][0] if res.rows else None


def _listed(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, session_id, room_id, by, started, stopped, people, size, frames = row
    return {"recording_id": str(rid), "kind": "call" if session_id else "room",
            "session_id": str(session_id) if session_id else None,
            "room_id": str(room_id) if room_id else None, "started_by": by,
            "started_at": started, "stopped_at": stopped, "participants": list(people),
            "bytes": int(size), "frames": int(frames)}


# -- the reaper's part -----------------------------------------------------------------------------


async def join_recorded_room(conn: PgConnection, room_id: uuid.UUID, me: str) -> str | None:
    """Inside a join's transaction: a room being recorded takes only people who can show the
    indicator, and each one who joins becomes a participant of the recording."""
    res = await conn.execute("SELECT recording_id FROM recordings WHERE room_id = $1 "
                             "AND stopped_at IS NULL", [room_id])
    if not res.rows:
        return None
    if await _without_indicator(conn, [me]):
        return "This room is being recorded and this client cannot show it"
    await conn.execute("UPDATE recordings SET participants = array_append(participants, $2) "
                       "WHERE recording_id = $1 AND NOT ($2 = ANY(participants))",
                       [res.rows[0][0], me])
    return None


async def move_recorded(pool: Pool, retain_s: float, batch: int, pause_s: float = 0.0) -> int:
    """Move recorded frames older than ``retain_s`` out of the hot tables into
    ``recorded_frames``; returns how many. Runs before the reaper deletes old frames.

    Moving rewrites each frame (its TOAST chunks and their WAL) in one statement per batch.
    Live frames commit with ``synchronous_commit`` on, so a commit that follows a batch waits
    for that batch's WAL to reach the disk too: small batches with ``pause_s`` between them
    keep that wait short (10 recorded calls move about 40 MB every 2 s; in one statement the
    live p99 went from tens to hundreds of ms)."""
    moved = 0
    for table, column, rcolumn, values in _HOT:
        while True:
            if moved and pause_s:
                await trio.sleep(pause_s)  # let the live commits between the batches
            res = await pool.execute(
                f"WITH old AS (SELECT f.id, r.recording_id FROM {table} f JOIN recordings r "
                f"ON f.{column} = r.{rcolumn} AND {_kept('inserted_at')} "
                f"WHERE f.inserted_at < now() - make_interval(secs => $1) LIMIT {batch}), "
                f"gone AS (DELETE FROM {table} f USING old WHERE f.id = old.id "
                f"RETURNING old.recording_id, {values}, f.inserted_at) "
                f"INSERT INTO recorded_frames (recording_id, {_COLUMNS}, at) "
                f"SELECT * FROM gone", [retain_s], prepare=True)
            moved += res.rowcount
            if res.rowcount < batch:
                break
    return moved


async def stop_ended(pool: Pool) -> int:
    """Recordings whose call or room is over are stopped (whoever ended it, however)."""
    res = await pool.execute(
        "UPDATE recordings r SET stopped_at = now() WHERE stopped_at IS NULL AND ("
        "(session_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM call_sessions c "
        "WHERE c.session_id = r.session_id AND c.state = 'Active')) OR "
        "(room_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM rooms m "
        "WHERE m.room_id = r.room_id)))", prepare=True)
    return res.rowcount


async def expire(pool: Pool, days: float) -> int:
    """Delete recordings stopped more than ``days`` ago (``--recording-retention``)."""
    res = await pool.execute(
        "DELETE FROM recordings WHERE stopped_at < now() - make_interval(secs => $1)",
        [days * 86400.0], prepare=True)
    return res.rowcount


_SIZE = _size_sql()
