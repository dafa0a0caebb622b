"""Running a bench's rooms: in this process, or spread over worker processes.

Owns: starting each room of a share at its offset of the ramp (every member of a room in the
same process: one clock for latency), the room worker command
``python -m pgcall.bench.roomrunner PLAN_JSON`` and its report line. The ramp, the split over
processes, the progress lines and the worker processes themselves are ``runner``'s, shared
with the call bench. Does not own: what a room does (``roomclient``) or the figures
(``roomstats``, ``roomreport``).
"""

from __future__ import annotations

import json
import sys

import attrs
import trio

from .roomclient import run_room
from .roommember import RoomPlan
from .roomreport import (
    RoomRecorder,
    RoomWorkerReport,
    merge_room_reports,
    room_report_from_json,
    room_report_to_json,
)
from .runner import (
    Assignment,
    OnProgress,
    cpu_seconds,
    emit,
    gather_workers,
    progress_to_json,
    tick,
)


async def run_rooms_local(plan: RoomPlan, assignment: Assignment,
                          on_progress: OnProgress) -> RoomWorkerReport:
    """Run a share of the rooms in this process; CPU time is this process's own."""
    recorder = RoomRecorder()
    cpu_start = cpu_seconds()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick, recorder.progress, on_progress)
        async with trio.open_nursery() as rooms:
            for room, offset in assignment:
                rooms.start_soon(run_room, plan, room, start + offset, recorder)
        nursery.cancel_scope.cancel()
    on_progress(recorder.progress())
    return recorder.report(cpu_s=cpu_seconds() - cpu_start)


async def run_room_workers(plan: RoomPlan, assignments: list[Assignment],
                           on_progress: OnProgress) -> RoomWorkerReport:
    """One worker process per share; a worker that fails counts as an error."""
    args = [{"plan": attrs.asdict(plan), "rooms": a} for a in assignments]
    results = await gather_workers("pgcall.bench.roomrunner", args, on_progress)
    return merge_room_reports(
        room_report_from_json(raw) if raw is not None else RoomWorkerReport(
            errors={failure: 1}) for raw, failure in results)


def main(argv: list[str] | None = None) -> int:
    """The worker: run the rooms named in the JSON argument, report on stdout."""
    args = json.loads((sys.argv[1:] if argv is None else argv)[0])
    plan = RoomPlan(**args["plan"])
    assignment = [(int(r), float(o)) for r, o in args["rooms"]]
    report = trio.run(run_rooms_local, plan, assignment,
                      lambda p: emit("progress", progress_to_json(p)))
    emit("report", room_report_to_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
