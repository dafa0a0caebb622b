"""Which steps a sweep runs, and in which order when two servers are swept in one run.

Owns: a server's sweep state (a fixed list of call counts, or: until a step breaks, then one
step more) and the interleaving of several servers' sweeps: at each call count every server
that still sweeps takes its step, in the order given (pgcall first, then the peer), so the
servers meet the same machine, one step after the other. Pure: the caller runs each step and
records whether it held before asking for the next. Does not own: running a step (``step``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs


@attrs.define
class SweepState:
    """One server's progress. ``fixed`` given: exactly those steps. Otherwise the sweep ends
    with the step after the first one that did not hold."""

    fixed: tuple[int, ...] | None = None
    broke_at: int | None = None
    finished: bool = False
    done: list[int] = attrs.field(factory=list)

    def wants(self, calls: int) -> bool:
        if self.finished:
            return False
        return self.fixed is None or calls in self.fixed

    def record(self, calls: int, holds: bool) -> None:
        self.done.append(calls)
        if self.fixed is not None:
            self.finished = all(c in self.done for c in self.fixed)
        elif self.broke_at is not None:
            self.finished = True  # that was the one step more
        elif not holds:
            self.broke_at = calls


def interleave(calls: Iterable[int], states: dict[str, SweepState]) -> Iterator[tuple[int, str]]:
    """(calls, server) in the order to run them: for each call count, each server that still
    wants it, in the order of ``states``. Stops once every server has finished. Record each
    step's outcome in its state before taking the next item."""
    for n in calls:
        if all(s.finished for s in states.values()):
            return
        for name, state in states.items():
            if state.wants(n):
                yield n, name
