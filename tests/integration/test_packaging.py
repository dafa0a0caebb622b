"""The shipped artefact: build ``pgcall.pyz`` with build.py, run it, load a page, stop it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgcall import __version__
from tests.integration.test_startup import (
    Pgcall,
    assert_serves,
    free_port,
    postmasters_of,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, str(REPO / "build.py"), "--skip-frontends", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = out / "pgcall.pyz"
    assert built.is_file()
    assert f"built {built}" in proc.stdout
    return built


@pytest.fixture(scope="module")
def shiv_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment to run the pyz in: it unpacks into a directory of the test's own."""
    return {**os.environ, "SHIV_ROOT": str(tmp_path_factory.mktemp("shiv-root"))}


def run_pyz(pyz: Path, env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(pyz), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_pyz_is_an_executable_zip(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(pyz) as zf:
        names = set(zf.namelist())
    for required in ("site-packages/pgcall/__main__.py",
                     "site-packages/pgcall/sql/0001_initial.sql",
                     "site-packages/pgcall/frontends/vanilla/index.html",
                     "site-packages/trio/__init__.py",
                     "site-packages/psycopg/__init__.py",
                     "site-packages/hypercorn/__init__.py"):
        assert required in names, required
    # Only what is served travels: no test files, no node_modules.
    assert not any("/node_modules/" in n or "/vanilla/tests/" in n for n in names)


def test_pyz_help(pyz: Path, shiv_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_pyz(pyz, shiv_env, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: pgcall")


def test_pyz_version(pyz: Path, shiv_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_pyz(pyz, shiv_env, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"pgcall {__version__}"


def test_pyz_bad_argument(pyz: Path, shiv_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_pyz(pyz, shiv_env, "--port", "70000", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--port" in proc.stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pgc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_pyz_serves_on_embedded_postgres(pyz: Path, shiv_env: dict[str, str], tmp_path: Path,
                                         data_dir: Path) -> None:
    p = Pgcall(data_dir, free_port(), tmp_path / "pyz.log",
               command=(sys.executable, str(pyz)), cwd=tmp_path, env=shiv_env)
    try:
        p.wait_ready()
        assert_serves(p)
        # The frontend is served from the unpacked pyz, not from this working tree.
        ready = [line for line in p.stderr.splitlines() if "pgcall ready on" in line]
        assert len(ready) == 1, p.stderr
        assert shiv_env["SHIV_ROOT"] in ready[0]
        assert p.stop(signal.SIGTERM) == 0
        assert postmasters_of(data_dir) == []
        assert "Traceback" not in p.stderr
    finally:
        p.close()
