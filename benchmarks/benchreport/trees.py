"""The ``--tree NAME=DIR`` and ``--python NAME=INTERPRETER`` options of the scripts that
measure one source tree of pgcall against another (``cpu_per_frame.py``, ``cpu_profile.py``,
``overload.py``, ``task_steps.py``).

A tree's pgcall runs on this script's own interpreter unless ``--python`` names another for
it: the same source on two builds of CPython (``--tree now=. --tree now-opt=. --python
now-opt=/some/venv/bin/python``) tells the interpreter's share from the code's. That
interpreter needs pgcall's dependencies (a virtualenv made from it, with ``pip install -e
.`` done there); the tree's own source comes first on its path. The load generator always
runs on this script's interpreter, so every tree gets the same load.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .standalone import HERE, Tree


def add_tree_option(parser: argparse.ArgumentParser, verb: str = "measure") -> None:
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help=f"a source tree of pgcall to {verb} (repeat to compare)")
    parser.add_argument("--python", action="append", default=[], metavar="NAME=INTERPRETER",
                        help="run tree NAME's pgcall on this Python (default: this script's)")


def trees_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Tree]:
    """``--tree NAME=DIR`` options by name, each with its ``--python``; none: this checkout,
    as ``this``."""
    paths = {}
    for spec in args.tree or [f"this={HERE}"]:
        name, sep, path = spec.partition("=")
        if not sep or not (Path(path) / "pgcall" / "__init__.py").is_file():
            parser.error(f"--tree {spec}: give NAME=DIR, DIR a source tree of pgcall")
        paths[name] = Path(path).resolve()
    interpreters: dict[str, str] = {}
    for spec in args.python:
        name, sep, exe = spec.partition("=")
        if not sep or name not in paths:
            parser.error(f"--python {spec}: give NAME=INTERPRETER, NAME one of the --tree names")
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            parser.error(f"--python {spec}: {exe} is not an executable file")
        interpreters[name] = exe
    return {name: Tree(path, interpreters.get(name, sys.executable))
            for name, path in paths.items()}
