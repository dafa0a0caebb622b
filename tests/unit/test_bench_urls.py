"""The bench's clients spread over several URLs (relays): which client connects where."""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgcall.bench.cli import DEFAULT_URL, add_bench_options, bench_urls
from pgcall.bench.client import CallPlan, call_urls, client_url
from pgcall.bench.roommember import RoomPlan, member_url

ONE = ("ws://one:9000",)
TWO = ("ws://one:9000", "ws://two:9000")
THREE = ("ws://one:9000", "ws://two:9000", "ws://three:9000")
url_lists = st.integers(1, 6).map(lambda n: tuple(f"ws://relay{i}:9000" for i in range(n)))


def _room_plan(urls: tuple[str, ...], size: int) -> RoomPlan:
    return RoomPlan(urls=urls, duration_s=1.0, room_size=size, fps=15.0, frame_bytes=1000,
                    thumb_bytes=100, turn_s=4.0, settle_s=1.0)


def _parse(*argv: str) -> tuple[str, ...]:
    parser = argparse.ArgumentParser()
    add_bench_options(parser)
    return bench_urls(parser.parse_args(argv))


def test_url_defaults_to_one_and_repeats_in_order() -> None:
    assert _parse() == (DEFAULT_URL,) == ("ws://127.0.0.1:9000",)
    assert _parse("--url", "ws://h:1") == ("ws://h:1",)
    assert _parse("--url", "ws://h:1", "--calls", "2", "--url", "wss://g:2/x") == (
        "ws://h:1", "wss://g:2/x")


@pytest.mark.parametrize("bad", ["http://h:1", "h:1", "ws://"])
def test_every_url_must_be_a_websocket_url(bad: str) -> None:
    with pytest.raises(SystemExit):
        _parse("--url", "ws://h:1", "--url", bad)


def test_with_one_url_both_ends_of_every_call_use_it() -> None:
    assert [call_urls(ONE, call) for call in range(3)] == [(ONE[0], ONE[0])] * 3


def test_with_two_urls_every_caller_is_on_the_first_and_every_callee_on_the_second() -> None:
    assert [call_urls(TWO, call) for call in range(3)] == [TWO] * 3


def test_with_three_urls_calls_take_them_round_robin() -> None:
    one, two, three = THREE
    assert [call_urls(THREE, call) for call in range(3)] == [
        (one, two), (three, one), (two, three)]


@given(url_lists, st.integers(0, 1000))
def test_the_ends_of_a_call_differ_whenever_there_are_several_urls(
        urls: tuple[str, ...], call: int) -> None:
    caller, callee = call_urls(urls, call)
    assert {caller, callee} <= set(urls)
    assert (caller != callee) == (len(urls) > 1)


@given(url_lists, st.integers(1, 50))
def test_calls_load_every_url_within_one_client(urls: tuple[str, ...], calls: int) -> None:
    used = Counter(url for call in range(calls) for url in call_urls(urls, call))
    assert sum(used.values()) == 2 * calls
    counts = [used[url] for url in urls]
    assert max(counts) - min(counts) <= 1


def test_a_room_of_three_over_two_urls_alternates_and_the_next_room_goes_on() -> None:
    plan = _room_plan(TWO, 3)
    one, two = TWO
    assert [member_url(plan, 0, m) for m in range(3)] == [one, two, one]
    assert [member_url(plan, 1, m) for m in range(3)] == [two, one, two]


@given(url_lists, st.integers(2, 20), st.integers(0, 30))
def test_a_room_spans_as_many_urls_as_it_can(urls: tuple[str, ...], size: int,
                                             room: int) -> None:
    plan = _room_plan(urls, size)
    members = [member_url(plan, room, m) for m in range(size)]
    assert len(set(members)) == min(size, len(urls))
    if len(urls) > 1:  # neighbours differ: the creator and the first joiner too
        assert all(a != b for a, b in itertools.pairwise(members))


def test_client_numbers_wrap_around_the_urls() -> None:
    assert [client_url(THREE, c) for c in range(7)] == [*THREE, *THREE, THREE[0]]


def test_plans_keep_their_urls_through_a_workers_json() -> None:
    call = CallPlan(urls=TWO, duration_s=1.0, fps=15.0, frame_bytes=1000, audio=True)
    room = _room_plan(THREE, 4)
    for plan in (call, room):
        wire = json.loads(json.dumps(attrs.asdict(plan)))
        assert type(plan)(**wire) == plan
        assert wire["urls"] == list(plan.urls)


def test_a_plan_needs_a_url() -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        CallPlan(urls=[], duration_s=1.0, fps=15.0, frame_bytes=1000, audio=True)
    assert CallPlan(urls=["ws://a"], duration_s=1.0, fps=15.0, frame_bytes=1000,
                    audio=False).urls == ("ws://a",)
