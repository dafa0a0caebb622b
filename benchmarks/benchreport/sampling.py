"""What the processes of a measurement use, sampled from ``/proc`` and PostgreSQL while it runs.

Owns: reading ``/proc`` (a process's stat, comm and RSS, the table of all processes), a reading
of the CPU ticks of named processes (with or without their descendants, living or reaped), the
``Sampler`` that records them with the cluster's WAL position every ``SAMPLE_INTERVAL_S``, and
turning the samples of a window into CPU % of one core, WAL bytes/s and RSS. Does not own: the
arithmetic on the text of ``/proc`` (``proc``), or which processes are sampled, or when
(``floor``, ``step``).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import trio

from pgcall.pg.conn import PgConnection

from .proc import Stat, Ticks, parse_stat, steal_ticks, tree_ticks
from .settings import SAMPLE_INTERVAL_S

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_stat(pid: int) -> Stat | None:
    """(ppid, own CPU ticks, reaped children's CPU ticks) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read())
    except (OSError, ValueError):
        return None


def read_comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read()
    except OSError:
        return None


def process_table() -> dict[int, Stat]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := read_stat(int(name))) is not None:
            table[int(name)] = st
    return table


Roots = dict[str, tuple[int, bool]]  # name -> (pid, with its descendants)


def read_ticks(roots: Roots) -> Ticks:
    """CPU ticks of each named process now (of its whole tree where asked); None if gone."""
    table = process_table()
    ticks: Ticks = {}
    for name, (pid, tree) in roots.items():
        st = table.get(pid)
        ticks[name] = tree_ticks(table, pid) if tree else (st[1] if st else None)
    return ticks


def machine_steal() -> int | None:
    try:
        with open("/proc/stat") as f:
            return steal_ticks(f.readline())
    except OSError:
        return None


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler:
    """Every ``SAMPLE_INTERVAL_S``: CPU ticks of named processes (own, or with descendants)
    and the machine's steal ticks (as ``steal``), the RSS of one of them, and the cluster's
    WAL position (when there is a connection)."""

    def __init__(self, roots: Roots, wal: PgConnection | None,
                 rss_of: str | None = None) -> None:
        self.roots, self.wal, self.rss_of = roots, wal, rss_of
        self.samples: list[dict[str, Any]] = []

    async def take(self, t0: float) -> None:
        t = trio.current_time() - t0
        ticks = read_ticks(self.roots)
        # The machine's steal time: on a virtual machine, CPU the host took from all of the
        # above while they were ready to run (it varies between runs, and so does latency).
        ticks["steal"] = machine_steal()
        rss = rss_kib(self.roots[self.rss_of][0]) if self.rss_of else None
        lsn = None
        if self.wal is not None:
            # Shielded: a step ends by cancelling its sampler, and a query cancelled halfway
            # leaves the connection broken (``PgConnection``), for every later step that uses
            # the same monitor connection.
            with trio.CancelScope(shield=True):
                lsn = (await self.wal.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")).rows[0][0]
        self.samples.append({"t": round(t, 3), "ticks": ticks, "rss_kib": rss, "wal": lsn})

    async def run(self, t0: float) -> None:
        for k in itertools.count():
            await trio.sleep_until(t0 + k * SAMPLE_INTERVAL_S)
            await self.take(t0)


def summarize_samples(samples: list[dict[str, Any]], w0: float, w1: float) -> dict[str, Any]:
    """CPU % of one core per process and WAL bytes/s between the first and the last sample
    inside [w0, w1] (seconds since the start); the whole span if the window holds < 2."""
    inside = [s for s in samples if w0 <= s["t"] <= w1]
    if len(inside) < 2:
        inside = samples
    out: dict[str, Any] = {"window_s": [inside[0]["t"], inside[-1]["t"]] if inside else None}
    if len(inside) < 2:
        return out
    names = inside[0]["ticks"].keys()
    for name in names:
        have = [s for s in inside if s["ticks"].get(name) is not None]
        if len(have) >= 2 and have[-1]["t"] > have[0]["t"]:
            span = have[-1]["t"] - have[0]["t"]
            used = (have[-1]["ticks"][name] - have[0]["ticks"][name]) / CLK_TCK
            out[f"{name}_cpu_percent"] = round(100 * used / span, 1)
        else:
            out[f"{name}_cpu_percent"] = None
    span = inside[-1]["t"] - inside[0]["t"]
    if inside[0]["wal"] is not None and inside[-1]["wal"] is not None:
        out["wal_bytes_per_s"] = round((inside[-1]["wal"] - inside[0]["wal"]) / span)
    rss = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
    if rss:
        out["rss_mib_max"] = round(max(rss) / 1024, 1)
        out["rss_mib_end"] = round(rss[-1] / 1024, 1)
    return out
