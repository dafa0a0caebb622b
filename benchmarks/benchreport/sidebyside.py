"""pgcall and a peer measured in the same run, side by side: the summary lines of capacity and
the section with their latency, delivery and CPU per relayed frame at each call count.

Owns: the wording and tables of that comparison. Does not own: any figure (``figures`` reads
them from the document) or where the section goes (``render``).
"""

from __future__ import annotations

from typing import Any

from .figures import PEER, PGCALL, capacity, cpu_per_frame, fmt, label, peer_of, steps_of
from .markdown import md_table
from .settings import MAX_P99_MS, MIN_FPS


def capacity_line(doc: dict[str, Any], server: str) -> str:
    """One summary bullet: a server's capacity and the first step that broke."""
    name, cores = label(doc, server), doc["machine"]["cores"]
    if not steps_of(doc, "table", server):
        return f"* {name}: not measured."
    cap, broke = capacity(doc, server)
    if broke is None:
        return f"* {name}: largest step measured that held: {cap} calls (no step broke)."
    return (f"* **{name}: capacity {cap} calls** on {cores} cores with the load generator on "
            f"the same machine (first step that broke: {broke['calls']} calls, {broke['why']}).")


def _latency(step: dict[str, Any] | None) -> str:
    if step is None:
        return "not run"
    if step["bench"] is None:
        return "no figures"
    v = step["bench"]["latency_ms"]
    return f"{fmt(v['p50'])} / {fmt(v['p95'])} / {fmt(v['p99'])}"


def _fps(step: dict[str, Any] | None) -> str:
    if step is None or step["bench"] is None:
        return "-"
    f = step["bench"]["fps"]
    return f"{fmt(f['min'])} / {fmt(f['median'])}"


def _lost(step: dict[str, Any] | None) -> str:
    return "-" if step is None or step["bench"] is None else str(step["bench"]["lost"])


def _holds(step: dict[str, Any] | None) -> str:
    return "-" if step is None else "yes" if step["holds"] else "**no**"


def _total(step: dict[str, Any] | None) -> float | None:
    server, pg = cpu_per_frame(step, "server"), cpu_per_frame(step, "postgres")
    return None if server is None or pg is None else server + pg


def rows_by_calls(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any] | None,
                                                     dict[str, Any] | None]]:
    """(calls, pgcall's table step, the peer's) for every call count either server ran."""
    mine = {s["calls"]: s for s in steps_of(doc, "table", PGCALL)}
    theirs = {s["calls"]: s for s in steps_of(doc, "table", PEER)}
    return [(n, mine.get(n), theirs.get(n)) for n in sorted(mine.keys() | theirs.keys())]


def same_run_section(doc: dict[str, Any]) -> list[str]:
    """The comparison, or nothing when the run measured no peer."""
    peer = peer_of(doc)
    if peer is None:
        return []
    name = peer["name"]
    rows = rows_by_calls(doc)
    latency = [[str(n), _latency(a), _latency(b), _fps(a), _fps(b), _lost(a), _lost(b),
                _holds(a), _holds(b)] for n, a, b in rows]
    cpu = [[str(n), fmt(cpu_per_frame(a, "server"), 0), fmt(cpu_per_frame(a, "postgres"), 0),
            fmt(_total(a), 0), fmt(cpu_per_frame(b, "server"), 0),
            fmt(cpu_per_frame(b, "postgres"), 0), fmt(_total(b), 0)] for n, a, b in rows]
    unmeasured = []
    if not peer.get("pid_given"):
        unmeasured.append(f"{name}'s own CPU (no relay pid was given)")
    if not peer.get("pg_dsn_given"):
        unmeasured.append("its database's CPU (no connection string was given)")
    started = peer.get("started")
    how = (f"started by the report with `{started['command']}` (Node {started['node']}) on a "
           "PostgreSQL cluster of its own with the settings of pgcall's embedded server and "
           "its own `schema.sql`" if started else "already running when the report started")
    return [
        f"## pgcall and {name} in the same run", "",
        f"{name}, a pg-relay-protocol server ({how}), was swept by the same load generator "
        "with the same options in this run, its steps interleaved with pgcall's (pgcall at N "
        f"calls, then {name} at N, then pgcall at the next N, ...), each until a step broke "
        f"and one step more. A step holds with every video stream at >= {MIN_FPS:g} fps and "
        f"video p99 <= {MAX_P99_MS:g} ms.", "",
        capacity_line(doc, PGCALL), capacity_line(doc, PEER), "",
        "Video latency in ms; fps of the slowest and of the median video stream.", "",
        *md_table(["calls", "pgcall p50 / p95 / p99", f"{name} p50 / p95 / p99",
                   "pgcall fps min / median", f"{name} fps min / median", "pgcall lost",
                   f"{name} lost", "pgcall holds", f"{name} holds"], latency),
        "CPU per relayed frame, in µs: the CPU time (user + system, from `/proc`) used from "
        "just before the load generator started to just after it exited, divided by the "
        "frames the clients received. The relay is its whole process tree; \"its PostgreSQL\" "
        "is every process of that server's cluster (the postmaster found from the database "
        "connection, and all its children: backends, walsender, background workers).", "",
        *md_table(["calls", "pgcall", "its PostgreSQL", "pgcall together", name,
                   "its PostgreSQL", f"{name} together"], cpu),
        *([f"Not measured: {'; '.join(unmeasured)}.", ""] if unmeasured else []),
    ]
