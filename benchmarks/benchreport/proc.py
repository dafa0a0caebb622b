"""CPU accounting from the text of ``/proc``: pure functions, nothing here opens a file.

Owns: parsing ``/proc/PID/stat`` (parent, own and reaped children's CPU ticks) and the
machine's steal time in ``/proc/stat``, summing a
process tree, the postmaster's pid from ``postmaster.pid``, whether a ``comm`` is PostgreSQL's,
and turning CPU ticks taken before and after a step into seconds and microseconds per relayed
frame. Does not own: reading ``/proc`` or sampling it over time (``sampling``), or which
processes are measured (``servers``, ``step``).

A process's CPU time is utime + stime (fields 14 and 15 of ``stat``, in clock ticks). A child
that exits and is waited for moves its time into its parent's cutime + cstime (fields 16 and
17), so a tree's own plus reaped ticks never go back while the tree runs.
"""

from __future__ import annotations

Stat = tuple[int, int, int]  # (ppid, own CPU ticks, reaped children's CPU ticks)
Ticks = dict[str, int | None]  # name -> CPU ticks of what is measured under that name


def parse_stat(text: bytes) -> Stat:
    """(ppid, utime + stime, cutime + cstime) from the contents of ``/proc/PID/stat``."""
    # The command name (field 2) is in parentheses and may itself hold spaces and ")".
    fields = text[text.rindex(b")") + 2:].split()
    ppid, utime, stime, cutime, cstime = (int(fields[i]) for i in (1, 11, 12, 13, 14))
    return ppid, utime + stime, cutime + cstime


def steal_ticks(proc_stat: str) -> int | None:
    """The machine's steal ticks so far, from the ``cpu`` line of ``/proc/stat`` (its eighth
    number): time a virtual CPU was ready to run and the hypervisor ran something else. None
    where the kernel does not count it."""
    first = proc_stat.split("\n", 1)[0].split()
    if not first or first[0] != "cpu" or len(first) < 9:
        return None
    return int(first[8])


def tree_ticks(table: dict[int, Stat], root: int) -> int | None:
    """CPU ticks of a process and all its descendants, living or reaped; None if it is gone."""
    if root not in table:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:  # a table read while pids are reused could hold a cycle
            continue
        seen.add(pid)
        total += table[pid][1] + table[pid][2]
        todo.extend(children.get(pid, ()))
    return total


def postmaster_pid(pidfile: str) -> int:
    """The postmaster's pid: the first line of ``postmaster.pid`` in the data directory."""
    first = pidfile.split("\n", 1)[0].strip()
    if not first.isdigit():
        raise ValueError(f"not a postmaster.pid: first line {first!r}")
    return int(first)


def is_postgres(comm: str) -> bool:
    """Whether ``/proc/PID/comm`` names a PostgreSQL server process (``postgres``; the
    postmaster of some builds shows ``postmaster``)."""
    return comm.strip() in ("postgres", "postmaster")


def cpu_seconds(before: Ticks, after: Ticks, clk_tck: int) -> dict[str, float | None]:
    """CPU seconds used by each name between two readings; None where either is missing."""
    out: dict[str, float | None] = {}
    for name, start in before.items():
        end = after.get(name)
        out[name] = None if start is None or end is None else (end - start) / clk_tck
    return out


def per_frame_us(seconds: dict[str, float | None], frames: int | None) -> dict[str, float | None]:
    """Microseconds of CPU per relayed frame for each name; None without frames or seconds."""
    return {name: None if s is None or not frames else round(s * 1e6 / frames, 1)
            for name, s in seconds.items()}
