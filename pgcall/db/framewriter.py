"""Writing media frames to PostgreSQL in batches: one statement and one commit for every frame
that arrived while the previous batch was being written.

Owns: the queue between the sessions and the database (sessions hand a frame over and go on
reading their socket; they never wait on PostgreSQL), the writer tasks, the batch statement of
each media path, and what is dropped when the database falls behind. Does not own: checking
frames (``relay.session``) or routing them back out (the hub, from the stream).

Why batches: a frame written on its own costs a round trip, a commit (a WAL flush, since frames
keep ``synchronous_commit`` on for latency) and several task switches on each side. A batch is
one transaction sent in one round trip (libpq's pipeline mode: BEGIN, one prepared INSERT (or
logical message) per frame, COMMIT). It forms by itself: while one batch is in flight the next
frames queue up, so an idle server writes each frame at once (no added delay) and a busy one
writes a few per commit. Per sender the order is kept: each sender's frames go through one
shard, in order, and a batch writes them in queue order.

Falling behind: a shard holding more than ``max_queued_bytes`` drops its oldest *video* frames
first (stale video is worthless, audio is small), counting each in ``dropped``.

Connections: each shard keeps one connection of its own (``Pool.open``, made again
after a failure) instead of borrowing one from the pool per batch: a lease cost a semaphore, a
cancel scope with its deadline and an async generator for every batch, a tenth of the write
path. The lease's deadline becomes a watchdog (``run``): a batch unanswered for the pool's
lease timeout closes its connection, and its frames fail as a lost connection's do. What
the pool does for its idle connections, a shard does for its own: one idle for a while is
checked for a close by the server before a batch goes on it (``_write``).
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..pg.conn import PgConnection, PgError
from ..pg.pool import Pool, gone_while_idle
from ..wire.protocol import Media
from ..wire.rooms import RoomMedia
from . import mediamsg

log = logging.getLogger("pgcall.frames")

OnFailed = Callable[[PgError], None]

# Each frame table's columns (after ``id``, before ``inserted_at``) and how a frame fills them.
# The last column names the relays the frame is for (sql/0005_frame_routes.sql).
COLUMNS = {
    "audio_frames": ("session_id", "from_id", "to_id", "seq", "sample_rate", "channels", "rms",
                     "pcm16le", "to_relay"),
    "video_frames": ("session_id", "from_id", "to_id", "seq", "width", "height", "jpeg",
                     "to_relay"),
    "room_audio_frames": ("room_id", "from_id", "seq", "sample_rate", "channels", "rms",
                          "pcm16le", "relays"),
    "room_video_frames": ("room_id", "from_id", "seq", "layer", "width", "height", "jpeg",
                          "relays"),
}
INSERT_SQL = {table: f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                     f"({', '.join(f'${i}' for i in range(1, len(cols) + 1))})"
              for table, cols in COLUMNS.items()}
MESSAGE_SQL = "SELECT pg_logical_emit_message(true, $1, $2)"


def table_of(media: Media | RoomMedia) -> str:
    room = "room_" if isinstance(media, RoomMedia) else ""
    return f"{room}{media.kind}_frames"


Route = int | list[int] | None  # the relay (a call), or relays (a room); None: all


_UUIDS: dict[str, uuid.UUID] = {}  # a call's or room's id, parsed once rather than per frame
_CACHE_MAX = 10_000  # ids (and senders' shards) remembered before such a cache starts over


def _uuid(text: str) -> uuid.UUID:
    found = _UUIDS.get(text)
    if found is None:
        if len(_UUIDS) >= _CACHE_MAX:
            _UUIDS.clear()
        found = _UUIDS[text] = uuid.UUID(text)
    return found


def row_of(media: Media | RoomMedia, from_id: str, route: Route = None) -> tuple[Any, ...]:
    """The values of ``table_of(media)``'s columns, in ``COLUMNS`` order."""
    h = media.header
    if isinstance(media, RoomMedia):
        head: tuple[Any, ...] = (_uuid(media.room_id), from_id, media.seq)
        if media.kind == "audio":
            return (*head, h["sample_rate"], h["channels"], float(h["rms"]), media.payload,
                    route)
        return (*head, h["layer"], h["width"], h["height"], media.payload, route)
    head = (_uuid(media.session_id), from_id, media.to, media.seq)
    if media.kind == "audio":
        return (*head, h["sample_rate"], h["channels"], float(h["rms"]), media.payload, route)
    return (*head, h["width"], h["height"], media.payload, route)


def statement(media: Media | RoomMedia, from_id: str, media_path: str,
              route: Route = None) -> tuple[str, tuple[Any, ...]]:
    """The statement that writes one frame on ``media_path`` (logical messages cannot be
    filtered per relay: every relay decodes them, and ``route`` is not used)."""
    if media_path == "message":
        prefixes = mediamsg.ROOM_PREFIX if isinstance(media, RoomMedia) else mediamsg.PREFIX
        return MESSAGE_SQL, (prefixes[media.kind], mediamsg.encode(media, from_id))
    return INSERT_SQL[table_of(media)], row_of(media, from_id, route)


@attrs.define
class _Queued:
    media: Media | RoomMedia
    from_id: str
    on_failed: OnFailed
    route: Route


@attrs.define
class _Shard:
    queue: deque[_Queued] = attrs.Factory(deque)
    queued_bytes: int = 0
    wake: trio.Event = attrs.Factory(trio.Event)
    conn: PgConnection | None = None
    writing_since: float | None = None  # when the batch in flight was sent
    last_sent: float = 0.0  # when the last batch was sent: idle since about then


class FrameWriter:
    def __init__(self, pool: Pool, media_path: str = "table", *, shards: int = 2,
                 max_batch: int = 64, max_queued_bytes: int = 4 * 1024 * 1024) -> None:
        self.pool = pool
        self.media_path = media_path
        self.max_batch = max_batch
        self.max_queued_bytes = max_queued_bytes
        self._shards = [_Shard() for _ in range(shards)]
        self._shard_of: dict[str, _Shard] = {}
        self.written = 0
        self.batches = 0
        self.dropped = 0  # video frames dropped because the database fell behind

    def submit(self, media: Media | RoomMedia, from_id: str, on_failed: OnFailed,
               route: Route = None) -> None:
        """Queue a checked frame for writing; never blocks. ``on_failed`` is called (from the
        writer task) if the statement carrying it fails. ``route``: the relays it is for."""
        shard = self._shard_of.get(from_id)
        if shard is None:  # a sender's shard, computed once
            if len(self._shard_of) >= _CACHE_MAX:
                self._shard_of.clear()
            shard = self._shard_of[from_id] = \
                self._shards[zlib.crc32(from_id.encode()) % len(self._shards)]
        shard.queue.append(_Queued(media, from_id, on_failed, route))
        shard.queued_bytes += len(media.payload)
        while shard.queued_bytes > self.max_queued_bytes and self._drop_oldest_video(shard):
            pass
        shard.wake.set()

    def _drop_oldest_video(self, shard: _Shard) -> bool:
        for i, item in enumerate(shard.queue):
            if item.media.kind == "video":
                del shard.queue[i]
                shard.queued_bytes -= len(item.media.payload)
                self.dropped += 1
                return True
        return False

    async def run(self) -> None:
        """The writer tasks, one per shard, and their watchdog; never returns."""
        try:
            async with trio.open_nursery() as nursery:
                for shard in self._shards:
                    nursery.start_soon(self._run_shard, shard)
                nursery.start_soon(self._watch)
        finally:
            for shard in self._shards:
                if shard.conn is not None:
                    shard.conn.close()

    async def _watch(self) -> None:
        """Close the connection of a batch unanswered for the pool's lease timeout: a network
        gone silent sends no error, and the shard would wait for ever."""
        timeout = self.pool.lease_timeout_s
        while True:
            await trio.sleep(timeout / 4)
            now = trio.current_time()
            for shard in self._shards:
                since = shard.writing_since
                if since is not None and now - since > timeout and shard.conn is not None:
                    log.warning("no answer from PostgreSQL to a frame batch within %g s",
                                timeout)
                    shard.conn.close()

    async def _run_shard(self, shard: _Shard) -> None:
        while True:
            if not shard.queue:
                shard.wake = trio.Event()
                await shard.wake.wait()
            batch = [shard.queue.popleft()
                     for _ in range(min(self.max_batch, len(shard.queue)))]
            shard.queued_bytes -= sum(len(item.media.payload) for item in batch)
            try:
                await self._write(shard, batch)
            except PgError as exc:
                for item in batch:
                    item.on_failed(exc)
                continue
            self.written += len(batch)
            self.batches += 1

    async def _write(self, shard: _Shard, batch: list[_Queued]) -> None:
        statements = [statement(item.media, item.from_id, self.media_path, item.route)
                      for item in batch]
        conn = shard.conn
        now = trio.current_time()
        # Checked as the pool checks its idle connections, so that a batch after a pause goes
        # on a new connection instead of failing on one the server closed meanwhile.
        if conn is not None and gone_while_idle(conn, shard.last_sent, now):
            conn.broken = True
        if conn is None or conn.broken:
            if conn is not None:
                conn.close()
            shard.conn = None  # until a new one is open
            conn = shard.conn = await self.pool.open()
        shard.writing_since = shard.last_sent = now
        try:
            await conn.execute_batch(statements)
        finally:
            shard.writing_since = None

    def statistics(self) -> dict[str, int]:
        return {"written": self.written, "batches": self.batches, "dropped": self.dropped,
                "queued": sum(len(s.queue) for s in self._shards)}
