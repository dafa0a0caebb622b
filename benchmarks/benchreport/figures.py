"""Reading the figures back out of the JSON document, for the verdicts, the markdown and the
chart; pure functions of the document, nothing here measures.

Owns: number formatting, which server a step measured and how the report names it, finding a
server's steps of a path and a rate's floor, a step's video latency and CPU shares, CPU per
relayed frame, the capacity of a server (the largest N of its ``table`` steps that held, and
the first step that broke) and pgcall's latency added over the floor. Does not own: the
criterion a step is judged by while it runs (``step``) or any wording of the report
(``targets``, ``markdown``, ``findings``, ``sidebyside``).
"""

from __future__ import annotations

from typing import Any

PGCALL, PEER = "pgcall", "peer"


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def server_of(step: dict[str, Any]) -> str:
    """``pgcall`` or ``peer``; documents written before peers were measured hold only pgcall."""
    return step.get("server", PGCALL)


def peer_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    return doc.get("peer")


def label(doc: dict[str, Any], server: str) -> str:
    peer = peer_of(doc)
    return peer["name"] if server == PEER and peer else server


def steps_of(doc: dict[str, Any], media_path: str, server: str = PGCALL) -> list[dict[str, Any]]:
    return sorted((s for s in doc["steps"]
                   if s["media_path"] == media_path and server_of(s) == server),
                  key=lambda s: s["calls"])


def step_at(doc: dict[str, Any], media_path: str, calls: int,
            server: str = PGCALL) -> dict[str, Any] | None:
    return next((s for s in steps_of(doc, media_path, server) if s["calls"] == calls), None)


def floor_at(doc: dict[str, Any], calls: int) -> dict[str, Any] | None:
    return next((f for f in doc["floor"] if f["calls"] == calls), None)


def floor_latency(floor: dict[str, Any], kind: str = "video") -> dict[str, float | None]:
    """The floor's latency: a frame's transaction, sent in one round trip as pgcall sends its
    batches, until it is decoded. Documents before the one-round-trip writer measured from the
    COMMIT's send, after a round trip of its own for the INSERT: their ``commit_to_decoded``."""
    found = floor.get("sent_to_decoded_ms") or floor["commit_to_decoded_ms"]
    return found[kind]


def floor_p50(floor: dict[str, Any], key: str, kind: str = "video") -> float | None:
    """The p50 of one of the floor's latencies (``key`` in the document), None without it."""
    return (floor.get(key) or {}).get(kind, {}).get("p50")


def floor_in_one_trip(doc: dict[str, Any]) -> bool:
    """Whether the document's floor was measured with the one-round-trip writer."""
    return any("sent_to_decoded_ms" in f for f in doc["floor"])


def video(step: dict[str, Any] | None, q: str) -> float | None:
    if step is None or step["bench"] is None:
        return None
    return step["bench"]["latency_ms"][q]


def capacity(doc: dict[str, Any], server: str = PGCALL) -> tuple[int, dict[str, Any] | None]:
    """The largest N of a server's table path with the criterion held, and the first step
    that broke."""
    table = steps_of(doc, "table", server)
    held = [s["calls"] for s in table if s["holds"]]
    broke = next((s for s in table if not s["holds"]), None)
    return (max(held) if held else 0), broke


def added_latency(doc: dict[str, Any], calls: int) -> float | None:
    """pgcall's video p50 over the floor's p50 at the same rate (the sweep's step, round 1 of
    ``latency_rounds``)."""
    floor = floor_at(doc, calls)
    return None if floor is None else added_in_round(
        {"floor": floor, PGCALL: step_at(doc, "table", calls)})


def latency_rounds(doc: dict[str, Any], calls: int) -> list[dict[str, Any]]:
    """Each measurement of the floor and the servers at ``calls``: the sweep's (round 1), then
    the repeated rounds; each ``{"round", "floor", PGCALL: step, PEER: step}`` (a server
    missing where not measured)."""
    out = []
    floor = floor_at(doc, calls)
    if floor is not None:
        first = {"round": 1, "floor": floor, PGCALL: step_at(doc, "table", calls),
                 PEER: step_at(doc, "table", calls, PEER)}
        out.append({k: v for k, v in first.items() if v is not None})
    for r in doc.get("latency_rounds", []):
        if r["calls"] == calls:
            out.append({"round": r["round"], "floor": r["floor"],
                        **{server_of(s): s for s in r["steps"]}})
    return out


def added_in_round(r: dict[str, Any]) -> float | None:
    """pgcall's video p50 over the floor's video p50 (``floor_latency``) in one round."""
    p50, floor = video(r.get(PGCALL), "p50"), floor_latency(r["floor"])["p50"]
    return None if p50 is None or floor is None else p50 - floor


def added_latency_rounds(doc: dict[str, Any], calls: int) -> list[float]:
    """pgcall's added latency at ``calls`` in every round that measured it."""
    return [a for a in map(added_in_round, latency_rounds(doc, calls)) if a is not None]


def cpu(step: dict[str, Any], name: str) -> float | None:
    """% of one core of ``name`` (``postgres``, ``bench``, or the server: ``server``)."""
    if name == "server":
        name = server_of(step)
    return step["resources"].get(f"{name}_cpu_percent")


def cpu_total(step: dict[str, Any]) -> float:
    return sum(cpu(step, n) or 0.0 for n in ("server", "postgres", "bench"))


def cpu_per_frame(step: dict[str, Any] | None, name: str) -> float | None:
    """µs of CPU per frame received by the clients over the whole step, of ``name``
    (``server``: the relay's process tree; ``postgres``: its whole cluster; ``bench``)."""
    if step is None:
        return None
    if name == "server":
        name = server_of(step)
    return step.get("cpu_per_frame_us", {}).get(name)


def per_frame_us(step: dict[str, Any], name: str) -> float | None:
    """µs of CPU per frame sent, from the CPU share over the window when every call streams."""
    share, rate = cpu(step, name), step.get("frames_per_s")
    return None if share is None or not rate else share / 100 * 1e6 / rate


def resources_text(step: dict[str, Any], cores: int, doc: dict[str, Any] | None = None) -> str:
    name = server_of(step) if doc is None else label(doc, server_of(step))
    return (f"{name} {fmt(cpu(step, 'server'), 0)} %, PostgreSQL "
            f"{fmt(cpu(step, 'postgres'), 0)} %, load generator {fmt(cpu(step, 'bench'), 0)} % "
            f"of a core (together {cpu_total(step):.0f} % of the machine's {100 * cores} %)")
