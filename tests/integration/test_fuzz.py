"""Fuzzing a running pgcall (a process of its own) while a healthy call goes on.

Hostile clients draw, from a seeded ``random.Random``, one case after another (see
``fuzzcases``): malformed WebSocket frames of every kind, malformed opening handshakes,
malformed pg-relay messages, and valid but hostile requests aimed at the healthy call. They
keep coming for as long as the healthy call streams (``pgcall bench``: 15 fps of video both
ways, and audio). Then:

* pgcall is still running (and, at the end of the session, exits 0 on SIGTERM);
* the healthy call was served throughout: every frame in order, nothing foreign in it, no
  request of its refused, at least 14.5 fps each way (the bench's own report);
* no hostile client got anything it may not (``Fuzzer.inspect``): no media but its own
  partner's, no call but its own, never the healthy one;
* pgcall's resident memory stayed bounded, and its log holds no error and no traceback.

A few seconds in CI. ``PGCALL_FUZZ_SECONDS`` runs it longer (the healthy call streams that
long), ``PGCALL_FUZZ_SEED`` draws other cases (a failure names the seed and its last cases,
whose inputs depend on nothing else; their timing on a busy machine may still differ).
"""

from __future__ import annotations

import math
import os
import random
import uuid

import trio

from .fuzzcases import ALL_CASES, Fuzzer, Target, meddle_with_the_healthy_call, session
from .pgcallproc import PgcallProcess, RssSampler, healthy_call
from .test_observability import Samples, scrape_metrics

SECONDS = float(os.environ.get("PGCALL_FUZZ_SECONDS", "4"))
SEED = int(os.environ.get("PGCALL_FUZZ_SEED", "20261129"))
WORKERS = 3  # hostile clients at a time
CASE_DEADLINE_S = 20.0  # a case waits at most a few seconds for each answer; this is a backstop
RSS_GROWTH_MAX = 30 * 1024 * 1024  # bounded, not a performance figure


class Schedule:
    """Case n: its kind, from a cycle through every kind reshuffled each round, and its
    inputs, from ``random.Random(f"{seed}-{n}")``; whichever worker runs it."""

    def __init__(self) -> None:
        self.next = 0
        self._order: list[str] = []

    def take(self) -> tuple[int, str, random.Random]:
        n, self.next = self.next, self.next + 1
        kinds = sorted(ALL_CASES)
        if n % len(kinds) == 0:
            self._order = kinds
            random.Random(f"{SEED}-round-{n // len(kinds)}").shuffle(self._order)
        return n, self._order[n % len(kinds)], random.Random(f"{SEED}-{n}")


async def worker(fz: Fuzzer, schedule: Schedule, stop: trio.Event) -> None:
    while not stop.is_set():
        n, name, rng = schedule.take()
        fz.trace.append(f"case {n}: {name}")
        with trio.fail_after(CASE_DEADLINE_S):
            await ALL_CASES[name](fz, rng, name)
        fz.runs[name] += 1


def latency_p99(before: Samples, after: Samples) -> float:
    """The upper bound of pgcall's own frame latency (receive to send, its histogram in
    /metrics) for 99 % of the frames relayed between two scrapes."""
    name = "pgcall_frame_latency_seconds_bucket"
    counts = {float(dict(labels)["le"]): value - before.get((n, labels), 0.0)
              for (n, labels), value in after.items() if n == name}
    total = counts.get(math.inf, 0.0)
    return min((le for le, count in counts.items() if count >= 0.99 * total), default=math.nan)


async def test_fuzz_beside_a_healthy_call(pgcall_process: PgcallProcess) -> None:
    proc = pgcall_process
    _, before = await scrape_metrics(proc.ws)
    with trio.fail_after(SECONDS + 120):
        async with healthy_call(proc, SECONDS) as call, trio.open_nursery() as nursery:
            fz = Fuzzer(proc.ws, Target(call.session_id, call.caller, call.callee))
            sampler = RssSampler(proc)
            nursery.start_soon(sampler.run)
            started = trio.current_time()
            schedule = Schedule()
            async with trio.open_nursery() as workers:
                for _ in range(WORKERS):
                    workers.start_soon(worker, fz, schedule, call.done)
            elapsed = trio.current_time() - started
            nursery.cancel_scope.cancel()
    total = sum(fz.runs.values())
    _, samples = await scrape_metrics(proc.ws)
    print(f"fuzz: seed {SEED}, {total} cases in {elapsed:.1f} s ({total / elapsed:.1f}/s), "
          f"RSS growth {sampler.growth / 1e6:.1f} MB; healthy call "
          f"{call.result['fps']['min']:.1f} fps, p99 {call.result['latency_ms']['p99']} ms "
          f"(pgcall's own: <= {latency_p99(before, samples) * 1000:g} ms); "
          f"{dict(sorted(fz.runs.items()))}")
    replay = f"PGCALL_FUZZ_SEED={SEED}; the last cases: {fz.trace[-6:]}"
    assert proc.running, f"pgcall exited with {proc.proc.returncode} ({replay}):\n{proc.log()}"
    assert fz.violations == [], (replay, fz.violations[:20])
    call.check()
    assert sampler.growth < RSS_GROWTH_MAX, (replay, sampler.before, sampler.peak)
    assert proc.problems() == [], "\n".join([replay, *proc.problems()[:40]])
    assert ("pgcall_connection_failures_total", frozenset({("cause", "internal")})) \
        not in samples
    assert set(fz.runs) == set(ALL_CASES)  # every kind ran, at least once


async def test_meddling_once_the_call_has_ended(pgcall_process: PgcallProcess) -> None:
    """The window the fuzz above reaches only by chance: its call has ended but both
    participants are still online. Calling them is allowed then (and hung up at once); every
    request and media frame naming the old session is still refused."""
    participants = Fuzzer(pgcall_process.ws, Target("", "", ""))  # theirs go unchecked
    async with session(participants, "participant") as a, \
            session(participants, "participant") as b:
        fz = Fuzzer(pgcall_process.ws, Target(str(uuid.uuid4()), a.identity, b.identity))
        for n in range(20):
            await meddle_with_the_healthy_call(fz, random.Random(f"{SEED}-ended-{n}"), "meddle")
    assert fz.violations == [], fz.violations[:20]
