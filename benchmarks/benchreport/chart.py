"""The chart of a run, ``benchmarks.png``: video p50 and p99 of pgcall's two media paths, of
the peer (when the run measured one) and of the floor, and the slowest stream's fps, against
the number of calls, with the capacity limits.

Owns: the matplotlib figure (matplotlib is imported only here, when a chart is drawn). Does not
own: any figure it plots (the JSON document, through ``figures``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .figures import PEER, PGCALL, floor_latency, label, steps_of, video
from .settings import MAX_P99_MS, MIN_FPS, VIDEO_FPS


def render_chart(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    lines = [("table", PGCALL, "pgcall table", "tab:blue"),
             ("message", PGCALL, "pgcall message", "tab:orange"),
             ("table", PEER, label(doc, PEER), "tab:green")]
    for path_name, server, name, color in lines:
        steps = [s for s in steps_of(doc, path_name, server) if s["bench"] is not None]
        if not steps:
            continue
        x = [s["calls"] for s in steps]
        for q, style in (("p50", "-o"), ("p99", "--s")):
            top.plot(x, [video(s, q) for s in steps], style, color=color, label=f"{name} {q}")
        bottom.plot(x, [s["bench"]["fps"]["min"] for s in steps], "-o", color=color,
                    label=f"{name}: slowest stream")
    floors = sorted(doc["floor"], key=lambda f: f["calls"])
    if floors:
        x = [f["calls"] for f in floors]
        for q, style in (("p50", ":"), ("p99", "-.")):
            top.plot(x, [floor_latency(f)[q] for f in floors], style,
                     color="gray", marker="x", label=f"floor {q} (no pgcall)")
    calls = sorted({s["calls"] for s in doc["steps"]} | {f["calls"] for f in floors})
    bottom.set_xticks(calls)
    top.axhline(MAX_P99_MS, color="red", linewidth=0.8, label=f"p99 limit {MAX_P99_MS:g} ms")
    bottom.axhline(MIN_FPS, color="red", linewidth=0.8, label=f"{MIN_FPS:g} fps")
    top.set_yscale("log")
    top.set_ylabel("video latency, ms (log)")
    bottom.set_ylabel("delivered fps, slowest stream")
    bottom.set_xlabel("calls (2 clients each, 15 fps video + audio both ways)")
    bottom.set_ylim(0, VIDEO_FPS + 1)
    who = "pgcall" + (f" and {label(doc, PEER)}" if doc.get("peer") else "")
    title = f"{who} on {doc['machine']['cores']} cores, {doc['date_utc']} UTC"
    top.set_title(title + (" (quick check run)" if doc["quick"] else ""))
    for ax in (top, bottom):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
