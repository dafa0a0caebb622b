"""The ``run_replication`` task: keeps a replication stream flowing into the hub, for ever.

Owns: (re)connecting with capped exponential backoff (each time a fresh temporary slot and a
fresh snapshot), telling the hub when the stream (re)starts or goes down, acknowledging
transactions the hub has taken. Does not own: the transport (``pg.stream``) or routing (``hub``).

``ReplicationSource`` is the seam tests use: the real source opens a PostgreSQL stream; the
scripted one (``pg.scripted``) is driven by the test, with the same events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import trio

from ..pg.changes import Snapshot, Transaction
from ..pg.conn import PgError
from ..pg.pgoutput import PgOutputError
from ..pg.stream import PUBLICATIONS, open_stream
from ..pg.walproto import Lsn, ReplicationProtocolError

log = logging.getLogger("pgcall.replication")

BACKOFF_INITIAL_S = 0.1
# Capped at 2 s so that replication resumes within about 2 s of PostgreSQL coming back.
BACKOFF_MAX_S = 2.0


class Stream(Protocol):
    snapshot: Snapshot

    def __aiter__(self) -> AsyncIterator[Transaction]: ...
    def ack(self, lsn: Lsn) -> None: ...
    async def run_feedback(self) -> None: ...
    def statistics(self) -> dict[str, Any]: ...


class ReplicationSource(Protocol):
    def open(self) -> AbstractAsyncContextManager[Stream]: ...


class Consumer(Protocol):
    """What the stream feeds: the hub."""

    def restart(self, snapshot: Snapshot) -> None: ...
    def publish(self, txn: Transaction) -> None: ...
    def stream_down(self, reason: str) -> None: ...


class PostgresSource:
    """Streams from ``dsn``; with ``primary_dsn``, ``dsn`` is a hot standby of that primary
    (decoding on the standby, PostgreSQL >= 16)."""

    def __init__(self, dsn: str, publications: tuple[str, ...] = PUBLICATIONS,
                 primary_dsn: str | None = None) -> None:
        self.dsn = dsn
        self.publications = publications
        self.primary_dsn = primary_dsn

    def open(self) -> AbstractAsyncContextManager[Stream]:
        return open_stream(self.dsn, self.publications, self.primary_dsn)


class ReplicationStatus:
    """Counters and the current stream, for /healthz and /metrics."""

    def __init__(self) -> None:
        self.stream: Stream | None = None
        self.reconnects = 0
        self.bytes_before = 0  # received on streams that have ended
        self.last_error = ""

    @property
    def streaming(self) -> bool:
        return self.stream is not None

    @property
    def bytes_received(self) -> int:
        """What the walsenders have sent this relay, over every stream so far."""
        now = int(self.stream.statistics().get("bytes_received", 0)) if self.stream else 0
        return self.bytes_before + now


# Failures after which reconnecting can help; anything else is a bug and propagates.
RECOVERABLE = (PgError, OSError, PgOutputError, ReplicationProtocolError)


async def run_replication(source: ReplicationSource, hub: Consumer,
                          status: ReplicationStatus | None = None, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Never returns. ``started()`` once the first stream is flowing into the hub."""
    status = status or ReplicationStatus()
    backoff = BACKOFF_INITIAL_S
    started = False
    while True:
        reason = "stream closed"
        try:
            async with source.open() as stream:
                hub.restart(stream.snapshot)
                status.stream = stream
                backoff = BACKOFF_INITIAL_S
                if not started:
                    started = True
                    task_status.started()
                failure: Exception | None = None
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(stream.run_feedback)
                    try:
                        async for txn in stream:
                            hub.publish(txn)
                            stream.ack(txn.end_lsn)
                    except Exception as exc:  # raised below, as it is, not from the nursery
                        failure = exc
                    nursery.cancel_scope.cancel()
                if failure is not None:
                    raise failure
        except RECOVERABLE as exc:
            reason = status.last_error = str(exc) or type(exc).__name__
            log.warning("replication stream lost: %s; reconnecting in %.1f s",
                        status.last_error, backoff)
        finally:
            if status.stream is not None:
                status.bytes_before += int(status.stream.statistics().get("bytes_received", 0))
                status.stream = None
                hub.stream_down(reason)
        status.reconnects += 1
        await trio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_S)
