"""The order of a report's sweep: each server until a step breaks and one step more, and two
servers' steps interleaved at each call count."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from benchreport.settings import sweep_calls
from benchreport.sweep import SweepState, interleave


def run(calls: Iterable[int], states: dict[str, SweepState],
        holds: Callable[[str, int], bool]) -> list[tuple[int, str]]:
    """What a run does: each step taken in order, its outcome recorded before the next."""
    order = []
    for n, name in interleave(calls, states):
        order.append((n, name))
        states[name].record(n, holds(name, n))
    return order


def test_fixed_steps_alternate_pgcall_then_the_peer_at_each_call_count() -> None:
    states = {"pgcall": SweepState((1, 2)), "peer": SweepState((1, 2))}
    assert run((1, 2), states, lambda name, n: True) == [
        (1, "pgcall"), (1, "peer"), (2, "pgcall"), (2, "peer")]
    assert all(s.finished for s in states.values())


def test_each_server_stops_one_step_after_its_first_broken_step() -> None:
    # pgcall breaks at 25 calls, the peer at 15: the peer runs 20 as its one step more.
    limit = {"pgcall": 20, "peer": 10}
    states = {"pgcall": SweepState(), "peer": SweepState()}
    order = run(sweep_calls(), states, lambda name, n: n <= limit[name])
    assert order == [
        (1, "pgcall"), (1, "peer"), (2, "pgcall"), (2, "peer"), (5, "pgcall"), (5, "peer"),
        (10, "pgcall"), (10, "peer"), (15, "pgcall"), (15, "peer"), (20, "pgcall"),
        (20, "peer"), (25, "pgcall"), (30, "pgcall")]
    assert (states["pgcall"].broke_at, states["peer"].broke_at) == (25, 15)
    assert states["peer"].done == [1, 2, 5, 10, 15, 20]


def test_a_step_that_breaks_and_one_that_holds_again_still_ends_the_sweep() -> None:
    states = {"pgcall": SweepState()}
    order = run(sweep_calls(), states, lambda name, n: n != 5)
    assert [n for n, _ in order] == [1, 2, 5, 10]
    assert states["pgcall"].broke_at == 5


def test_an_endless_sequence_is_left_once_every_server_has_finished() -> None:
    states = {"pgcall": SweepState(), "peer": SweepState()}
    order = run(itertools.count(1), states, lambda name, n: n < 3)
    assert order[-2:] == [(4, "pgcall"), (4, "peer")]
    assert len(order) == 8


def test_without_a_peer_the_sweep_is_pgcall_alone() -> None:
    states = {"pgcall": SweepState((1, 2))}
    assert run((1, 2), states, lambda name, n: False) == [(1, "pgcall"), (2, "pgcall")]


def test_a_fixed_sweep_runs_every_planned_step_even_when_they_break() -> None:
    state = SweepState((1, 2, 5))
    for n in (1, 2):
        assert state.wants(n)
        state.record(n, holds=False)
    assert not state.finished and state.wants(5) and not state.wants(10)
    state.record(5, holds=False)
    assert state.finished and not state.wants(5)
