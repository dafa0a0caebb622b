"""The frame writer against a real PostgreSQL: frames keep their order however they are batched,
a failed batch fails its own frames only, and a connection the server closed while the writer
was idle is replaced before a batch is lost on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from pgcall.db.framewriter import FrameWriter
from pgcall.pg.pool import IDLE_CHECK_S, Pool, open_pool
from pgcall.wire.protocol import Media

from .polling import poll_until

SESSION = str(uuid.uuid4())


def frame(seq: int, width: int = 640) -> Media:
    return Media("video", SESSION, "b", seq, {"width": width, "height": 360},
                 bytes([seq % 256]) * 2000)


class Sender:
    """A session's side of the writer: hands frames in and records the ones that failed."""

    def __init__(self, writer: FrameWriter) -> None:
        self.writer = writer
        self.failed: list[int] = []

    def send(self, media: Media) -> None:
        self.writer.submit(media, "a", lambda exc: self.failed.append(media.seq))

    async def settled(self, count: int) -> None:
        """Until ``count`` frames were written or failed."""
        async def done() -> bool:
            return self.writer.written + len(self.failed) >= count
        await poll_until(done, 5)


@pytest.fixture
async def sender(db_dsn: str, nursery: trio.Nursery) -> AsyncIterator[Sender]:
    async with open_pool(db_dsn, 2) as pool:
        writer = FrameWriter(pool, shards=1)
        nursery.start_soon(writer.run)
        yield Sender(writer)
        nursery.cancel_scope.cancel()


async def stored_seqs(db: Pool) -> list[int]:
    async with db.connection() as conn:
        result = await conn.execute("SELECT seq FROM video_frames ORDER BY id")
    return [row[0] for row in result.rows]


async def test_frames_keep_their_order_however_they_are_batched(sender: Sender,
                                                                db: Pool) -> None:
    seqs = list(range(60))
    for seq in seqs:
        sender.send(frame(seq))
        if seq % 3 == 0:  # now and then the writer runs: batches of one frame and of several
            await trio.sleep(0.002)
    await sender.settled(len(seqs))
    assert 1 < sender.writer.batches < len(seqs)
    assert await stored_seqs(db) == seqs
    assert sender.failed == []


async def test_a_failed_batch_fails_its_frames_only(sender: Sender, db: Pool) -> None:
    # 40000 does not fit the SMALLINT width: the INSERT fails when it runs.
    sender.send(frame(0))
    await sender.settled(1)
    sender.send(frame(1, width=40000))  # a new parameter type: prepared, then fails
    await sender.settled(2)
    sender.send(frame(2, width=40001))  # the statement prepared for it: fails again
    await sender.settled(3)
    sender.send(frame(3))  # the connection is still good
    await sender.settled(4)
    assert sender.failed == [1, 2]
    assert await stored_seqs(db) == [0, 3]


async def test_a_connection_closed_while_idle_is_replaced_before_use(sender: Sender,
                                                                    db: Pool) -> None:
    sender.send(frame(0))
    await sender.settled(1)
    async with db.connection() as conn:
        ended: Any = await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'INSERT INTO video_frames%'")
    assert ended.rows == [(True,)]

    async def gone() -> bool:
        async with db.connection() as conn:
            left = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'INSERT INTO video_frames%'")
        return left.rows == [(0,)]
    await poll_until(gone, 5)
    await trio.sleep(IDLE_CHECK_S)  # idle long enough to be checked before its next batch
    sender.send(frame(1))
    await sender.settled(2)
    assert sender.failed == []
    assert await stored_seqs(db) == [0, 1]

