"""The replication stream against a real PostgreSQL: what arrives, with which values, in which
grouping and order, and how the snapshot and the stream split the committed rows between them.

Test policy: writes go through a second connection in the same trio run and are awaited to
their COMMIT before the stream is read, so the changes are already waiting in the slot; every
read has a deadline (``trio.fail_after``). Only the server's own view of the slot (its
confirmed position, whether it still exists) is polled, under a deadline, since nothing
announces a change of it.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from pgcall.db import publications
from pgcall.db.framewriter import COLUMNS
from pgcall.pg.changes import Change, LogicalMessage, Transaction
from pgcall.pg.conn import PgConnection, open_connection
from pgcall.pg.stream import PUBLICATIONS, ReplicationStream, open_stream
from pgcall.pg.values import UNCHANGED
from pgcall.pg.walproto import Lsn

DEADLINE_S = 10.0  # generous: the machine is shared; a healthy stream answers in milliseconds
UTC = dt.UTC


def float4(x: float) -> float:
    """The Python float a PostgreSQL ``real`` holding ``x`` reads back as."""
    return struct.unpack("!f", struct.pack("!f", x))[0]


@pytest.fixture
async def dsn(db_dsn: str) -> AsyncIterator[str]:
    """``db_dsn``, and after the test: every slot of its streams is gone. A temporary slot is
    dropped by its walsender as it exits, a moment after the client closed the connection;
    the database cannot be dropped before that."""
    yield db_dsn
    async with open_connection(db_dsn) as conn:
        with trio.fail_after(DEADLINE_S):
            while True:
                res = await conn.execute("SELECT count(*) FROM pg_replication_slots"
                                         " WHERE database = current_database()")
                if res.rows == [(0,)]:
                    break
                await trio.sleep(0.02)


async def next_txn(stream: ReplicationStream) -> Transaction:
    """The next transaction that carries something (PostgreSQL < 15 also sends empty ones)."""
    with trio.fail_after(DEADLINE_S):
        async for txn in stream:
            if txn.changes:
                return txn
    raise AssertionError("the stream ended")


async def txns_until(stream: ReplicationStream,
                     last: Callable[[Transaction], bool]) -> list[Transaction]:
    """Non-empty transactions up to and including the first one for which ``last`` holds."""
    out = [await next_txn(stream)]
    while not last(out[-1]):
        out.append(await next_txn(stream))
    return out


def has_marker(name: str) -> Callable[[Transaction], bool]:
    def check(txn: Transaction) -> bool:
        return any(isinstance(c, Change) and c.table == "users" and c.row is not None
                   and c.row["identity"] == name for c in txn.changes)
    return check


async def insert_marker(conn: PgConnection, name: str) -> None:
    await conn.execute("INSERT INTO users (identity) VALUES ($1)", [name])


def only_change(txn: Transaction) -> Change:
    assert len(txn.changes) == 1, txn.changes
    change = txn.changes[0]
    assert isinstance(change, Change)
    return change


# -- row changes and their values ------------------------------------------------------------


async def test_insert_update_delete_with_full_rows(dsn: str) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        await w.execute("INSERT INTO users (identity, nickname, connected_at, is_ai)"
                        " VALUES ($1, $2, $3, $4)", ["alice", "Alice", when, True])
        await w.execute("UPDATE users SET nickname = 'Alicia' WHERE identity = 'alice'")
        await w.execute("DELETE FROM users WHERE identity = 'alice'")

        inserted = only_change(await next_txn(stream))
        updated = only_change(await next_txn(stream))
        deleted = only_change(await next_txn(stream))

    row = {"identity": "alice", "nickname": "Alice", "connected_at": when, "is_ai": True}
    assert inserted.table == "users"
    assert inserted.op == "insert"
    assert [name for name, _ in inserted.columns] == list(row)
    assert inserted.row == row
    assert inserted.old is None
    # Read without a session time zone: timestamptz values come back in UTC.
    assert inserted.row["connected_at"].utcoffset() == dt.timedelta(0)
    assert inserted.row["connected_at"].hour == 5

    assert updated.op == "update"
    assert updated.row == {**row, "nickname": "Alicia"}
    assert updated.old == row  # REPLICA IDENTITY FULL: the whole old row

    assert deleted.op == "delete"
    assert deleted.row is None
    assert deleted.old == {**row, "nickname": "Alicia"}


async def test_values_of_each_column_type(dsn: str) -> None:
    session = uuid.uuid4()
    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        chat_id = (await w.execute(
            "INSERT INTO chat_messages (sender, text) VALUES ('bob', 'héllo ✓') RETURNING id"
        )).rows[0][0]
        await w.execute("INSERT INTO call_sessions (session_id, call_type, state, caller, callee)"
                        " VALUES ($1, 'Video', 'Ringing', 'bob', 'carol')", [session])
        await w.execute("UPDATE media_settings SET video_jpeg_quality = 0.8,"
                        " audio_talking_rms_threshold = 0.125 WHERE id = 1")
        await w.execute("UPDATE chat_messages SET text = 'edited' WHERE id = $1", [chat_id])

        chat = only_change(await next_txn(stream))
        call = only_change(await next_txn(stream))
        media = only_change(await next_txn(stream))
        edit = only_change(await next_txn(stream))

    assert chat.row is not None
    assert chat.row["id"] == chat_id
    assert type(chat.row["id"]) is int  # int8
    assert chat.row["text"] == "héllo ✓"
    assert chat.row["sent_at"].utcoffset() == dt.timedelta(0)
    assert abs(chat.row["sent_at"] - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)

    assert call.row is not None
    assert call.row["session_id"] == session
    assert isinstance(call.row["session_id"], uuid.UUID)
    assert call.row["answered_at"] is None
    assert (call.row["call_type"], call.row["state"]) == ("Video", "Ringing")

    assert media.table == "media_settings"
    assert media.old is not None and media.row is not None
    assert media.old["video_jpeg_quality"] == float4(0.65)
    assert media.row["video_jpeg_quality"] == float4(0.8)
    assert media.row["audio_talking_rms_threshold"] == 0.125
    assert media.row["video_width"] == 640
    assert {k: v for k, v in media.row.items() if "quality" not in k and "rms" not in k} == \
        {k: v for k, v in media.old.items() if "quality" not in k and "rms" not in k}

    assert edit.old == {**chat.row}
    assert edit.row == {**chat.row, "text": "edited"}
    assert UNCHANGED not in edit.row.values()  # FULL identity: nothing left out


async def test_video_frame_arrives_byte_identical(dsn: str) -> None:
    payload = os.urandom(30 * 1024)
    session = uuid.uuid4()
    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        await w.execute("INSERT INTO video_frames (session_id, from_id, to_id, seq, width,"
                        " height, jpeg) VALUES ($1, 'a', 'b', 7, 640, 360, $2)",
                        [session, payload])
        frame = only_change(await next_txn(stream))

    assert (frame.table, frame.op) == ("video_frames", "insert")
    assert frame.row is not None
    assert bytes(frame.row["jpeg"]) == payload
    assert (frame.row["session_id"], frame.row["seq"], frame.row["width"]) == (session, 7, 640)


async def test_a_relay_publication_sends_its_own_frames_with_the_routed_columns(
        dsn: str) -> None:
    """A relay's own publication (PostgreSQL >= 15): the frames naming it or no relay, and of
    each only the columns the relay uses; a frame for another relay does not arrive. On 14,
    the shared publication: every frame, every column."""
    payload = os.urandom(2000)
    session = uuid.uuid4()
    async with open_connection(dsn) as w:
        own = w.server_version >= publications.ROW_FILTERS_FROM
        pubs = await publications.open_relay_publication(w, 7)
        insert = ("INSERT INTO audio_frames (session_id, from_id, to_id, seq, sample_rate,"
                  " channels, rms, pcm16le, to_relay) VALUES ($1, 'a', 'b', $2, 48000, 1, 0.5,"
                  " $3, $4)")
        async with open_stream(dsn, pubs) as stream:
            for seq, relay in ((1, 8), (2, 7), (3, None)):
                await w.execute(insert, [session, seq, payload, relay])
            frames = [only_change(await next_txn(stream)) for _ in range(2 if own else 3)]
        await publications.drop_relay_publication(w, 7)

    assert [f.row["seq"] for f in frames if f.row is not None] == ([2, 3] if own else [1, 2, 3])
    routed = list(COLUMNS["audio_frames"][:-1])
    for frame in frames:
        assert frame.row is not None
        if own:
            assert [name for name, _ in frame.columns] == list(frame.row) == routed
        else:
            assert set(routed) < set(frame.row)
        assert bytes(frame.row["pcm16le"]) == payload
        assert (frame.row["session_id"], frame.row["to_id"]) == (session, "b")


@pytest.mark.parametrize("publish_truncate", [False, True], ids=["shipped", "truncate-published"])
async def test_truncate_gives_no_change(dsn: str, publish_truncate: bool) -> None:
    publications = PUBLICATIONS
    if publish_truncate:
        # Also exercise the decoder on a real Truncate message, which it must drop.
        async with open_connection(dsn) as w:
            await w.simple("CREATE PUBLICATION t_truncate FOR TABLE chat_messages"
                           " WITH (publish = 'truncate')")
        publications = (*PUBLICATIONS, "t_truncate")
    async with open_stream(dsn, publications) as stream, open_connection(dsn) as w:
        await w.simple("INSERT INTO chat_messages (sender, text) VALUES ('a', 'gone')")
        await w.simple("TRUNCATE chat_messages")
        await w.simple("BEGIN; INSERT INTO chat_messages (sender, text) VALUES ('a', 'before');"
                       " TRUNCATE chat_messages;"
                       " INSERT INTO chat_messages (sender, text) VALUES ('a', 'after'); COMMIT")
        await insert_marker(w, "marker")
        txns = await txns_until(stream, has_marker("marker"))

    texts = [[(c.op, c.row["text"]) for c in t.changes
              if isinstance(c, Change) and c.row is not None and c.table == "chat_messages"]
             for t in txns]
    assert texts == [[("insert", "gone")], [("insert", "before"), ("insert", "after")], []]
    assert all(isinstance(c, Change) for t in txns for c in t.changes)


async def test_transactional_logical_message(dsn: str) -> None:
    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        await w.simple("BEGIN; INSERT INTO users (identity) VALUES ('m');"
                       " SELECT pg_logical_emit_message(true, 'prefix', 'x'); COMMIT")
        # Non-transactional messages and rolled-back ones are not relayed.
        await w.simple("SELECT pg_logical_emit_message(false, 'loose', 'y')")
        await w.simple("BEGIN; SELECT pg_logical_emit_message(true, 'undone', 'z'); ROLLBACK")
        await insert_marker(w, "marker")
        txns = await txns_until(stream, has_marker("marker"))

    assert len(txns) == 2
    first = txns[0].changes
    assert len(first) == 2
    assert isinstance(first[0], Change) and first[0].row is not None
    assert first[0].row["identity"] == "m"
    assert isinstance(first[1], LogicalMessage)
    assert first[1].prefix == "prefix"
    assert bytes(first[1].content) == b"x"
    marker = only_change(txns[1]).row
    assert marker is not None and marker["identity"] == "marker"


async def test_unpublished_rows_and_frame_deletes_do_not_arrive(dsn: str) -> None:
    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        await w.simple("CREATE TABLE scratch (id int PRIMARY KEY, note text)")
        await w.simple("INSERT INTO scratch VALUES (1, 'private')")
        await w.simple("INSERT INTO pgcall_tokens (token_hash, identity) VALUES ('\\x01', 'z')")
        await w.simple("INSERT INTO video_frames (session_id, from_id, to_id, seq, width,"
                       " height, jpeg) VALUES (gen_random_uuid(), 'a', 'b', 1, 2, 2, '\\xff')")
        await w.simple("UPDATE video_frames SET seq = 2")
        await w.simple("DELETE FROM video_frames")
        await insert_marker(w, "marker")
        txns = await txns_until(stream, has_marker("marker"))

    seen = [(c.table, c.op) for t in txns for c in t.changes if isinstance(c, Change)]
    assert seen == [("video_frames", "insert"), ("users", "insert")]


async def test_transactions_arrive_whole_in_commit_order(dsn: str) -> None:
    async with (open_stream(dsn) as stream, open_connection(dsn) as a,
                open_connection(dsn) as b):
        # Interleaved statements; b commits first, so b's transaction comes first.
        await a.simple("BEGIN")
        await b.simple("BEGIN")
        await a.simple("INSERT INTO users (identity) VALUES ('a1')")
        await b.simple("INSERT INTO users (identity) VALUES ('b1')")
        await a.simple("INSERT INTO chat_messages (sender, text) VALUES ('a', 'a2')")
        await b.simple("UPDATE users SET nickname = 'B' WHERE identity = 'b1'")
        await b.simple("COMMIT")
        await a.simple("INSERT INTO users (identity) VALUES ('a3')")
        await a.simple("COMMIT")
        await b.simple("INSERT INTO users (identity) VALUES ('b4')")

        txns = [await next_txn(stream) for _ in range(3)]

    def label(c: Change | LogicalMessage) -> tuple[str, Any]:
        assert isinstance(c, Change) and c.row is not None
        return c.op, c.row.get("identity", c.row.get("text"))

    assert [[label(c) for c in t.changes] for t in txns] == [
        [("insert", "b1"), ("update", "b1")],
        [("insert", "a1"), ("insert", "a2"), ("insert", "a3")],
        [("insert", "b4")],
    ]
    assert txns[0].end_lsn < txns[1].end_lsn < txns[2].end_lsn
    assert txns[0].commit_time <= txns[1].commit_time <= txns[2].commit_time


# -- snapshot and stream together ------------------------------------------------------------


async def test_snapshot_holds_what_was_committed_before(dsn: str) -> None:
    async with open_connection(dsn) as w:
        await w.simple("INSERT INTO users (identity) VALUES ('u1'), ('u2'), ('u3')")
        await w.simple("INSERT INTO chat_messages (sender, text)"
                       " SELECT 'u1', 'm' || i FROM generate_series(1, 300) AS i")
        chat_ids = [r[0] for r in (await w.execute("SELECT id FROM chat_messages")).rows]
        await w.simple("INSERT INTO call_sessions (state, caller, callee)"
                       " VALUES ('Ringing', 'u1', 'u2')")

    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        await w.simple("INSERT INTO users (identity) VALUES ('late')")
        await w.simple("INSERT INTO chat_messages (sender, text) VALUES ('late', 'late')")
        first = only_change(await next_txn(stream))
        second = only_change(await next_txn(stream))
        snap = stream.snapshot.tables

    assert sorted(r["identity"] for r in snap["users"].rows) == ["u1", "u2", "u3"]
    assert [r["id"] for r in snap["chat_messages"].rows] == sorted(chat_ids, reverse=True)[:250]
    assert [(r["caller"], r["callee"]) for r in snap["call_sessions"].rows] == [("u1", "u2")]
    assert [r["id"] for r in snap["media_settings"].rows] == [1]
    assert snap["ai_transcripts"].rows == ()
    assert [name for name, _ in snap["users"].columns] == \
        ["identity", "nickname", "connected_at", "is_ai"]
    # Nothing committed before the stream opened is replayed; what came after is streamed.
    assert first.row is not None and first.row["identity"] == "late"
    assert second.row is not None and second.row["text"] == "late"


async def test_rows_committed_while_opening_are_in_exactly_one(dsn: str) -> None:
    """A writer commits rows one by one while the slot and the snapshot are being made: each
    row must be in the snapshot or in the stream, never both, never neither."""
    opened = trio.Event()
    committed: list[str] = []

    async def write_until_opened() -> None:
        async with open_connection(dsn) as w:
            i = 0
            while not opened.is_set() and i < 5000:
                await w.execute("INSERT INTO users (identity) VALUES ($1)", [f"w{i}"])
                committed.append(f"w{i}")
                i += 1
            for j in range(i, i + 5):  # a few surely after the stream exists
                await w.execute("INSERT INTO users (identity) VALUES ($1)", [f"w{j}"])
                committed.append(f"w{j}")
            await insert_marker(w, "marker")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_until_opened)
        async with open_stream(dsn) as stream:
            opened.set()
            txns = await txns_until(stream, has_marker("marker"))

    in_snapshot = [r["identity"] for r in stream.snapshot.tables["users"].rows]
    streamed = [c.row["identity"] for t in txns for c in t.changes
                if isinstance(c, Change) and c.row is not None and c.row["identity"] != "marker"]
    assert len(streamed) >= 5
    assert sorted(in_snapshot + streamed) == sorted(committed)
    assert streamed == committed[len(committed) - len(streamed):]  # the tail, in order


async def test_ack_reaches_the_server(dsn: str) -> None:
    """Acknowledged positions are reported in the standby status updates (about every
    second), so the slot's confirmed_flush_lsn advances and WAL can be recycled."""
    async with open_stream(dsn) as stream, open_connection(dsn) as w:
        await insert_marker(w, "marker")
        txn = await next_txn(stream)
        stream.ack(txn.end_lsn)
        stats = stream.statistics()
        assert stats["slot"] == stream.slot
        assert Lsn.parse(stats["acked_lsn"]) >= txn.end_lsn
        assert Lsn.parse(stats["received_lsn"]) == txn.end_lsn

        async def confirmed() -> Lsn | None:
            rows = (await w.execute("SELECT confirmed_flush_lsn::text, temporary"
                                    " FROM pg_replication_slots WHERE slot_name = $1",
                                    [stream.slot])).rows
            assert rows and rows[0][1] is True  # the slot is temporary
            return Lsn.parse(rows[0][0]) if rows[0][0] else None

        before = await confirmed()
        assert before is not None and before < txn.end_lsn
        async with trio.open_nursery() as nursery:
            # The stream's feedback task sends the periodic status updates.
            nursery.start_soon(stream.run_feedback)
            nursery.start_soon(next_txn, stream)
            # The server's view can only be polled; updates go out about once a second.
            with trio.fail_after(DEADLINE_S):
                while True:
                    now = await confirmed()
                    if now is not None and now >= txn.end_lsn:
                        break
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
