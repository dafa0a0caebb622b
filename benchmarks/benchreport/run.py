"""One whole measurement run and its JSON document.

Owns: the document (machine, plan, criteria, PostgreSQL settings, the peer, floor and step
records), saved after every measurement so an interrupted run keeps its figures; the order of
the run: the floor at each planned rate, then the sweep of the ``table`` path until a step
breaks and one step more (or the quick run's fixed steps), with the peer's steps interleaved
when there is one, then the compared steps of pgcall's ``message`` path, pgcall being
restarted for each path. Does not own: how a floor or a step is measured (``floor``,
``step``), the sweep's order (``sweep``), starting a peer (``peer``) or the write-up
(``render``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import attrs
import trio

import pgcall
from pgcall.pg.conn import PgConnection

from .cluster import Cluster, open_cluster, open_pgcall
from .figures import PEER, PGCALL, floor_latency, fmt
from .floor import measure_floor, truncate_floor
from .servers import PeerOptions, Server, find_postmaster, open_peer_server
from .settings import HOST, MAX_P99_MS, MIN_FPS, Plan, log, sweep_calls
from .step import quiesce, run_step, step_line
from .sweep import SweepState, interleave


def machine() -> dict[str, Any]:
    model, mem = "?", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"cores": os.cpu_count(), "cpu": model, "memory": mem,
            "kernel": f"Linux {platform.release()}", "python": platform.python_version(),
            "trio": trio.__version__, "pgcall": pgcall.__version__,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


class Report:
    """The JSON document, written after every step so an interrupted run keeps its figures."""

    def __init__(self, plan: Plan, path: Path) -> None:
        self.path = path
        self.doc: dict[str, Any] = {
            "complete": False, "quick": plan.quick,
            "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            # Every step is quiesced first (``step.quiesce``); the documents of earlier runs
            # have no such key: their steps only waited for their own server to settle.
            # ``bench_client``: the load generator's own WebSocket client (``bench/wsclient``);
            # earlier documents were measured with trio-websocket's.
            "machine": machine(), "plan": {**attrs.asdict(plan), "quiesce": True,
                                                   "stream_phases": True, "bench_client": "own"},
            "criteria": {"max_p99_ms": MAX_P99_MS, "min_fps": MIN_FPS},
            "postgres": {}, "peer": None, "floor": [], "steps": [],
            "latency_rounds": [],  # the repeated rounds at ``plan.latency_calls``
        }

    def save(self) -> None:
        self.path.write_text(json.dumps(self.doc, indent=1) + "\n")


def peer_doc(peer: PeerOptions, server: Server, settings: dict[str, str]) -> dict[str, Any]:
    return {"name": peer.name, "url": peer.url, "pid_given": peer.pid is not None,
            "pg_dsn_given": peer.pg_dsn is not None,
            "postmaster_found": server.postmaster is not None, "postgres": settings,
            "started": peer.started}


async def run_report(plan: Plan, report: Report, workdir: Path,
                     peer: PeerOptions | None = None) -> None:
    async with open_cluster(workdir) as cluster, contextlib.AsyncExitStack() as stack:
        report.doc["postgres"] = cluster.settings
        monitor = await PgConnection.connect(cluster.dsn)
        stack.callback(monitor.close)
        # Found the way the peer's is, from a connection; it is the server pgcall's code started.
        postmaster = await find_postmaster(monitor) or cluster.server.pid
        other = None
        if peer is not None:
            other, settings = await stack.enter_async_context(open_peer_server(peer))
            report.doc["peer"] = peer_doc(peer, other, settings)
            report.save()
        for calls in plan.floor_calls:
            report.doc["floor"].append(await floor_step(cluster, monitor, calls, plan))
            report.save()
        await sweep_path(plan, report, cluster, monitor, postmaster, workdir, "table", other)
        await sweep_path(plan, report, cluster, monitor, postmaster, workdir, "message", None)
    report.doc["complete"] = True
    report.save()


async def floor_step(cluster: Cluster, monitor: PgConnection, calls: int, plan: Plan,
                     prefix: str = "") -> dict[str, Any]:
    """One measurement of the floor at ``calls``, its frames dropped afterwards."""
    floor = await measure_floor(cluster, monitor, calls, plan)
    await truncate_floor(cluster)
    v = floor_latency(floor)
    log(f"  {prefix}floor {calls:3d} calls: sent -> decoded p50 {fmt(v['p50'], 2)} "
        f"p95 {fmt(v['p95'], 2)} p99 {fmt(v['p99'], 2)} ms")
    return floor


async def sweep_path(plan: Plan, report: Report, cluster: Cluster, monitor: PgConnection,
                     postmaster: int, workdir: Path, media_path: str,
                     peer: Server | None) -> None:
    """pgcall restarted with ``media_path``; on ``table``, the peer's steps interleaved."""
    async with open_pgcall(cluster.dsn, media_path, workdir / f"pgcall-{media_path}.log") as (
            proc, port):
        pgcall = Server(PGCALL, PGCALL, f"ws://{HOST}:{port}", proc.pid, monitor, postmaster)
        servers = {PGCALL: pgcall, **({PEER: peer} if peer is not None else {})}

        async def step(server: Server, calls: int, role: str,
                       record: bool = True) -> dict[str, Any]:
            await quiesce(servers.values())
            result = await run_step(server, calls, media_path, plan, role)
            if record:
                report.doc["steps"].append(result)
                report.save()
            log("  " + step_line(result))
            return result

        if media_path == "message":
            for calls in plan.compare_calls:
                await step(pgcall, calls, "compare")
            return
        states = {name: SweepState(plan.fixed_sweep) for name in servers}
        sequence = plan.fixed_sweep if plan.fixed_sweep is not None else sweep_calls()
        for calls, name in interleave(sequence, states):
            result = await step(servers[name], calls, "sweep")
            states[name].record(calls, result["holds"])
        for calls in plan.compare_calls:
            if calls not in states[PGCALL].done:  # the sweep broke before it: for comparison
                await step(pgcall, calls, "compare")
        for n in range(2, plan.latency_rounds + 1):
            # Again at the latency target's rate: the floor, then each server, in turn.
            calls = plan.latency_calls
            await quiesce(servers.values())
            floor = await floor_step(cluster, monitor, calls, plan, f"round {n}: ")
            rounds = report.doc["latency_rounds"]
            rounds.append({"round": n, "calls": calls, "floor": floor, "steps": []})
            for server in servers.values():
                rounds[-1]["steps"].append(await step(server, calls, "latency", record=False))
                report.save()
