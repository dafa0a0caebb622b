"""What every section runs on: the throw-away PostgreSQL of the run and a connection to it, its
postmaster (whose process tree is the cluster's CPU), the working directory, the plan; and
relays started on it.

Owns: ``Env`` and ``open_relays``: N separate ``pgcall serve --dsn`` processes on one database,
each on its own port (or one with ``--workers W``), ready once each answers ``/healthz`` and
the database has as many walsenders streaming as relays, stopped on the way out. Does not own:
the database itself (``cluster.open_cluster``) or what runs against the relays (the sections).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import attrs
import trio

from pgcall.pg.conn import PgConnection

from ..cluster import open_pgcall
from ..sampling import Roots
from ..settings import HOST
from .measure import Target, wait_streaming
from .plan import Plan


@attrs.frozen
class Relay:
    proc: trio.Process
    port: int

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"


@attrs.frozen
class Env:
    dsn: str  # pgcall's database
    monitor: PgConnection  # on that database: waits, WAL, recordings
    postmaster: int
    workdir: Path
    plan: Plan

    def target(self, relays: Sequence[Relay]) -> Target:
        """The relays' URLs, each relay's process tree (``pgcall`` alone, else ``relay1``,
        ``relay2``, ...) and the cluster's (``postgres``)."""
        roots: Roots = {"postgres": (self.postmaster, True)}
        for i, r in enumerate(relays):
            roots["pgcall" if len(relays) == 1 else f"relay{i + 1}"] = (r.proc.pid, True)
        return Target(tuple(r.url for r in relays), roots, self.monitor)


@contextlib.asynccontextmanager
async def open_relays(env: Env, name: str, count: int = 1,
                      workers: int | None = None) -> AsyncIterator[list[Relay]]:
    """``count`` relays (each with ``--workers`` if given), logging to ``name-N.log``."""
    extra = [*env.plan.serve_args, *([] if workers is None else ["--workers", str(workers)])]
    async with contextlib.AsyncExitStack() as stack:
        relays = []
        for i in range(count):
            proc, port = await stack.enter_async_context(
                open_pgcall(env.dsn, "table", env.workdir / f"{name}-{i + 1}.log", extra))
            relays.append(Relay(proc, port))
        await wait_streaming(env.monitor, count * (workers or 1))
        yield relays
