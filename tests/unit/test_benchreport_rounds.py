"""The latency over the floor measured in several rounds at one rate: the rounds read back
from the document, the target judged on their median, and the report's table of them."""

from __future__ import annotations

from typing import Any

from benchreport.figures import PEER, PGCALL, added_latency_rounds, latency_rounds
from benchreport.render import render_markdown
from benchreport.targets import rounds_target

from tests.unit.test_benchreport_sidebyside import PEER as PEER_DOC
from tests.unit.test_benchreport_sidebyside import document, step


def latency(p50: float) -> dict[str, float]:
    return {"p50": p50, "p95": 2 * p50, "p99": 4 * p50, "max": 8 * p50}


def floor(calls: int, p50: float, inserted_p50: float | None = None) -> dict[str, Any]:
    """A floor measured in one round trip (``p50`` from the send), or, without
    ``inserted_p50``, as documents before it had it: from the COMMIT's send."""
    lat = latency(p50)
    out = {"calls": calls, "duration_s": 15.0, "rate_per_s": {"video": 300, "audio": 400},
           "frames_sent": 1, "late_sends": 0, "samples": {"video": 1, "audio": 1},
           "resources": {"postgres_cpu_percent": 30.0}}
    if inserted_p50 is None:
        return {**out, "commit_to_decoded_ms": {"video": lat, "audio": lat},
                "insert_to_decoded_ms": {"video": lat, "audio": lat}}
    inserted = latency(inserted_p50)
    return {**out, "sent_to_decoded_ms": {"video": lat, "audio": lat},
            "inserted_to_decoded_ms": {"video": inserted, "audio": inserted}}


def pgcall_at(p50: float, server: str = PGCALL) -> dict[str, Any]:
    s = step(server, 10, 4 * p50, per_frame=(700.0, 500.0))  # p50: a quarter of the p99
    s["role"] = "latency"
    s["resources"]["steal_cpu_percent"] = 12.0
    return s


def doc_with_rounds(extra: list[tuple[float, float, float]]) -> dict[str, Any]:
    """The sweep's round (floor 1.5, pgcall 3.0, peer 5.0 ms), then (floor, pgcall, peer)."""
    doc = document([step(PGCALL, 10, 12.0), step(PEER, 10, 20.0)], PEER_DOC)
    doc["plan"].update({"latency_calls": 10, "latency_rounds": 1 + len(extra),
                        "floor_calls": [10]})
    doc["floor"] = [floor(10, 1.5)]
    doc["latency_rounds"] = [
        {"round": n, "calls": 10, "floor": floor(10, f),
         "steps": [pgcall_at(p), pgcall_at(q, PEER)]}
        for n, (f, p, q) in enumerate(extra, start=2)]
    return doc


def test_every_round_is_read_back_with_each_servers_step() -> None:
    doc = doc_with_rounds([(1.6, 2.6, 4.0), (1.4, 4.4, 6.0)])
    rounds = latency_rounds(doc, 10)
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert [r[PEER]["bench"]["latency_ms"]["p50"] for r in rounds] == [5.0, 4.0, 6.0]
    assert [round(a, 2) for a in added_latency_rounds(doc, 10)] == [1.5, 1.0, 3.0]
    assert latency_rounds(doc, 1) == []  # nothing measured at another rate


def test_the_target_is_judged_on_the_median_of_the_rounds() -> None:
    name, measured, verdict, _ = rounds_target(doc_with_rounds([(1.6, 2.6, 4.0),
                                                                (1.4, 4.4, 6.0)]))
    assert name == "added latency over the floor <= 1.5 ms at p50 at 10 calls"
    assert (measured, verdict) == ("1.500 ms, the median of 3 rounds (1.50, 1.00, 3.00)", "PASS")
    _, measured, verdict, _ = rounds_target(doc_with_rounds([(1.6, 2.6, 4.0),
                                                             (1.4, 3.6, 6.0)]))
    assert (measured, verdict) == ("1.500 ms, the median of 3 rounds (1.50, 1.00, 2.20)", "PASS")
    # One good round does not carry two bad ones.
    _, measured, verdict, _ = rounds_target(doc_with_rounds([(1.6, 3.8, 4.0),
                                                             (1.4, 3.6, 6.0)]))
    assert (measured, verdict) == ("2.200 ms, the median of 3 rounds (1.50, 2.20, 2.20)", "FAIL")
    # Just over is over, and reads so.
    _, measured, verdict, _ = rounds_target(doc_with_rounds([(1.6, 3.8, 4.0),
                                                             (1.4, 2.904, 6.0)]))
    assert (measured, verdict) == ("1.504 ms, the median of 3 rounds (1.50, 2.20, 1.50)", "FAIL")


def test_documents_of_one_round_are_judged_on_the_sweep_alone() -> None:
    doc = doc_with_rounds([])
    del doc["latency_rounds"]  # written before rounds were measured
    assert rounds_target(doc)[1:3] == ("1.500 ms", "PASS")
    assert "rounds" not in render_markdown(doc).split("## The floor")[1].split("##")[0]


def test_the_report_lists_the_rounds_beside_the_peer() -> None:
    md = render_markdown(doc_with_rounds([(1.6, 2.6, 4.0), (1.4, 4.4, 6.0)]))
    section = md.split("### At 10 calls, 3 rounds")[1]
    assert "| round | floor video p50 | pgcall video p50 | pgcall added | " \
           "pgcall CPU per frame µs | steal % | pg-relay video p50 |" in section
    assert "| 3 | 1.40 | 4.4 | 3.0 | 700 | 12 | 6.0 |" in section
    assert "added latency over the floor <= 1.5 ms at p50 at 10 calls" in md


def test_a_floor_sent_in_one_round_trip_is_taken_from_its_send() -> None:
    doc = doc_with_rounds([(1.6, 2.6, 4.0)])
    doc["floor"] = [floor(10, 1.8, inserted_p50=1.1)]  # the sweep's: pgcall 3.0 ms
    doc["latency_rounds"][0]["floor"] = floor(10, 1.2, inserted_p50=0.7)
    assert [round(a, 2) for a in added_latency_rounds(doc, 10)] == [1.2, 1.4]
    section = render_markdown(doc).split("## The floor")[1]
    # sent -> decoded p50, p95, p99, audio p50, then INSERT done -> decoded p50
    assert "| rate of N calls | frames/s | video sent->decoded p50 |" in section
    assert "| 10 | 700 | 1.80 | 3.60 | 7.20 | 1.80 | 1.10 | 30 | 3.0 | 1.2 |" in section
    # Each round also over the floor's part after the INSERT (pgcall 3.0 and 2.6 ms).
    assert "| round | floor video p50 | INSERT done->decoded p50 | pgcall video p50 | " \
           "pgcall added | added over INSERT done |" in section
    assert "| 1 | 1.80 | 1.10 | 3.0 | 1.2 | 1.9 |" in section
    assert "| 2 | 1.20 | 0.70 | 2.6 | 1.4 | 1.9 |" in section


def test_a_floor_of_an_older_document_is_taken_from_its_commit() -> None:
    section = render_markdown(doc_with_rounds([])).split("## The floor")[1]
    assert "| rate of N calls | frames/s | video COMMIT->decoded p50 |" in section
    assert "| 10 | 700 | 1.50 | 3.00 | 6.00 | 1.50 | 1.50 | 30 | 3.0 | 1.5 |" in section
