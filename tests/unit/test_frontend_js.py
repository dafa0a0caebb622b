"""Runs the vanilla frontend's JavaScript unit tests (Node's built-in test runner).

Owns: starting `node --test` on frontends/vanilla/tests/*.test.mjs and failing with node's output
when any of them fails. Does not own the tests themselves; they live next to the modules they test.
"""

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = REPO_ROOT / "frontends" / "vanilla" / "tests"


def test_vanilla_frontend_node_tests() -> None:
    node = shutil.which("node")
    assert node is not None, "node (>= 20) is required to test the vanilla frontend"
    files = sorted(JS_TESTS.glob("*.test.mjs"))
    assert files, f"no *.test.mjs files in {JS_TESTS}"
    # Files are listed explicitly: how `node --test <dir>` expands a directory differs between
    # Node releases (paths in 20, glob patterns from 21 on).
    result = subprocess.run(
        [node, "--test", *(str(f) for f in files)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test failed (exit {result.returncode}):\n{output}"
    # Guard against a runner that silently ran nothing.
    assert "# fail 0" in output
    assert "# pass 0" not in output
