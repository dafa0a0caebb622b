"""Numbers out of the Prometheus text format pgcall's ``/metrics`` answers with. Pure.

Owns: parsing the text into series (``name{labels}`` -> value), the sum of a metric's series,
and the growth of named metrics between two scrapes. Does not own: fetching it (``metrics``).
"""

from __future__ import annotations

from collections.abc import Iterable

Series = dict[str, float]


def parse(text: str) -> Series:
    """Every sample line (``name{labels} value [timestamp]``); comments and blanks skipped."""
    out: Series = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # Label values may hold spaces: the series ends at the closing brace when there is one.
        end = line.rindex("}") + 1 if "}" in line else line.index(" ")
        fields = line[end:].split()
        if fields:
            out[line[:end]] = float(fields[0])
    return out


def total(series: Series, name: str) -> float:
    """The sum of every series of metric ``name``, whatever its labels."""
    return sum(v for key, v in series.items() if key.split("{", 1)[0] == name)


def growth(before: Series, after: Series, names: Iterable[str]) -> dict[str, float]:
    """How much each named metric (summed over its labels) grew between two scrapes."""
    return {name: total(after, name) - total(before, name) for name in names}
