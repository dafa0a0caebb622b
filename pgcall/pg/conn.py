"""A trio-native PostgreSQL connection built on psycopg's libpq binding (``psycopg.pq``).

Owns: connecting without blocking (libpq still does TLS, SCRAM, .pgpass, service files), sending
a query or a prepared statement, waiting for its results on the socket, and turning rows into
Python values with psycopg's adapters. Also the COPY-both primitives replication needs.
Does not own: pooling (``pool``) or any SQL of pgcall's.

``psycopg.AsyncConnection`` is asyncio-only; this is the small part of it pgcall needs, awaited
with ``trio.lowlevel.wait_readable``/``wait_writable`` on libpq's socket. A cancelled wait leaves
the protocol mid-query, so a cancelled connection marks itself broken and is never reused.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import trio
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.conninfo import make_conninfo

CONNECT_TIMEOUT_S = 10.0
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY,
       pq.ExecStatus.COPY_BOTH, pq.ExecStatus.COPY_OUT, pq.ExecStatus.SINGLE_TUPLE)


class PgError(Exception):
    """An error reported by the server for one statement; the connection stays usable."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class ConnectionLost(PgError):
    """The connection is gone (or was cancelled mid-protocol) and must be discarded."""


@attrs.frozen
class Result:
    rows: list[tuple[Any, ...]]
    columns: tuple[str, ...]
    command: str  # e.g. "INSERT 0 1", "UPDATE 0"
    types: tuple[int, ...] = ()  # type OID of each column

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    @property
    def rowcount(self) -> int:
        tail = self.command.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else len(self.rows)


def _error_of(res: pq.abc.PGresult) -> PgError:
    msg = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or res.error_message or b"")
    state = res.error_field(pq.DiagnosticField.SQLSTATE)
    return PgError(msg.decode(errors="replace").strip() or "unknown server error",
                   state.decode() if state else None)


def _connect_error(raw: bytes) -> str:
    """The telling line of libpq's message: its last line that is not an indented hint
    ("\tIs the server running...")."""
    lines = [ln for ln in raw.decode(errors="replace").splitlines() if ln.strip()]
    telling = [ln for ln in lines if not ln[0].isspace()]
    return (telling or lines or ["connection failed"])[-1].strip()


class PgConnection:
    def __init__(self, pgconn: pq.abc.PGconn) -> None:
        self.pgconn = pgconn
        self.broken = False
        self._closed = False
        self._tx = Transformer()
        # Prepared statements by (SQL, parameter type OIDs): psycopg picks an int's type by its
        # value (int2 for 1, int4 for 40000), and a statement prepared for int2 rejects the
        # binary of an int4. Each combination of types gets its own statement.
        self._prepared: dict[tuple[str, tuple[int, ...]], bytes] = {}

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def connect(cls, dsn: str, **params: Any) -> PgConnection:
        conninfo = make_conninfo(dsn, **params)
        pgconn = pq.PGconn.connect_start(conninfo.encode())
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                while True:
                    status = pgconn.connect_poll()
                    if status == pq.PollingStatus.OK:
                        break
                    if status == pq.PollingStatus.READING:
                        await trio.lowlevel.wait_readable(pgconn.socket)
                    elif status == pq.PollingStatus.WRITING:
                        await trio.lowlevel.wait_writable(pgconn.socket)
                    else:
                        raise ConnectionLost(_connect_error(pgconn.error_message))
        except trio.TooSlowError:
            pgconn.finish()
            raise ConnectionLost("timed out connecting to PostgreSQL") from None
        except BaseException:
            pgconn.finish()
            raise
        pgconn.nonblocking = 1
        return cls(pgconn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                trio.lowlevel.notify_closing(self.pgconn.socket)
            except Exception:  # no valid socket: nothing can be waiting on it
                pass
            self.pgconn.finish()
        self.broken = True

    def closed_while_idle(self) -> bool:
        """True if the server (or the network) ended this connection while it sat idle.

        An idle connection has nothing to read (pgcall never LISTENs), so a readable socket
        means the server sent its last words (a FATAL "terminating connection" on a restart or
        ``pg_terminate_backend``) and closed, or the peer reset it. libpq only notices on the
        next statement, which would then fail although the database is back. Never blocks.
        """
        if self.broken:
            return True
        try:
            fd = self.pgconn.socket
        except Exception:  # libpq already dropped the socket
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))

    async def wait_closed(self) -> None:
        """Return once the server closes this idle connection (or the link fails)."""
        try:
            while self.pgconn.status == pq.ConnStatus.OK:
                await self._await_input()
        except Exception:  # any failure of the socket means the same: it is gone
            pass
        self.broken = True

    @property
    def server_version(self) -> int:
        return self.pgconn.server_version

    # -- the wire --------------------------------------------------------------------------

    async def flush(self) -> None:
        while self.pgconn.flush() == 1:
            await trio.lowlevel.wait_writable(self.pgconn.socket)

    async def _await_input(self) -> None:
        """Wait until the server has sent more, then take it into libpq's buffer. Results are
        awaited before they are read: a read right after a statement was sent finds nothing
        (``EAGAIN``: a system call for nothing, once per frame batch). What libpq read while
        flushing is already parsed by ``is_busy``, which never reads the socket."""
        await trio.lowlevel.wait_readable(self.pgconn.socket)
        self.pgconn.consume_input()

    async def _results(self) -> list[pq.abc.PGresult]:
        """All results of the statement just sent, up to the final NULL (or COPY start)."""
        pg = self.pgconn
        out: list[pq.abc.PGresult] = []
        try:
            await self.flush()
            while True:
                # Read only once the socket is readable (see ``_await_input``).
                while not pg.is_busy():
                    res = pg.get_result()
                    if res is None:
                        return out
                    out.append(res)
                    if res.status in (pq.ExecStatus.COPY_BOTH, pq.ExecStatus.COPY_OUT):
                        return out
                await self._await_input()
        except BaseException as exc:
            self.broken = True  # failed or cancelled mid-protocol: never reuse
            if isinstance(exc, Exception):
                raise ConnectionLost(str(exc) or "connection lost") from exc
            raise

    def _check(self, results: list[pq.abc.PGresult]) -> pq.abc.PGresult:
        if not results:
            raise ConnectionLost(self.pgconn.error_message.decode(errors="replace").strip()
                                 or "connection lost")
        for res in results:
            if res.status not in _OK:
                if self.pgconn.status == pq.ConnStatus.BAD:
                    self.broken = True
                    raise ConnectionLost(_error_of(res).args[0])
                raise _error_of(res)
        return results[-1]

    def _load(self, res: pq.abc.PGresult) -> Result:
        cols = tuple((res.fname(i) or b"").decode() for i in range(res.nfields))
        rows: list[tuple[Any, ...]] = []
        if res.ntuples:
            self._tx.set_pgresult(res)
            rows = self._tx.load_rows(0, res.ntuples, tuple)
        types = tuple(res.ftype(i) for i in range(res.nfields))
        return Result(rows, cols, (res.command_status or b"").decode(), types)

    async def simple(self, sql: str) -> list[Result]:
        """Run one or more statements with the simple protocol (no parameters)."""
        if self.broken:
            raise ConnectionLost("connection is broken")
        self.pgconn.send_query(sql.encode())
        results = await self._results()
        self._check(results)
        return [self._load(r) for r in results]

    async def execute(self, sql: str, params: Sequence[Any] = (), *,
                      prepare: bool = False) -> Result:
        """One statement with ``$1``-style parameters, adapted by psycopg (binary where it can).

        ``prepare=True`` prepares the statement once per connection (and per combination of
        parameter types): the hot path (frame inserts) then skips parsing and planning.
        """
        if self.broken:
            raise ConnectionLost("connection is broken")
        pg = self.pgconn
        values, types, formats = self._dump(params)
        if prepare:
            name = await self._prepare(sql, types)
            pg.send_query_prepared(name, values, param_formats=formats)
        else:
            pg.send_query_params(sql.encode(), values, param_types=types,
                                 param_formats=formats)
        return self._load(self._check(await self._results()))

    def _dump(self, params: Sequence[Any]) -> tuple[Any, tuple[int, ...], tuple[Any, ...]]:
        if not params:
            return [], (), ()
        tx = self._tx
        values = tx.dump_sequence(params, [PyFormat.AUTO] * len(params))
        return values, tuple(tx.types or ()), tuple(tx.formats or ())

    async def _prepare(self, sql: str, types: Sequence[int]) -> bytes:
        """The name of ``sql`` prepared for ``types`` on this connection (prepared now if new)."""
        key = (sql, tuple(types))
        name = self._prepared.get(key)
        if name is None:
            name = f"p{len(self._prepared)}".encode()
            self.pgconn.send_prepare(name, sql.encode(), param_types=types)
            self._check(await self._results())
            self._prepared[key] = name
        return name

    async def execute_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Prepared statements in one round trip and one transaction (libpq pipeline mode):
        each statement, then a single Sync, then a single wait for all their results. The
        statements before a Sync run as one implicit transaction (PostgreSQL docs, "Message
        Flow", Pipelining): one commit for the batch; on an error none of them took, and the
        first error is raised."""
        if self.broken:
            raise ConnectionLost("connection is broken")
        pg = self.pgconn
        sends = []
        prepared = self._prepared
        for sql, params in statements:  # prepared first: a prepare is a round trip of its own
            values, types, formats = self._dump(params)
            name = prepared.get((sql, types))  # known (every frame but the first): no await
            if name is None:
                name = await self._prepare(sql, types)
            sends.append((name, values, formats))
        pg.enter_pipeline_mode()
        try:
            for name, values, formats in sends:
                pg.send_query_prepared(name, values, param_formats=formats)
            pg.pipeline_sync()
            error = await self._pipeline_results()
        finally:
            if not self.broken:
                pg.exit_pipeline_mode()
        if error is not None:
            raise error

    async def _pipeline_results(self) -> PgError | None:
        """Read a pipeline's results up to its sync point; the first error, if any."""
        pg = self.pgconn
        error: PgError | None = None
        try:
            await self.flush()
            while True:
                while not pg.is_busy():
                    res = pg.get_result()
                    if res is None:
                        continue  # the end of one statement's results
                    if res.status == pq.ExecStatus.PIPELINE_SYNC:
                        return error
                    if res.status not in _OK and res.status != pq.ExecStatus.PIPELINE_ABORTED:
                        if pg.status == pq.ConnStatus.BAD:
                            raise ConnectionLost(_error_of(res).args[0])
                        error = error or _error_of(res)
                await self._await_input()
        except BaseException as exc:
            self.broken = True  # failed or cancelled mid-pipeline: never reuse
            if isinstance(exc, Exception) and not isinstance(exc, ConnectionLost):
                raise ConnectionLost(str(exc) or "connection lost") from exc
            raise

    # -- COPY both (replication) -------------------------------------------------------------

    async def get_copy_data(self) -> bytes | memoryview | None:
        """The next CopyData message, or None when the server ended the copy."""
        pg = self.pgconn
        while True:
            try:
                nbytes, data = pg.get_copy_data(1)
            except Exception as exc:
                self.broken = True
                raise ConnectionLost(str(exc) or "replication stream broken") from exc
            if nbytes > 0:
                return data
            if nbytes == -1:
                self._check(await self._results())
                return None
            if nbytes == -2:
                self.broken = True
                raise ConnectionLost(pg.error_message.decode(errors="replace").strip()
                                     or "replication stream broken")
            try:
                await self._await_input()
            except trio.ClosedResourceError:  # closed by another task (a watchdog)
                self.broken = True
                raise ConnectionLost("the connection was closed") from None
            except Exception as exc:
                self.broken = True
                raise ConnectionLost(str(exc) or "replication stream broken") from exc

    async def put_copy_data(self, data: bytes) -> None:
        try:
            while self.pgconn.put_copy_data(data) == 0:
                await trio.lowlevel.wait_writable(self.pgconn.socket)
            await self.flush()
        except trio.Cancelled:
            self.broken = True
            raise
        except Exception as exc:
            self.broken = True
            raise ConnectionLost(str(exc) or "replication stream broken") from exc


@contextlib.asynccontextmanager
async def transaction(conn: PgConnection) -> AsyncIterator[PgConnection]:
    """BEGIN ... COMMIT around the block; ROLLBACK when it raises (unless the connection is
    gone, when there is nothing to roll back and the server already has)."""
    await conn.simple("BEGIN")
    try:
        yield conn
    except BaseException:
        if not conn.broken:
            with contextlib.suppress(PgError):
                await conn.simple("ROLLBACK")
        raise
    await conn.simple("COMMIT")


@contextlib.asynccontextmanager
async def open_connection(dsn: str, **params: Any) -> AsyncIterator[PgConnection]:
    """A connection for the duration of the ``async with`` block."""
    conn = await PgConnection.connect(dsn, **params)
    try:
        yield conn
    finally:
        conn.close()
