"""The measuring scripts' ``--tree NAME=DIR`` and ``--python NAME=INTERPRETER`` options: each
tree with the interpreter that runs its pgcall, and a clear error for a spec that names no
tree or no interpreter."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from benchreport.standalone import HERE
from benchreport.trees import Tree, add_tree_option, trees_of


def parse(argv: list[str]) -> dict[str, Tree]:
    parser = argparse.ArgumentParser(prog="measure")
    add_tree_option(parser)
    return trees_of(parser, parser.parse_args(argv))


def test_no_tree_is_this_checkout_on_this_interpreter() -> None:
    assert parse([]) == {"this": Tree(HERE, sys.executable)}


def test_each_tree_on_its_own_interpreter(tmp_path: Path) -> None:
    exe = tmp_path / "python"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    trees = parse(["--tree", f"now={HERE}", "--tree", f"opt={HERE}", "--python", f"opt={exe}"])
    assert trees == {"now": Tree(HERE, sys.executable), "opt": Tree(HERE, str(exe))}


@pytest.mark.parametrize(("argv", "message"), [
    (["--tree", "now"], "--tree now: give NAME=DIR"),
    (["--tree", "now=/nowhere"], "--tree now=/nowhere: give NAME=DIR"),
    (["--tree", f"now={HERE}", "--python", f"other={sys.executable}"],
     "NAME one of the --tree names"),
    (["--tree", f"now={HERE}", "--python", "now=/nowhere/python"],
     "/nowhere/python is not an executable file"),
])
def test_a_bad_spec_is_a_one_line_usage_error(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
