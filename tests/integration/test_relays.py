"""Several pgcalls (relays) on one database, against a real PostgreSQL: a call across relays, a
connection replaced from another relay, a relay killed with ``kill -9`` cleaned up by the
others within 5 s, and a relay that lost its database coming back and re-claiming its users."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import trio

from pgcall.app import Running, serve
from pgcall.config import Config
from pgcall.pg.pool import Pool

from . import test_pg_faults
from .conftest import wait_slots_released
from .tcpproxy import TcpProxy
from .test_observability import sample, scrape_metrics
from .test_pg_faults import Cluster, run_pgcall, sql
from .test_security import START_DEADLINE_S, STOP_DEADLINE_S, ws_base
from .test_startup import free_port, http_get
from .wsclient import event, media, open_client, open_clients, setup_call, video_header


def room_video(room_id: str, seq: int) -> dict[str, object]:
    return {"room_id": room_id, "seq": seq, "width": 640, "height": 360, "layer": "full"}

REPO = Path(__file__).resolve().parents[2]
cluster = test_pg_faults.cluster  # the fixture: a PostgreSQL of the test's own on a TCP port
CLEANED_WITHIN_S = 5.0  # the acceptance limit
JPEG = b"\xff\xd8" + b"\x42" * 500
JOIN_FRAMES_MAX = 20  # frames sent after a join before the joiner's relay must have one
JOIN_FRAME_WAIT_S = 1.0  # for each of them; a frame relayed takes milliseconds


@contextlib.asynccontextmanager
async def relays(db_dsn: str, n: int) -> AsyncIterator[list[str]]:
    """``n`` pgcalls on one database; their WebSocket URLs. (A single pgcall's helper waits for
    every slot of the database to go when it stops: here the others still stream.)"""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = []
        for _ in range(n):
            with trio.fail_after(START_DEADLINE_S):
                running: Running = await nursery.start(
                    partial(serve, Config(dsn=db_dsn, port=0), shutdown))
            urls.append(ws_base(running))
        try:
            yield urls
        finally:
            shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + STOP_DEADLINE_S
    with trio.fail_after(STOP_DEADLINE_S):
        await wait_slots_released(db_dsn)


async def presence_of(db: Pool, identity: str) -> int | None:
    rows = (await db.execute("SELECT instance_id FROM pgcall_presence WHERE identity = $1",
                             [identity])).rows
    return int(rows[0][0]) if rows else None


async def test_a_call_across_two_relays(db_dsn: str) -> None:
    async with relays(db_dsn, 2) as (one, two), open_client(one) as a, \
            open_client(two) as b:
        await a.expect(event("insert", "users", identity=b.identity))
        session_id = await setup_call(a, b, "Video")
        for seq in range(5):
            await a.send_media("video", video_header(session_id, b.identity, seq), JPEG)
        for seq in range(5):
            assert (await b.expect(media("video", seq=seq))).payload == JPEG


async def test_each_relay_receives_only_the_frames_of_its_own_clients(db_dsn: str) -> None:
    """Row filters on each relay's publication: a relay's walsender sends it the frames of
    its own clients, not every frame written."""
    async with relays(db_dsn, 2) as (one, two), open_clients(one, 4) as (a, b, e, g), \
            open_clients(two, 3) as (c, d, f):
        for x in (a, b, e, g):  # everyone knows everyone (the calls check who is online)
            for y in (c, d, f):
                await x.expect(event("insert", "users", identity=y.identity))
        on_one = await setup_call(a, b, "Video")
        on_two = await setup_call(c, d, "Video")
        for seq in range(20):
            await a.send_media("video", video_header(on_one, b.identity, seq), JPEG)
            await c.send_media("video", video_header(on_two, d.identity, seq), JPEG)
        await b.expect(media("video", seq=19))
        await d.expect(media("video", seq=19))
        for url in (one, two):  # each decoded its own call's 20 frames, not the other's
            _, m = await scrape_metrics(url)
            assert sample(m, "pgcall_frames_in_total", kind="video", scope="call") == 20
            assert sample(m, "pgcall_frames_dropped_total", reason="recipient_offline") == 0
        # A room on relay one only: relay two gets none of its frames...
        room_id = (await e.request({"type": "create_room", "name": "one", "call_type":
                                    "Video"}))["room_id"]
        await g.request({"type": "join_room", "room_id": room_id})
        await g.expect(lambda fr: fr.type == "room_layers")
        for seq in range(5):
            await e.send_media("video", room_video(room_id, seq), JPEG)
        await g.expect(media("video", seq=4))
        # ...until somebody it serves joins. Relay two acks the join once its own stream has
        # it; relay one, which names a frame's relays, reads the join from its stream a moment
        # later or sooner, and a frame e sends in between reaches relay one only (a member may
        # miss the frames of its first milliseconds). So e sends, one at a time, until f has one.
        await f.request({"type": "join_room", "room_id": room_id})
        await f.expect(lambda fr: fr.type == "room_layers")
        sent, first = 5, None
        while first is None:
            assert sent < 5 + JOIN_FRAMES_MAX, "relay two never got a frame of the room"
            await e.send_media("video", room_video(room_id, sent), JPEG)
            sent += 1
            with trio.move_on_after(JOIN_FRAME_WAIT_S):
                first = (await f.expect(media("video"))).obj["seq"]
        if first < sent - 1:  # a late one: the frames after it went to relay two as well
            await f.expect(media("video", seq=sent - 1))
        # Each relay counts a frame as its own stream decodes it: relay one may decode the last
        # one after relay two. g, served by relay one, has it once relay one has counted it.
        await g.expect(media("video", seq=sent - 1))
        _, m1 = await scrape_metrics(one)
        _, m2 = await scrape_metrics(two)
        assert sample(m1, "pgcall_frames_in_total", kind="video", scope="room") == sent
        # Relay two's stream is ordered: having decoded frame ``first``, it would have counted
        # every earlier one that its filter let through, and none did.
        assert sample(m2, "pgcall_frames_in_total", kind="video", scope="room") == sent - first
        assert sample(m2, "pgcall_replication_bytes_total") > 20 * len(JPEG)


async def test_a_connection_on_another_relay_replaces_the_older_one(db_dsn: str,
                                                                     db: Pool) -> None:
    async with relays(db_dsn, 2) as (one, two):
        async with open_clients(one, 1) as (watcher,):
            async with open_client(one) as first:
                async with open_client(two, token=first.token) as second:
                    assert second.identity == first.identity
                    assert await first.expect_closed() == (4001, "Replaced by new connection")
                    # The older connection's going does not take the user offline.
                    await second.request({"type": "set_nickname", "nickname": "still here"})
                    await watcher.expect(event("update", "users", identity=first.identity,
                                               nickname="still here"))
                    rows = (await db.execute("SELECT count(*) FROM users WHERE identity = $1",
                                             [first.identity])).rows
                    assert rows == [(1,)]
            # When the newer connection goes, the user does.
            await watcher.expect(event("delete", "users", identity=first.identity))


async def test_a_killed_relay_is_cleaned_up_by_the_others_within_5_s(db_dsn: str,
                                                                      db: Pool) -> None:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once; its exit is waited for below)
        [sys.executable, "-m", "pgcall", "--dsn", db_dsn, "--port", str(port),
         "--log-level", "warning"], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if http_get(port, "/healthz", 1.0)[0] == 200:
                    break
            except OSError:
                pass
            await trio.sleep(0.1)
        async with relays(db_dsn, 1) as (one,), open_client(one) as a:
            async with open_client(f"ws://127.0.0.1:{port}/") as b:
                await a.expect(event("insert", "users", identity=b.identity))
                await setup_call(a, b, "Video")
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = trio.current_time()
                with trio.fail_after(CLEANED_WITHIN_S):
                    await a.expect(event("delete", "call_sessions"))
                    await a.expect(event("delete", "users", identity=b.identity))
                print(f"cleaned up {trio.current_time() - killed_at:.2f} s after kill -9")
                assert await presence_of(db, b.identity) is None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def test_a_relay_that_lost_its_database_re_claims_its_users(
        cluster: Cluster, nursery: trio.Nursery) -> None:
    """Relay two reaches PostgreSQL through a proxy that breaks: relay one takes it for dead and
    removes its user within 5 s; when the network heals, relay two claims its lock again and
    registers its user again. Its client stayed connected all along and is served."""
    proxy = TcpProxy(cluster.port)
    await nursery.start(proxy.run)
    through_proxy = f"host=127.0.0.1 port={proxy.port} dbname=postgres user=pgcall"
    async with run_pgcall(nursery, cluster.dsn) as one, \
            run_pgcall(nursery, through_proxy) as two, \
            open_client(one.ws) as a, open_client(two.ws) as b:
        await a.expect(event("insert", "users", identity=b.identity))
        proxy.pause()
        proxy.cut()
        with trio.fail_after(CLEANED_WITHIN_S):
            await a.expect(event("delete", "users", identity=b.identity))
        proxy.resume()
        with trio.fail_after(CLEANED_WITHIN_S + 5):  # the keeper retries once a second
            await a.expect(event("insert", "users", identity=b.identity))
        rows = await sql(cluster.dsn, "SELECT count(*) FROM pgcall_presence WHERE identity = $1",
                         [b.identity])
        assert rows == [(1,)]
        # b never noticed: its connection is the same one, and it is served.
        with trio.fail_after(CLEANED_WITHIN_S + 5):
            while True:
                ack = await b.request({"type": "set_nickname", "nickname": "back"})
                if ack["type"] == "ack":  # (its pool may take a moment to reconnect)
                    break
                await trio.sleep(0.2)
        await a.expect(event("update", "users", identity=b.identity, nickname="back"))
