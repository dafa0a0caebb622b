"""Where a relay's time goes, from a sampling profile: pure functions over py-spy's ``raw``
output (one line per distinct stack, ``frame;frame;...;frame COUNT``, root first).

Owns: the parts of the path of a frame a sample is charged to, and the shares. A sample goes
to the part of the frame nearest its leaf that belongs to one (so a socket write under the
WebSocket layer is the WebSocket's, a libpq call under the frame writer is the INSERT's);
one with none but trio's frames is the scheduler's. Files are matched by their names, so a
profile of an older layout of the package is charged the same way. Does not own: running
py-spy (``benchmarks/cpu_profile.py``).
"""

from __future__ import annotations

import collections
import re

PARTS = (
    ("frame INSERT (frame writer, pool, libpq)",
     ("framewriter.py", "store.py", "pool.py", "mediamsg.py")),
    ("replication stream and pgoutput decoding",
     ("stream.py", "pgoutput.py", "walproto.py", "changes.py", "values.py", "replication.py")),
    ("hub: routing, fan-out, outboxes", ("hub.py", "mirror.py", "outbox.py", "router.py",
                                         "forwarding.py", "speaker.py")),
    ("session: parsing, checks, JSON", ("session.py", "protocol.py", "encode.py",
                                        "ratelimit.py", "rowjson.py", "fields.py", "/json/")),
    ("WebSocket: frames in and out, sockets", ("websocket.py", "frameguard.py", "masking.py",
                                               "frontdoor.py", "/wsproto/", "/hypercorn/",
                                               "httpserver.py", "web.py")),
)
SCHEDULER = "trio: scheduler, epoll, task switches"
OTHER = "other"
_FILE = re.compile(r"\(([^():]+)(?::\d+)?\)$")


def _file(frame: str) -> str:
    m = _FILE.search(frame)
    return "/" + m.group(1) if m else ""


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        path = _file(frame)
        for name, files in PARTS:
            if any(path.endswith(f) if not f.startswith("/") else f in path for f in files):
                return name
    if any("/trio/" in _file(frame) for frame in stack):
        return SCHEDULER
    return OTHER


def parse_raw(text: str) -> list[tuple[list[str], int]]:
    out = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def shares(samples: list[tuple[list[str], int]]) -> dict[str, float]:
    """Percent of the samples per part, in the order of ``PARTS`` then the scheduler, other."""
    counts: collections.Counter[str] = collections.Counter()
    for stack, n in samples:
        counts[part_of(stack)] += n
    total = sum(counts.values()) or 1
    order = [name for name, _ in PARTS] + [SCHEDULER, OTHER]
    return {name: round(100.0 * counts[name] / total, 1) for name in order}


def top_self(samples: list[tuple[list[str], int]], n: int = 12) -> list[tuple[str, float]]:
    """The functions most often at the leaf (their own time), with their percent."""
    counts: collections.Counter[str] = collections.Counter()
    for stack, k in samples:
        leaf = stack[-1]
        counts[leaf.split(" (")[0] + " (" + _file(leaf).rsplit("/", 1)[-1] + ")"] += k
    total = sum(counts.values()) or 1
    return [(name, round(100.0 * k / total, 1)) for name, k in counts.most_common(n)]
