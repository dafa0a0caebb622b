"""The ``--tree NAME=DIR`` option of the scripts that measure one source tree of pgcall
against another (``cpu_per_frame.py``, ``cpu_profile.py``, ``overload.py``,
``task_steps.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .standalone import HERE


def add_tree_option(parser: argparse.ArgumentParser, verb: str = "measure") -> None:
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help=f"a source tree of pgcall to {verb} (repeat to compare)")


def trees_of(parser: argparse.ArgumentParser, specs: list[str]) -> dict[str, Path]:
    """``--tree NAME=DIR`` options by name; none: this checkout, as ``this``."""
    trees = {}
    for spec in specs or [f"this={HERE}"]:
        name, sep, path = spec.partition("=")
        if not sep or not (Path(path) / "pgcall" / "__init__.py").is_file():
            parser.error(f"--tree {spec}: give NAME=DIR, DIR a source tree of pgcall")
        trees[name] = Path(path).resolve()
    return trees
