"""Clean shutdown (clients closed with 1001, exit 0, slot gone) and the WebSocket heartbeat."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
import wsproto
from wsproto.events import AcceptConnection, Ping, Request

from pgcall.app import serve
from pgcall.config import Config, WsLimits
from pgcall.pg.conn import open_connection
from tests.integration.conftest import wait_slots_released
from tests.integration.test_startup import free_port, http_get
from tests.integration.wsclient import open_client

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_sigterm_closes_clients_with_1001_and_exits_0_without_a_slot(
        db_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "pgcall.log").open("wb")
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "pgcall", "--dsn", db_dsn, "--port", str(port)], cwd=REPO,
        stdout=log, stderr=subprocess.STDOUT)
    try:
        with trio.fail_after(30):
            while True:
                try:
                    if (await trio.to_thread.run_sync(http_get, port, "/healthz"))[0] == 200:
                        break
                except OSError:
                    pass
                await trio.sleep(0.1)  # readiness poll of another process, under a deadline
        async with open_client(f"ws://127.0.0.1:{port}/") as client:
            stopped_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert await client.expect_closed(timeout_s=5) == (1001, "Server shutting down")
        with trio.fail_after(10):
            code = await proc.wait()
        assert code == 0
        assert time.monotonic() - stopped_at < 5.0  # the limit
        await wait_slots_released(db_dsn)  # the walsender exits a moment after pgcall
        async with open_connection(db_dsn) as conn:
            slots = await conn.execute("SELECT count(*) FROM pg_replication_slots "
                                       "WHERE database = current_database()")
        assert slots.rows == [(0,)]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def test_the_server_pings_websocket_clients(
        db_dsn: str, nursery: trio.Nursery) -> None:
    shutdown = trio.Event()
    config = Config(dsn=db_dsn, port=0, ws=WsLimits(ping_interval_s=0.5))  # 10 s by default
    running = await nursery.start(serve, config, shutdown)
    port = int(running.url.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=f"127.0.0.1:{port}", target="/")))
    seen: list[type] = []
    try:
        with trio.fail_after(10):
            while Ping not in seen:
                data = await stream.receive_some()
                assert data, "the server closed the connection"
                ws.receive_data(data)
                seen += [type(event) for event in ws.events()]
        assert seen[0] is AcceptConnection
    finally:
        await stream.aclose()
        shutdown.set()
