"""The report's CPU accounting: ``/proc`` text to ticks, process trees, the postmaster's pid,
CPU per relayed frame, and the sampled windows without a WAL connection."""

from __future__ import annotations

import pytest
from benchreport.proc import (
    cpu_seconds,
    is_postgres,
    parse_stat,
    per_frame_us,
    postmaster_pid,
    steal_ticks,
    tree_ticks,
)
from benchreport.sampling import CLK_TCK, summarize_samples


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, cutime: int = 0,
              cstime: int = 0) -> bytes:
    """A ``/proc/PID/stat`` line as Linux writes it (52 fields; the rest are zeros)."""
    fields = ["S", str(ppid), str(pid), str(pid), "0", "-1", "4194560", "120", "0", "0", "0",
              str(utime), str(stime), str(cutime), str(cstime), "20", "0", "1", "0", "178349"]
    fields += ["0"] * (50 - len(fields))
    return f"{pid} ({comm}) {' '.join(fields)}\n".encode()


# --- /proc/PID/stat ------------------------------------------------------------------------


def test_parse_stat_reads_parent_own_and_reaped_ticks() -> None:
    assert parse_stat(stat_line(42, "postgres", 7, 150, 30, 11, 4)) == (7, 180, 15)


def test_parse_stat_of_a_real_line() -> None:
    line = (b"1450 (cat) R 1447 1447 15395 0 -1 4194304 98 0 0 0 3 2 1 1 20 0 1 0 178349 "
            b"3133440 362 18446744073709551615 94156960706560 94156960726441 140737235349840 "
            b"0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94156960742448 94156960744064 94157187325952 "
            b"140737235356368 140737235356388 140737235356388 140737235357675 0\n")
    assert parse_stat(line) == (1447, 5, 2)


@pytest.mark.parametrize("comm", ["node server", "a) (b", "x) S 99 (y", ")"])
def test_parse_stat_is_not_fooled_by_the_command_name(comm: str) -> None:
    # The name is the only field that may hold spaces and parentheses; it ends at the last ")".
    assert parse_stat(stat_line(5, comm, 3, 10, 20, 1, 2)) == (3, 30, 3)


# --- process trees -------------------------------------------------------------------------


TABLE = {
    1: (0, 1000, 0),  # init: not part of any tree below
    10: (1, 100, 40),  # the relay, 40 ticks of children it already reaped
    11: (10, 7, 0),  # a child
    12: (11, 3, 2),  # a grandchild
    20: (1, 500, 0),  # unrelated
}


def test_tree_ticks_sums_a_process_and_all_its_descendants_living_and_reaped() -> None:
    assert tree_ticks(TABLE, 10) == 100 + 40 + 7 + 3 + 2
    assert tree_ticks(TABLE, 11) == 7 + 3 + 2
    assert tree_ticks(TABLE, 20) == 500


def test_tree_ticks_of_a_process_that_is_gone_is_none() -> None:
    assert tree_ticks(TABLE, 99) is None


def test_tree_ticks_survives_a_cycle_from_reused_pids() -> None:
    assert tree_ticks({5: (6, 1, 0), 6: (5, 2, 0)}, 5) == 3


# --- the postmaster ------------------------------------------------------------------------


def test_postmaster_pid_is_the_first_line_of_postmaster_pid() -> None:
    pidfile = ("28787\n/srv/pg/data\n1764419000\n5432\n/run/postgresql\n\n"
               "  5432001    123\nready   \n")
    assert postmaster_pid(pidfile) == 28787


@pytest.mark.parametrize("text", ["", "\n28787\n", "pg 28787\n"])
def test_postmaster_pid_refuses_what_is_not_a_pid_file(text: str) -> None:
    with pytest.raises(ValueError):
        postmaster_pid(text)


def test_is_postgres_knows_the_server_and_nothing_else() -> None:
    assert is_postgres("postgres\n") and is_postgres("postmaster")
    assert not is_postgres("node") and not is_postgres("postgres-exporter") and not is_postgres("")


# --- CPU over a step, per relayed frame ----------------------------------------------------


def test_cpu_seconds_are_the_tick_differences() -> None:
    before = {"peer": 1000, "postgres": 400}
    after = {"peer": 1700, "postgres": 650}
    assert cpu_seconds(before, after, 100) == {"peer": 7.0, "postgres": 2.5}


def test_cpu_seconds_of_a_process_missing_from_either_reading_is_none() -> None:
    assert cpu_seconds({"a": None, "b": 5, "c": 5}, {"a": 9, "b": None}, 100) == {
        "a": None, "b": None, "c": None}


def test_per_frame_divides_by_the_frames_received() -> None:
    # 7 s of relay CPU for 10,000 frames received: 700 µs a frame.
    assert per_frame_us({"peer": 7.0, "postgres": 2.5}, 10_000) == {"peer": 700.0,
                                                                     "postgres": 250.0}


def test_per_frame_without_frames_or_seconds_is_none() -> None:
    assert per_frame_us({"peer": 7.0}, 0) == {"peer": None}
    assert per_frame_us({"peer": 7.0}, None) == {"peer": None}
    assert per_frame_us({"peer": None}, 100) == {"peer": None}


# --- /proc/stat ----------------------------------------------------------------------------


def test_steal_is_the_eighth_number_of_the_cpu_line() -> None:
    text = ("cpu  4633151 93054 1968410 8214868 129394 0 95514 122899 0 0\n"
            "cpu0 2316575 46527 984205 4107434 64697 0 47757 61449 0 0\n")
    assert steal_ticks(text) == 122899


@pytest.mark.parametrize("text", ["", "cpu0 1 2 3 4 5 6 7 8\n", "cpu  1 2 3 4 5 6 7\n"])
def test_steal_without_the_machines_count_is_none(text: str) -> None:
    assert steal_ticks(text) is None


# --- sampled windows -----------------------------------------------------------------------


def test_steal_is_summarized_as_a_share_of_one_core() -> None:
    samples = [{"t": 0.0, "ticks": {"pgcall": 0, "steal": 1000}, "rss_kib": None, "wal": None},
               {"t": 2.0, "ticks": {"pgcall": 0, "steal": 1000 + CLK_TCK // 5},
                "rss_kib": None, "wal": None}]
    assert summarize_samples(samples, 0.0, 2.0)["steal_cpu_percent"] == pytest.approx(10.0)


def test_a_window_without_wal_readings_has_cpu_and_no_wal_rate() -> None:
    samples = [{"t": 0.0, "ticks": {"peer": 0}, "rss_kib": None, "wal": None},
               {"t": 1.0, "ticks": {"peer": 50}, "rss_kib": None, "wal": None},
               {"t": 2.0, "ticks": {"peer": 100}, "rss_kib": None, "wal": None}]
    out = summarize_samples(samples, 0.0, 2.0)
    assert "wal_bytes_per_s" not in out
    assert out["peer_cpu_percent"] == pytest.approx(100 * 100 / CLK_TCK / 2.0, abs=0.1)


def test_a_window_with_wal_readings_has_the_wal_rate() -> None:
    samples = [{"t": 0.0, "ticks": {}, "rss_kib": 2048, "wal": 1000},
               {"t": 2.0, "ticks": {}, "rss_kib": 4096, "wal": 5000}]
    out = summarize_samples(samples, 0.0, 2.0)
    assert out["wal_bytes_per_s"] == 2000
    assert (out["rss_mib_max"], out["rss_mib_end"]) == (4.0, 4.0)
