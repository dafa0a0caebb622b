"""The report with a peer measured in the same run: each server's steps and capacity read
apart, the side-by-side tables, the summary, and documents that predate peers."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import pytest
from benchreport.figures import capacity, cpu, cpu_per_frame, server_of, step_at, steps_of
from benchreport.peer import database_url
from benchreport.render import render_markdown
from benchreport.servers import PeerOptions
from benchreport.sidebyside import capacity_line, rows_by_calls, same_run_section
from peer import report_options
from report import add_peer_options, peer_options


def step(server: str | None, calls: int, p99: float, *, fps_min: float = 15.0,
         media_path: str = "table", per_frame: tuple[float, float] | None = None,
         lost: int = 0) -> dict[str, Any]:
    holds = fps_min >= 14.5 and p99 <= 100
    record: dict[str, Any] = {
        "calls": calls, "media_path": media_path, "role": "sweep",
        "bench": {"latency_ms": {"p50": p99 / 4, "p95": p99 / 2, "p99": p99, "max": p99 * 2},
                  "audio_latency_ms": {"p50": 1.0, "p99": 2.0},
                  "fps": {"min": fps_min, "median": 15.0}, "lost": lost, "errors": 0,
                  "frames_sent": 70 * calls * 15, "frames_received": 70 * calls * 15,
                  "video_streams": 2 * calls},
        "holds": holds, "why": "holds" if holds else f"p99 {p99:.1f} ms > 100 ms",
        "frames_per_s": 70.0 * calls,
        "resources": {f"{server or 'pgcall'}_cpu_percent": 10.0 * calls,
                      "postgres_cpu_percent": 5.0 * calls, "bench_cpu_percent": 3.0 * calls},
    }
    if server is not None:  # documents written before peers had no "server"
        record["server"] = server
    if per_frame is not None:
        name = server or "pgcall"
        record["cpu_per_frame_us"] = {name: per_frame[0], "postgres": per_frame[1],
                                      "bench": 90.0}
    return record


def document(steps: list[dict[str, Any]], peer: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "complete": True, "quick": False, "date_utc": "2026-01-01 00:00",
        "machine": {"cores": 2, "cpu": "test", "memory": "1 GiB", "kernel": "Linux",
                    "python": "3", "trio": "0", "pgcall": "0", "loadavg_at_start": [0.0]},
        "plan": {"quick": False, "duration_s": 15.0, "ramp_s": 2.0, "procs": 2,
                 "floor_calls": [], "compare_calls": [1], "fixed_sweep": None},
        "criteria": {"max_p99_ms": 100.0, "min_fps": 14.5}, "postgres": {},
        "peer": peer, "floor": [], "steps": steps,
    }


PEER = {"name": "pg-relay", "url": "ws://127.0.0.1:9100", "pid_given": True,
        "pg_dsn_given": True, "postmaster_found": True, "postgres": {"server_version": "15"},
        "started": {"command": "node --import tsx src/server.ts", "node": "v20"}}

# pgcall holds to 20 calls and breaks at 25; the peer holds to 10, breaks at 15 (a slow
# stream), and ran 20 as its one step more. pgcall also ran 1 call on the message path.
STEPS = [
    step("pgcall", 1, 5.0, per_frame=(600.0, 330.0)),
    step("peer", 1, 9.0, per_frame=(400.0, 520.0)),
    step("pgcall", 10, 14.0), step("peer", 10, 70.0),
    step("pgcall", 15, 29.0), step("peer", 15, 60.0, fps_min=11.2, lost=40),
    step("pgcall", 20, 88.0), step("peer", 20, 900.0, fps_min=3.0),
    step("pgcall", 25, 180.0), step("pgcall", 1, 4.0, media_path="message"),
]
DOC = document(STEPS, PEER)


# --- each server's figures -----------------------------------------------------------------


def test_steps_and_capacity_are_read_per_server() -> None:
    assert [s["calls"] for s in steps_of(DOC, "table")] == [1, 10, 15, 20, 25]
    assert [s["calls"] for s in steps_of(DOC, "table", "peer")] == [1, 10, 15, 20]
    cap, broke = capacity(DOC)
    assert (cap, broke and broke["calls"]) == (20, 25)
    cap, broke = capacity(DOC, "peer")
    assert (cap, broke and broke["calls"]) == (10, 15)


def test_capacity_is_the_largest_step_that_held_not_the_last() -> None:
    doc = document([step("peer", 1, 5.0), step("peer", 2, 500.0), step("peer", 5, 50.0)], PEER)
    cap, broke = capacity(doc, "peer")
    assert cap == 5 and broke is not None and broke["calls"] == 2
    assert capacity(doc) == (0, None)  # pgcall has no steps in it


def test_a_document_from_before_peers_is_all_pgcall() -> None:
    old = document([step(None, 1, 5.0), step(None, 2, 6.0)], None)
    old.pop("peer")
    assert server_of(old["steps"][0]) == "pgcall"
    assert capacity(old) == (2, None)
    assert steps_of(old, "table", "peer") == []
    assert same_run_section(old) == []
    assert "in the same run" not in render_markdown(old)


def test_the_server_cpu_and_cpu_per_frame_follow_the_step_s_server() -> None:
    mine, theirs = step_at(DOC, "table", 1), step_at(DOC, "table", 1, "peer")
    assert mine is not None and theirs is not None
    assert (cpu(mine, "server"), cpu(theirs, "server")) == (10.0, 10.0)
    assert cpu(theirs, "pgcall") is None
    assert (cpu_per_frame(mine, "server"), cpu_per_frame(theirs, "server")) == (600.0, 400.0)
    assert cpu_per_frame(theirs, "postgres") == 520.0
    assert cpu_per_frame(step_at(DOC, "table", 10), "server") is None  # not measured
    assert cpu_per_frame(None, "server") is None


# --- the side-by-side section --------------------------------------------------------------


def test_rows_pair_the_servers_steps_by_call_count() -> None:
    rows = rows_by_calls(DOC)
    assert [n for n, _, _ in rows] == [1, 10, 15, 20, 25]
    _, mine, theirs = rows[-1]
    assert mine is not None and mine["calls"] == 25 and theirs is None


def _table(lines: list[str], head_starts: str) -> list[list[str]]:
    start = next(i for i, line in enumerate(lines) if line.startswith(head_starts))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_latency_table_has_a_column_per_server() -> None:
    lines = same_run_section(DOC)
    table = _table(lines, "| calls | pgcall p50")
    assert table[0] == ["calls", "pgcall p50 / p95 / p99", "pg-relay p50 / p95 / p99",
                        "pgcall fps min / median", "pg-relay fps min / median", "pgcall lost",
                        "pg-relay lost", "pgcall holds", "pg-relay holds"]
    by_calls = {row[0]: row for row in table[2:]}
    assert by_calls["1"][1:3] == ["1.2 / 2.5 / 5.0", "2.2 / 4.5 / 9.0"]
    assert by_calls["15"][3:] == ["15.0 / 15.0", "11.2 / 15.0", "0", "40", "yes", "**no**"]
    assert by_calls["25"][2] == "not run" and by_calls["25"][8] == "-"


def test_the_cpu_table_gives_each_relay_and_its_database_per_frame() -> None:
    lines = same_run_section(DOC)
    table = _table(lines, "| calls | pgcall | its PostgreSQL")
    assert table[0] == ["calls", "pgcall", "its PostgreSQL", "pgcall together", "pg-relay",
                        "its PostgreSQL", "pg-relay together"]
    assert table[2] == ["1", "600", "330", "930", "400", "520", "920"]
    assert table[3] == ["10", "-", "-", "-", "-", "-", "-"]


def test_the_section_names_both_capacities_and_how_the_peer_ran() -> None:
    text = "\n".join(same_run_section(DOC))
    assert "## pgcall and pg-relay in the same run" in text
    assert "**pgcall: capacity 20 calls**" in text
    assert "**pg-relay: capacity 10 calls**" in text and "first step that broke: 15 calls" in text
    assert "`node --import tsx src/server.ts` (Node v20)" in text
    assert "Not measured" not in text


def test_what_was_not_given_is_said_not_measured() -> None:
    peer = {**PEER, "pid_given": False, "pg_dsn_given": False, "started": None}
    text = "\n".join(same_run_section(document(STEPS, peer)))
    assert "Not measured: pg-relay's own CPU (no relay pid was given); its database's CPU" in text
    assert "already running when the report started" in text


def test_capacity_line_of_a_server_without_steps() -> None:
    assert capacity_line(document([], PEER), "peer") == "* pg-relay: not measured."


# --- the whole report ----------------------------------------------------------------------


def test_the_report_has_both_servers_in_summary_results_and_comparison() -> None:
    text = render_markdown(DOC)
    summary = text[text.index("## Summary"):text.index("## Machine")]
    assert "**pgcall: capacity 20 calls**" in summary
    assert "**pg-relay: capacity 10 calls**" in summary
    for title in ("## Results: media path `table`", "## Results: pg-relay",
                  "## pgcall and pg-relay in the same run", "## pgcall's targets"):
        assert title in text
    assert "| calls | frames/s | pg-relay CPU % |" in text
    assert "pg-relay's PostgreSQL: 15" in text


def test_no_figure_from_elsewhere_is_in_the_report() -> None:
    for doc in (DOC, document([step("pgcall", 1, 5.0)], None)):
        text = render_markdown(doc)
        assert "collapsed" not in text and "same class of machine" not in text


# --- starting and naming the peer ----------------------------------------------------------


def test_the_peer_s_database_url_is_a_unix_socket_without_tls() -> None:
    assert database_url(Path("/tmp/pgcall-ab12"), "relay") == (
        "postgresql://pgcall@%2Ftmp%2Fpgcall-ab12/relay?sslmode=disable")


def test_the_printed_report_options_read_back_as_the_same_peer() -> None:
    peer = PeerOptions("ws://127.0.0.1:9100", "pg-relay", 4242,
                       "host=/tmp/pgcall-ab12 user=pgcall dbname=relay")
    parser = argparse.ArgumentParser()
    add_peer_options(parser)
    args = parser.parse_args(shlex.split(report_options(peer)))
    assert peer_options(parser, args) == peer


@pytest.mark.parametrize("argv", [["--peer-pid", "5"], ["--peer-pg-dsn", "dbname=x"],
                                  ["--peer-dir", ".", "--peer-url", "ws://h:1"]])
def test_peer_options_that_do_not_go_together_are_refused(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    add_peer_options(parser)
    with pytest.raises(SystemExit):
        peer_options(parser, parser.parse_args(argv))


def test_no_peer_options_mean_no_peer() -> None:
    parser = argparse.ArgumentParser()
    add_peer_options(parser)
    assert peer_options(parser, parser.parse_args([])) is None
