"""The logical replication stream of one PostgreSQL, read inside trio.

Owns: the replication connection (a temporary pgoutput slot, so no slot outlives pgcall, even
after ``kill -9``), the consistent state snapshot the stream starts from, reading CopyData,
answering keepalives and sending standby status updates. Does not own: decoding
(``walproto``/``pgoutput``/``changes``) or reconnecting (``replication``).

Consistency: the slot is created with an exported snapshot; the state tables are read in a
REPEATABLE READ transaction that adopts it (``SET TRANSACTION SNAPSHOT``); replication then
starts at the slot's consistent point. Every committed change is in the snapshot or in the
stream, never in both and never in neither (PostgreSQL docs, "Streaming Replication
Protocol": CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT).

Feedback: a standby status update about every second, at once when a keepalive asks, and
always with the LSN the hub has acknowledged (``ack``), so the server may recycle WAL and does
not drop us at ``wal_sender_timeout``. Idle keepalives advance it too. The regular updates
and the silence limit are kept by ``run_feedback``, a task beside the reader.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

from . import walproto
from .changes import Snapshot, TableRows, Transaction, TransactionAssembler
from .conn import ConnectionLost, PgConnection, open_connection
from .walproto import Lsn

log = logging.getLogger("pgcall.replication")

PUBLICATIONS = ("pgcall_state", "pgcall_frames")
STATUS_INTERVAL_S = 1.0
# Nothing at all from the server for this long, although each status update sent after a
# second of silence asks for a reply: the connection is dead though no error arrived (a
# silent network). Without it the stream would wait for ever (TCP retransmissions give up
# only after ~15 minutes) while /healthz says "streaming".
SILENCE_LIMIT_S = 5.0

# The state the hub mirrors, read at the snapshot. Same queries as pg-relay's snapshot (§4.2).
SNAPSHOT_QUERIES = {
    "users": "SELECT * FROM users",
    "chat_messages": "SELECT * FROM chat_messages ORDER BY id DESC LIMIT 250",
    "call_sessions": "SELECT * FROM call_sessions",
    "media_settings": "SELECT * FROM media_settings WHERE id = 1",
    "ai_transcripts": "SELECT * FROM ai_transcripts WHERE created_at > now() - interval '1 hour' "
                      "ORDER BY id DESC LIMIT 200",
    # Rooms (sql/0002_rooms.sql): the hub mirrors them whole, room chat its newest messages.
    "rooms": "SELECT * FROM rooms",
    "room_members": "SELECT * FROM room_members",
    "room_invites": "SELECT * FROM room_invites",
    "room_messages": "SELECT * FROM room_messages ORDER BY id DESC LIMIT 5000",
    # Which pgcall serves whom (sql/0003): never sent to clients.
    "pgcall_presence": "SELECT * FROM pgcall_presence",
    # Recordings going on (sql/0004): their participants see the indicator.
    "recordings": "SELECT * FROM recordings WHERE stopped_at IS NULL",
}


def slot_name() -> str:
    return f"pgcall_{os.getpid()}_{secrets.token_hex(4)}"


class ReplicationStream:
    """Iterate to get committed transactions; call ``ack`` once the hub has taken one."""

    def __init__(self, conn: PgConnection, snapshot: Snapshot, start: Lsn, slot: str) -> None:
        self.conn = conn
        self.snapshot = snapshot
        self.slot = slot
        self._assembler = TransactionAssembler()
        self._acked = start
        self._last_end = start  # end LSN of the last transaction handed out
        self._next_status = 0.0
        # When run_feedback last saw ``bytes_received`` grow: the reader itself takes no time
        # per message (a relay reads two or three of them per relayed frame).
        self._last_heard = trio.current_time()
        self._heard_bytes = 0
        self._status_lock = trio.Lock()
        self.bytes_received = 0  # CopyData from the walsender: this relay's egress from it
        self._silent = False  # run_feedback closed the connection: the server went quiet
        self.server_wal_end = start
        self.last_commit_time = 0  # of the last transaction handed out (PostgreSQL epoch, µs)

    def ack(self, lsn: Lsn) -> None:
        if lsn > self._acked:
            self._acked = lsn

    def statistics(self) -> dict[str, Any]:
        return {"slot": self.slot, "acked_lsn": str(self._acked),
                "received_lsn": str(self._last_end), "server_wal_end": str(self.server_wal_end),
                "lag_bytes": max(0, int(self.server_wal_end) - int(self._acked)),
                "last_commit_time": self.last_commit_time,
                "bytes_received": self.bytes_received}

    async def _send_status(self, reply: bool = False) -> None:
        self._next_status = trio.current_time() + STATUS_INTERVAL_S
        async with self._status_lock:  # the reader (keepalives) and run_feedback both send
            await self.conn.put_copy_data(walproto.standby_status_update(
                self._acked, self._acked, self._acked, walproto.pg_time_us(time.time()),
                reply))

    async def run_feedback(self) -> None:
        """A status update about every second (asking for a reply once the server has been
        quiet that long), and the silence limit: a connection the server has said nothing on
        for ``SILENCE_LIMIT_S`` is dead though no error came, and is closed (the reader then
        fails with that reason). Beside the reader, so that reading a message sets no timer;
        what arrived is seen here, at each status update (so the limit is kept to within one
        ``STATUS_INTERVAL_S``, never early). Returns when the stream is closed."""
        while True:
            await trio.sleep_until(self._next_status)
            now = trio.current_time()
            if self.bytes_received != self._heard_bytes:
                self._heard_bytes, self._last_heard = self.bytes_received, now
            if now - self._last_heard >= SILENCE_LIMIT_S:
                self._silent = True
                self.conn.close()
                return
            try:
                await self._send_status(reply=now - self._last_heard >= STATUS_INTERVAL_S)
            except ConnectionLost:
                return  # the reader sees it too

    def __aiter__(self) -> ReplicationStream:
        return self

    async def __anext__(self) -> Transaction:
        while True:
            try:
                data = await self.conn.get_copy_data()
            except ConnectionLost:
                if self._silent:
                    raise ConnectionLost(
                        f"no message from the server for {SILENCE_LIMIT_S:g} s") from None
                raise
            if data is None:
                raise ConnectionLost("the server ended the replication stream")
            self.bytes_received += len(data)
            if data[0] == walproto.XLOGDATA_TAG:  # the payload is all a message is read for
                txn = self._assembler.feed(walproto.xlogdata_payload(data))
                if txn is not None:
                    self._last_end = txn.end_lsn
                    self.server_wal_end = max(self.server_wal_end, txn.end_lsn)
                    self.last_commit_time = txn.commit_time
                    return txn
                continue
            wal_end, reply_requested = walproto.keepalive_fields(data)  # or raises: unknown
            self.server_wal_end = max(self.server_wal_end, wal_end)
            # Between transactions, with all handed out ones acknowledged, nothing is in
            # flight: the idle position can be confirmed (lets the server recycle WAL).
            if not self._assembler.in_transaction and self._acked >= self._last_end:
                self._acked = max(self._acked, wal_end)
            if reply_requested:
                await self._send_status()


async def _read_snapshot(dsn: str, snapshot_name: str) -> Snapshot:
    async with open_connection(dsn) as conn:
        await conn.simple("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        await conn.simple(f"SET TRANSACTION SNAPSHOT '{snapshot_name}'")
        tables = {}
        for table, sql in SNAPSHOT_QUERIES.items():
            res = await conn.execute(sql)
            tables[table] = TableRows(tuple(zip(res.columns, res.types, strict=True)),
                                      tuple(res.dicts()))
        await conn.simple("COMMIT")
        return Snapshot(tables)


NUDGE_EVERY_S = 0.5


async def _nudge(primary_dsn: str) -> None:
    """Until cancelled: ``pg_log_standby_snapshot()`` on the primary every ``NUDGE_EVERY_S``.
    A logical slot on a standby (PostgreSQL >= 16) is ready only once a running-xacts record
    has come from the primary, which an idle primary writes only every 15 s; this makes it
    come at once."""
    async with open_connection(primary_dsn) as conn:
        while True:
            await conn.execute("SELECT pg_log_standby_snapshot()")
            await trio.sleep(NUDGE_EVERY_S)


@contextlib.asynccontextmanager
async def open_stream(dsn: str, publications: tuple[str, ...] = PUBLICATIONS,
                      primary_dsn: str | None = None) -> AsyncIterator[ReplicationStream]:
    """Connect, take the snapshot, start streaming; the slot goes with the connection.
    ``primary_dsn``: ``dsn`` is a hot standby of it (decoding on the standby)."""
    async with open_connection(dsn, replication="database") as conn:
        slot = slot_name()
        # PostgreSQL 15 introduced the option list; 14 only knows the keyword form.
        option = "(SNAPSHOT 'export')" if conn.server_version >= 150000 else "EXPORT_SNAPSHOT"
        create = f"CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput {option}"
        async with trio.open_nursery() as nursery:
            if primary_dsn is not None:
                nursery.start_soon(_nudge, primary_dsn)
            res = (await conn.simple(create))[0].dicts()[0]
            nursery.cancel_scope.cancel()
        start, snapshot_name = Lsn.parse(res["consistent_point"]), res["snapshot_name"]
        # The exported snapshot lives until the next command on this connection.
        snapshot = await _read_snapshot(dsn, snapshot_name)
        pubs = ",".join(publications)
        await conn.simple(
            f"START_REPLICATION SLOT {slot} LOGICAL {start} (proto_version '1', "
            f"publication_names '{pubs}', binary 'true', messages 'true')")
        log.info("replication streaming from %s (slot %s)", start, slot)
        yield ReplicationStream(conn, snapshot, start, slot)
