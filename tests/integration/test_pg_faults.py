"""A running pgcall rides out PostgreSQL faults: a fast restart, an immediate (crash) restart,
a terminated walsender, connections reset or silently stalled by the network; and a killed
pgcall leaves no replication slot behind.

Each test has a PostgreSQL of its own (restarting it disturbs nobody), listening on a fixed
loopback TCP port so that pgcall's DSN stays valid across restarts (the Unix socket directory
of the embedded server changes with every start). pgcall runs in the test's nursery; a few
WebSocket clients stay connected through the whole fault.

What every fault test checks, in order:

* before: chat from all clients at once (so pgcall's pool holds several connections, as a
  busy pgcall's does) is acknowledged and broadcast;
* during the outage: ``/healthz`` answers 503 with a JSON reason naming the part that is down;
  a ``send_message`` is answered (an error while the database is unreachable) within a few
  seconds, not left unanswered; the WebSockets stay open. Where the database is unreachable,
  the outage lasts until pgcall's stream retries have backed off to their longest wait;
* after the repair, within ``RECOVERY_LIMIT_S`` (the acceptance bound), measured from the
  moment the repair is done: every client got a fresh snapshot from the restarted stream; at
  once, as a retrying client would, a new call is placed and accepted and chat is broadcast;
  ``/healthz`` is 200;
* no chat message acknowledged before the outage is lost (``chat_messages``, by SQL), and
  pgcall itself never stopped.

Waits are on what pgcall or PostgreSQL report, each under a deadline; ``/healthz``,
``/metrics`` and ``pg_replication_slots`` are polled where polling is the only way to ask.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from pgcall.app import Running, serve
from pgcall.config import Config
from pgcall.pg.conn import PgConnection
from pgcall.pg.migrate import migrate
from pgcall.pg.pool import LEASE_TIMEOUT_S
from pgcall.relay.session import ERR_DATABASE
from tests.conftest import ServerThread

from .tcpproxy import TcpProxy
from .wsclient import Client, event, media, open_clients, video_header

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RECOVERY_LIMIT_S = 5.0  # the acceptance bound: everything works again within 5 s of the repair
OUTAGE_SEEN_S = 10.0  # how long pgcall may take to notice the fault in /healthz
REPLY_LIMIT_S = 5.0  # a control message during the outage is answered within this
# A silent network gives no error: pgcall can only notice by a timeout of its own. From the
# stall to everything working again on new connections.
STALL_RECOVERY_S = 10.0
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0
POLL_S = 0.05
CLIENTS = 6  # all send chat at once before the fault: pgcall's pool holds several connections
CHATS_BEFORE = 2  # per client, acknowledged before the fault
RECONNECTS = "pgcall_replication_reconnects_total"
BACKOFF_CAP_AFTER = 6  # stream retries after which pgcall waits its longest (2 s) between them


# -- the test's own PostgreSQL --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL data directory that a test stops, crashes and starts again."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.settings = {"listen_addresses": "127.0.0.1", "port": str(port)}
        self.thread: ServerThread | None = None
        self.pid = 0  # the postmaster of the current run

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=pgcall"

    def start(self) -> None:
        assert self.thread is None
        thread = ServerThread(self.data_dir, self.settings)
        self.pid = thread.start().pid
        self.thread = thread

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of a running server; after a crash, only the clean-up."""
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    async def astart(self) -> None:
        await trio.to_thread.run_sync(self.start)

    async def astop(self) -> None:
        await trio.to_thread.run_sync(self.stop)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A migrated PostgreSQL of this test alone, on ``127.0.0.1:<free port>``."""
    data_dir = Path(tempfile.mkdtemp(prefix="pgf-", dir="/tmp"))
    c = Cluster(data_dir, free_port())
    try:
        c.start()

        async def do_migrate() -> None:
            conn = await PgConnection.connect(c.dsn)
            try:
                await migrate(conn)
            finally:
                conn.close()

        trio.run(do_migrate)
        yield c
    finally:
        c.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def sql(dsn: str, statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    conn = await PgConnection.connect(dsn)
    try:
        return (await conn.execute(statement, params or [])).rows
    finally:
        conn.close()


# -- pgcall in the test's nursery ----------------------------------------------------------------


@attrs.define
class App:
    running: Running
    stopped: trio.Event

    @property
    def ws(self) -> str:
        return "ws://" + self.running.url.removeprefix("http://")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.running.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        return host, int(port)


@contextlib.asynccontextmanager
async def run_pgcall(nursery: trio.Nursery, dsn: str) -> AsyncIterator[App]:
    """pgcall serving ``dsn`` in ``nursery``; shut down (clients closed) on the way out."""
    shutdown, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(Config(dsn=dsn, host="127.0.0.1", port=0), shutdown,
                        task_status=task_status)
        finally:
            stopped.set()

    with trio.fail_after(START_DEADLINE_S):
        running: Running = await nursery.start(run)
    try:
        yield App(running, stopped)
    finally:
        shutdown.set()
        with trio.fail_after(STOP_DEADLINE_S):
            await stopped.wait()


async def get_health(app: App) -> tuple[int, dict[str, Any]]:
    """``GET /healthz``: (status, JSON body). A plain HTTP/1.1 request, from this loop."""
    host, port = app.address
    with trio.fail_after(REPLY_LIMIT_S):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n"
                                  "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    detail = json.loads(body)
    assert isinstance(detail, dict), body
    return status, detail


async def poll_health(app: App, accept: Callable[[int, dict[str, Any]], bool],
                      deadline_s: float) -> tuple[int, dict[str, Any]]:
    """Ask ``/healthz`` until its answer is accepted (pgcall pushes its health to no one)."""
    seen: list[tuple[int, dict[str, Any]]] = []
    with trio.move_on_after(deadline_s):
        while True:
            answer = await get_health(app)
            if accept(*answer):
                return answer
            seen.append(answer)
            await trio.sleep(POLL_S)
    raise AssertionError(f"/healthz never gave the awaited answer; last ones: {seen[-3:]}")


# -- the common course of a fault ----------------------------------------------------------------


def ack(req_type: str) -> dict[str, str]:
    return {"type": "ack", "req_type": req_type}


async def chat(sender: Client, text: str, *receivers: Client) -> None:
    """``send_message``, acknowledged, and its insert event seen by every receiver."""
    assert await sender.request({"type": "send_message", "text": text}) == ack("send_message")
    for c in receivers:
        await c.expect(event("insert", "chat_messages", text=text))


async def chat_burst(clients: tuple[Client, ...], n: int) -> list[str]:
    """``n`` messages from each client, the clients sending at once (so pgcall's pool holds
    several connections when the fault strikes); all acknowledged and broadcast."""
    texts = {c: [f"before-{i}-{uuid.uuid4().hex[:8]}" for i in range(n)] for c in clients}
    every = [text for mine in texts.values() for text in mine]
    async with trio.open_nursery() as senders:
        for c in clients:
            for text in texts[c]:
                senders.start_soon(c.send_control, {"type": "send_message", "text": text})
    for c in clients:  # each client reads only here, in this one task
        for _ in texts[c]:
            assert await c.reply("send_message") == ack("send_message")
        for text in every:
            await c.expect(event("insert", "chat_messages", text=text))
    return every


def still_open(*clients: Client) -> None:
    for c in clients:
        assert c.ws.closed is None, f"WebSocket closed: {c.ws.closed}"
        assert c.close_code is None


@attrs.frozen
class Recovery:
    snapshot_s: float  # repair -> every client has its fresh snapshot
    working_s: float  # repair -> and a new call, chat broadcast, /healthz 200: all done


async def metric(app: App, name: str) -> float:
    """One sample of ``/metrics`` (Prometheus text format)."""
    host, port = app.address
    with trio.fail_after(REPLY_LIMIT_S):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(f"GET /metrics HTTP/1.1\r\nHost: {host}:{port}\r\n"
                                  "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    for line in data.partition(b"\r\n\r\n")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def wait_backoff_capped(app: App) -> None:
    """Until pgcall's stream retries have backed off to their longest wait (0.1 s doubling,
    capped at 2 s: the cap is reached after 6 failures). A repair then finds pgcall at the
    slowest point of its retry schedule, the case the recovery bound has to cover."""
    first = await metric(app, RECONNECTS)
    with trio.fail_after(OUTAGE_SEEN_S):
        while True:
            if await metric(app, RECONNECTS) >= first + BACKOFF_CAP_AFTER:
                return
            await trio.sleep(POLL_S)


async def new_call(caller: Client, callee: Client) -> str:
    """A call placed and accepted, both see it Active; its session id. (Steps of
    ``wsclient.setup_call``, asserted here so that a failure shows the reply pgcall gave.)"""
    reply = await caller.request({"type": "request_call", "target": callee.identity,
                                  "call_type": "Video"})
    assert reply == ack("request_call")
    ringing = await callee.expect(event("insert", "call_sessions", caller=caller.identity))
    session_id = ringing.obj["row"]["session_id"]
    reply = await callee.request({"type": "accept_call", "session_id": session_id})
    assert reply == ack("accept_call")
    for c in (caller, callee):
        await c.expect(event("update", "call_sessions", session_id=session_id, state="Active"))
    return str(session_id)


async def working_again(app: App, clients: list[Client], acked: list[str],
                        unsure: str | None, since: float) -> Recovery:
    """Recovery as clients see it, timed from ``since``: the restarted stream's snapshot
    (every table again, holding every ``acked`` message: the first snapshot, taken at connect,
    held none of them), then at once, as a client retrying would, a new call between the
    first two clients and chat to all; ``/healthz`` 200. ``unsure``: a message whose send was
    acknowledged while the stream was down: in the fresh snapshot or the next event."""
    for c in clients:
        await c.read_snapshots()
        texts = [r["text"] for r in c.snapshots["chat_messages"]]
        assert set(acked) - {unsure} <= set(texts), (acked, texts)
        if unsure is not None and unsure not in texts:
            await c.expect(event("insert", "chat_messages", text=unsure))
    snapshot_s = trio.current_time() - since
    await new_call(*clients[:2])
    await chat(clients[1], f"after-{uuid.uuid4().hex[:8]}", *clients)
    _, detail = await poll_health(app, lambda status, _: status == 200, RECOVERY_LIMIT_S)
    assert detail == {"status": "ok", "database": "up", "replication": "streaming"}
    working_s = trio.current_time() - since
    still_open(*clients)
    assert not app.stopped.is_set(), "pgcall stopped"
    print(f"\nrecovered: fresh snapshots after {snapshot_s * 1000:.0f} ms; call, chat and "
          f"/healthz 200 after {working_s * 1000:.0f} ms")
    return Recovery(snapshot_s, working_s)


async def nothing_lost(dsn: str, acked: list[str]) -> None:
    stored = {r[0] for r in await sql(dsn, "SELECT text FROM chat_messages")}
    assert set(acked) <= stored, f"acknowledged chat lost: {set(acked) - stored}"


async def ride_out(app: App, dsn: str, begin: Callable[[], Awaitable[None]],
                   end: Callable[[], Awaitable[None]], *, database_down: bool) -> Recovery:
    """Clients through one fault (``begin`` .. ``end``); checks what the module docstring
    lists. ``database_down``: SQL fails during the outage (else only the stream is down).
    ``dsn`` reaches the database directly, for the test's own checks."""
    async with open_clients(app.ws, CLIENTS) as clients:
        a = clients[0]
        acked = await chat_burst(tuple(clients), CHATS_BEFORE)
        assert (await get_health(app))[0] == 200

        await begin()

        # During the outage.
        down = {"database": database_down, "replication": True}

        def outage(status: int, detail: dict[str, Any]) -> bool:
            return status == 503 and all(
                str(detail.get(part, "")).startswith("down") == is_down
                for part, is_down in down.items())

        _, detail = await poll_health(app, outage, OUTAGE_SEEN_S)
        assert detail["status"] == "unavailable"
        assert detail["replication"].removeprefix("down: ").strip()  # a reason is given
        if database_down:
            assert detail["database"].removeprefix("down: ").strip()
        else:
            assert detail["database"] == "up"

        during = f"during-{uuid.uuid4().hex[:8]}"
        with trio.fail_after(REPLY_LIMIT_S):
            reply = await a.request({"type": "send_message", "text": during})
        if database_down:
            assert reply == {"type": "error", "req_type": "send_message",
                             "message": ERR_DATABASE}
            await wait_backoff_capped(app)
        else:  # only the stream is down: the row is written, and must reach everyone later
            assert reply == ack("send_message")
            acked.append(during)
        still_open(*clients)
        assert not app.stopped.is_set()

        await end()
        recovery = await working_again(app, clients, acked,
                                       None if database_down else during,
                                       since=trio.current_time())
    await nothing_lost(dsn, acked)
    assert recovery.working_s < RECOVERY_LIMIT_S
    return recovery


# -- the faults --------------------------------------------------------------------------------


async def test_fast_restart(cluster: Cluster, nursery: trio.Nursery) -> None:
    """``pg_ctl stop -m fast`` (SIGINT): every connection terminated, then a clean start."""
    async with run_pgcall(nursery, cluster.dsn) as app:
        old_pid = cluster.pid
        await ride_out(app, cluster.dsn, cluster.astop, cluster.astart, database_down=True)
        assert cluster.pid != old_pid


async def test_immediate_restart(cluster: Cluster, nursery: trio.Nursery) -> None:
    """SIGQUIT to the postmaster (``pg_ctl stop -m immediate``, as after a crash): no shutdown
    checkpoint, so the next start runs crash recovery; committed chat must survive it."""

    async def crash() -> None:
        os.kill(cluster.pid, signal.SIGQUIT)
        await cluster.astop()  # waits for the postmaster to exit; it is not asked to stop

    async with run_pgcall(nursery, cluster.dsn) as app:
        await ride_out(app, cluster.dsn, crash, cluster.astart, database_down=True)


async def walsender_pids(dsn: str) -> list[int]:
    rows = await sql(dsn, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'")
    return [r[0] for r in rows]


async def test_walsender_terminated(cluster: Cluster, nursery: trio.Nursery) -> None:
    """``pg_terminate_backend`` of pgcall's walsender, the database itself staying up.

    A transaction holding an xid is kept open across the kill: a new logical slot cannot build
    its initial snapshot before every transaction that held an xid when it was created has
    ended, so ``CREATE_REPLICATION_SLOT`` waits, and pgcall's new stream with it, until the
    test commits. That stretches the outage from ~0.1 s to as long as the test needs to look
    at it (it is also what any long write transaction does to a reconnecting pgcall).
    """
    holder = await PgConnection.connect(cluster.dsn)
    try:
        async def kill_walsender() -> None:
            (pid,) = await walsender_pids(cluster.dsn)
            await holder.simple("BEGIN")
            await holder.execute("SELECT pg_current_xact_id()")
            assert await sql(cluster.dsn, "SELECT pg_terminate_backend($1)", [pid]) \
                == [(True,)]

        async def release() -> None:
            await holder.simple("COMMIT")

        async with run_pgcall(nursery, cluster.dsn) as app:
            (before,) = await walsender_pids(cluster.dsn)
            await ride_out(app, cluster.dsn, kill_walsender, release, database_down=False)
            (after,) = await walsender_pids(cluster.dsn)
            assert after != before
    finally:
        holder.close()


async def test_connections_cut_by_the_network(cluster: Cluster, nursery: trio.Nursery) -> None:
    """A proxy between pgcall and PostgreSQL resets every connection and refuses new ones for
    the outage, then lets them through: PostgreSQL never noticed anything but lost clients."""
    proxy = TcpProxy(cluster.port)
    await nursery.start(proxy.run)
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=postgres user=pgcall"
    async with run_pgcall(nursery, dsn) as app:
        linked = proxy.accepted

        async def cut() -> None:
            proxy.pause()
            # At least the keeper's and the stream's connections are open through the proxy.
            assert proxy.cut() >= 2

        async def heal() -> None:
            proxy.resume()

        await ride_out(app, cluster.dsn, cut, heal, database_down=True)
        assert proxy.refused > 0  # pgcall tried to reconnect during the outage
        assert proxy.accepted > linked  # and did, through the proxy, afterwards


async def test_connections_stalled_by_the_network(cluster: Cluster,
                                                  nursery: trio.Nursery) -> None:
    """Every connection between pgcall and PostgreSQL goes silent, neither closed nor reset
    (the database host lost power, a partition), while new connections get through at once (a
    standby took over the address). No error ever arrives: pgcall has to notice the silence.

    No 503 is awaited here: with new connections working, the outage lasts only as long as
    pgcall takes to notice and reconnect. What is checked is the clients' view: a control
    message sent during the stall is answered (acknowledged on a fresh connection, or the
    database error), and within ``STALL_RECOVERY_S`` of the stall the stream has restarted,
    a new call and chat work, and ``/healthz`` is 200.
    """
    proxy = TcpProxy(cluster.port)
    await nursery.start(proxy.run)
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=postgres user=pgcall"
    async with run_pgcall(nursery, dsn) as app, open_clients(app.ws, CLIENTS) as clients:
        acked = await chat_burst(tuple(clients), CHATS_BEFORE)
        assert proxy.stall() >= 2  # the keeper's and the stream's at least
        stalled = trio.current_time()

        during = f"during-{uuid.uuid4().hex[:8]}"
        reply = None
        with trio.move_on_after(STALL_RECOVERY_S):
            reply = await clients[0].request({"type": "send_message", "text": during})
        assert trio.current_time() - stalled < STALL_RECOVERY_S, \
            "a send_message during the stall was never answered"
        errored = {"type": "error", "req_type": "send_message", "message": ERR_DATABASE}
        assert reply in (ack("send_message"), errored)
        unsure = during if reply == ack("send_message") else None
        if unsure is not None:
            acked.append(unsure)
        with trio.fail_after(2 * STALL_RECOVERY_S):
            recovery = await working_again(app, clients, acked, unsure, since=stalled)
    await nothing_lost(cluster.dsn, acked)
    assert recovery.working_s < STALL_RECOVERY_S


async def test_frames_on_a_stalled_database(cluster: Cluster, nursery: trio.Nursery) -> None:
    """The frame writer's own connections go silent with the rest. A frame sent then is
    answered with the database error once the writer's watchdog gives up on the batch (the
    pool's lease timeout), not never; and frames flow again on new connections."""
    proxy = TcpProxy(cluster.port)
    await nursery.start(proxy.run)
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=postgres user=pgcall"
    async with run_pgcall(nursery, dsn) as app, open_clients(app.ws, 2) as (a, b):
        session_id = await new_call(a, b)

        async def send(seq: int) -> None:
            await a.send_media("video", video_header(session_id, b.identity, seq),
                               b"\xff\xd8" + bytes(100))

        await send(1)
        await b.expect(media("video", seq=1))
        assert proxy.stall() >= 3  # the writer's, the keeper's and the stream's at least
        stalled = trio.current_time()
        await send(2)
        reply = await a.reply("send_video_frame", LEASE_TIMEOUT_S + STALL_RECOVERY_S)
        assert reply["message"] == ERR_DATABASE, reply
        assert trio.current_time() - stalled >= LEASE_TIMEOUT_S * 0.9  # the watchdog's doing
        seq = 3
        with trio.fail_after(2 * STALL_RECOVERY_S):
            while True:  # a frame gets through once the writer has a new connection
                await send(seq)
                with trio.move_on_after(1.0):
                    await b.expect(media("video", seq=seq), timeout_s=math.inf)
                    break
                seq += 1


# -- a killed pgcall -------------------------------------------------------------------------


async def test_killed_pgcall_leaves_no_slot(cluster: Cluster) -> None:
    """``kill -9`` of a pgcall process: its temporary slot goes with its connection."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "pgcall", "--dsn", cluster.dsn, "--port", "0"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        output = b""
        with trio.fail_after(START_DEADLINE_S):
            while b"pgcall ready on" not in output:
                chunk = await proc.stderr.receive_some()
                assert chunk, f"pgcall exited before it was ready: {output.decode()}"
                output += chunk
        slots = await sql(cluster.dsn, "SELECT slot_name, temporary, active, active_pid "
                          "FROM pg_replication_slots")
        assert len(slots) == 1, slots
        name, temporary, active, walsender = slots[0]
        assert name.startswith(f"pgcall_{proc.pid}_")
        assert temporary and active

        proc.send_signal(signal.SIGKILL)
        with trio.fail_after(STOP_DEADLINE_S):
            assert await proc.wait() == -signal.SIGKILL

        # PostgreSQL tells no one when it drops a slot: ask until it has, under a deadline.
        with trio.move_on_after(STOP_DEADLINE_S):
            while True:
                if not await sql(cluster.dsn, "SELECT slot_name FROM pg_replication_slots"):
                    break
                await trio.sleep(POLL_S)
        assert await sql(cluster.dsn, "SELECT slot_name FROM pg_replication_slots") == []
        assert walsender not in await walsender_pids(cluster.dsn)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stderr is not None:
            await proc.stderr.aclose()
