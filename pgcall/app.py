"""Composition: the one nursery that owns every long-lived task of a pgcall process.

Owns: start-up order (database, schema, replication, reaper, HTTP), readiness, shutdown order.
Does not own: any of the pieces it wires together.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import attrs
import trio

from .config import Config
from .db.framewriter import FrameWriter
from .db.instances import (
    claim_instance,
    clean_dead_instances,
    new_instance_id,
    run_cleaner,
    run_keeper,
)
from .db.publications import drop_relay_publication, open_relay_publication
from .db.reaper import run_reaper
from .db.recordings import RecordingStore
from .db.rooms import RoomStore
from .db.store import Store
from .pg.binaries import find_installs
from .pg.checks import check_server, check_standby
from .pg.conn import PgConnection, PgError, open_connection
from .pg.embedded import open_embedded
from .pg.migrate import migrate
from .pg.pool import Pool, open_pool
from .preflight import CannotListen
from .relay.hub import Hub
from .relay.replication import PostgresSource, ReplicationStatus, run_replication
from .relay.session import CLOSE_GOING_AWAY, SessionContext, run_session
from .web.asgi import HealthCheck, WebApp
from .web.download import Downloads
from .web.frontdoor import FrontDoor, listening_socket, tls_context
from .web.httpserver import HttpServer
from .web.metrics import Metrics
from .web.upgrade import Admission, Upgraded

log = logging.getLogger("pgcall.app")

HEALTH_QUERY_TIMEOUT_S = 2.0


@attrs.frozen
class Running:
    """What ``serve`` reports once it is ready."""

    url: str
    dsn: str


def frontend_root(frontend: str) -> Path:
    import pgcall

    package = Path(pgcall.__file__).parent
    if frontend == "vanilla":
        return package / "frontends" / "vanilla"
    if frontend == "svelte":
        return package / "frontends" / "svelte" / "build"
    return Path(frontend)


@contextlib.asynccontextmanager
async def open_database(config: Config) -> AsyncIterator[str]:
    """The DSN of a checked, migrated database: the embedded one, or the one given."""
    async with contextlib.AsyncExitStack() as stack:
        if config.embedded:
            installs = find_installs(config.path_env, config.pg_bindir)
            pg = await stack.enter_async_context(
                open_embedded(config.data_dir, installs, run_as=config.pg_user))
            dsn = pg.dsn
        else:
            assert config.dsn is not None
            dsn = config.dsn
            await check_server(dsn)
            if config.replication_dsn is not None:
                await check_standby(config.replication_dsn)
        async with open_connection(dsn) as conn:
            await migrate(conn)
        yield dsn


def make_health(pool: Pool, replication: ReplicationStatus) -> HealthCheck:
    """/healthz: 200 while the database answers and replication streams, else 503 + reason."""

    async def health() -> tuple[bool, dict[str, object]]:
        detail: dict[str, object] = {"status": "ok", "database": "up", "replication": "streaming"}
        ok = True
        try:
            with trio.fail_after(HEALTH_QUERY_TIMEOUT_S):
                await pool.execute("SELECT 1")
        except (PgError, trio.TooSlowError) as exc:
            ok, detail["database"] = False, f"down: {exc or 'timeout'}"
        if not replication.streaming:
            ok, detail["replication"] = False, f"down: {replication.last_error or 'starting'}"
        if not ok:
            detail["status"] = "unavailable"
        return ok, detail

    return health


async def serve(config: Config, shutdown: trio.Event | None = None, *,
                task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
    """Run pgcall until ``shutdown`` is set (then close clients with 1001) or cancelled."""
    root = frontend_root(config.frontend)
    # Bind first: a busy port is reported before the database is started.
    try:
        sock = listening_socket(config.host, config.port, config.reuse_port)
    except OSError as exc:
        raise CannotListen(config.host, config.port, exc) from exc
    with contextlib.closing(sock):
        await _serve(config, root, sock, shutdown if shutdown is not None else trio.Event(),
                     task_status)


async def close_clients(hub: Hub, code: int, reason: str, grace_s: float) -> None:
    """Ask every session to close, and give them ``grace_s`` to send the close frame."""
    for sub in list(hub.owners.values()):
        sub.outbox.request_close(code, reason)
    with trio.move_on_after(grace_s):
        await hub.wait_no_owners()


async def _serve(config: Config, root: Path, sock: socket.socket, shutdown: trio.Event,
                 task_status: trio.TaskStatus[Running]) -> None:
    async with open_database(config) as dsn, open_pool(dsn, config.pool_size) as pool:
        instance_id = new_instance_id()
        keeper = await PgConnection.connect(dsn)  # holds this instance's liveness lock
        try:
            await claim_instance(keeper, instance_id)
            await clean_dead_instances(keeper, instance_id)
            publications = await open_relay_publication(keeper, instance_id)
            hub, status = Hub(instance_id), ReplicationStatus()

            async def websocket(up: Upgraded) -> None:
                await run_session(ctx, up.ws, up.token)

            app = WebApp(root, health=make_health(pool, status), downloads=Downloads(pool))
            door = FrontDoor(HttpServer(app), websocket, admission=Admission(
                allowed_origins=config.allowed_origins, join_secret=config.join_secret,
                secure=config.certfile is not None), limits=config.ws)
            frames = FrameWriter(pool, config.media_path)
            metrics = Metrics(hub, status, door.stats, frames)
            app.metrics = metrics.render
            ctx = SessionContext(hub=hub, store=Store(pool, instance_id), frames=frames,
                                 rooms=RoomStore(pool, config.max_room_size),
                                 recordings=RecordingStore(pool, instance_id,
                                                           config.media_path),
                                 on_latency=metrics.frame_latency.observe)
            tls = None if config.certfile is None else tls_context(config.certfile,
                                                                    config.keyfile)
            async with trio.open_nursery() as nursery:
                store = ctx.store

                async def reclaim() -> None:
                    for identity in list(hub.owners):
                        await store.connect_user(identity)

                nursery.start_soon(partial(run_keeper, dsn, instance_id, keeper,
                                           on_reclaimed=reclaim))
                nursery.start_soon(run_cleaner, pool, instance_id)
                nursery.start_soon(frames.run)
                source = PostgresSource(config.replication_dsn or dsn, publications,
                                        primary_dsn=dsn if config.replication_dsn else None)
                await nursery.start(run_replication, source, hub, status)
                nursery.start_soon(partial(
                    run_reaper, pool, config.retain_s, deleted=metrics.reaped,
                    recording_retention_days=config.recording_retention_days))
                url = await nursery.start(door.serve, sock, tls)
                version = "PostgreSQL {}.{}".format(*divmod(keeper.server_version, 10000))
                database = (f"embedded {version} in {config.data_dir}" if config.embedded
                            else f"{version} given by --dsn")
                log.info("pgcall ready on %s (frontend %s; %s)", url, root, database)
                task_status.started(Running(url=url, dsn=dsn))
                if config.ready_fd is not None:  # a worker: tell the parent (workers.py)
                    with contextlib.suppress(OSError):  # a parent that went is no matter
                        os.write(config.ready_fd, b"1")
                    os.close(config.ready_fd)
                await shutdown.wait()
                await close_clients(hub, CLOSE_GOING_AWAY, "Server shutting down", 1.5)
                nursery.cancel_scope.cancel()
        finally:
            keeper.close()
            # This relay's publication goes with it (the keeper may be a broken connection by
            # now); left behind, the next clean-up of this dead instance drops it.
            with trio.CancelScope(shield=True), trio.move_on_after(2.0), \
                    contextlib.suppress(PgError):
                async with open_connection(dsn) as conn:
                    await drop_relay_publication(conn, instance_id)
