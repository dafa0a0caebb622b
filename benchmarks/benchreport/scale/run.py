"""The order of a scale run: one throw-away PostgreSQL for the whole run, then each section
asked for, in the order of ``plan.SECTIONS``, each starting and stopping its own relays.

Owns: opening the database and the connection every section uses, finding its postmaster, and
handing each section its fresh object of the document. Does not own: the sections (``rooms``,
``recording``, ``workers``, ``relays``) or the document (``document``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pgcall.pg.conn import PgConnection

from ..cluster import open_cluster
from ..servers import find_postmaster
from ..settings import log
from .document import ScaleDoc
from .env import Env
from .plan import Plan
from .recording import run_recording
from .relays import run_relays
from .rooms import run_rooms
from .workers import run_workers

Section = Callable[[Env, dict[str, Any], Callable[[], None]], Awaitable[None]]
RUNNERS: dict[str, Section] = {"rooms": run_rooms, "recording": run_recording,
                               "workers": run_workers, "relays": run_relays}


async def run_scale(plan: Plan, sections: tuple[str, ...], doc: ScaleDoc, workdir: Path,
                    command: str) -> None:
    async with open_cluster(workdir) as cluster:
        monitor = await PgConnection.connect(cluster.dsn)
        try:
            postmaster = await find_postmaster(monitor) or cluster.server.pid
            env = Env(cluster.dsn, monitor, postmaster, workdir, plan)
            for name in sections:
                log(f"section {name}")
                t0 = time.monotonic()
                section = doc.begin(name, plan, cluster.settings, command)
                await RUNNERS[name](env, section, doc.save)
                section["wall_s"] = round(time.monotonic() - t0, 1)
                doc.save()
                log(f"section {name} done in {section['wall_s']:.0f} s")
        finally:
            monitor.close()
