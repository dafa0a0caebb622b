"""Fixtures for the browser tests: a pgcall subprocess per test and one headless Chromium.

Owns: starting ``python -m pgcall`` on a free loopback port against the test's own database
(the ``db_dsn`` fixture of tests/conftest.py), waiting for ``/healthz``, stopping it with
SIGTERM; building the Svelte frontend once when its build is missing; launching the system
Chromium through Playwright with fake camera and microphone; the artifacts directory.
Does not own: what a test does with the pages (test_call.py).

Playwright is used through its sync API, so the tests are plain functions (pytest-trio only
runs ``async def`` tests in trio). No browser is ever downloaded: Playwright is pointed at the
Debian Chromium binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
SVELTE_DIR = REPO / "frontends" / "svelte"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")

# Fake devices: a moving test pattern for the camera and a beep for the microphone; no
# permission prompts; media may start without a click. The rest keeps Chromium quiet and
# offline (no component updates, sync, QUIC probing) and lets it run as root.
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]

HEALTH_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
BUILD_DEADLINE_S = 600.0


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``GET /healthz`` until it answers 200; fail with the server's log otherwise."""
    deadline = time.monotonic() + HEALTH_DEADLINE_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"pgcall exited with {proc.returncode} before it was healthy:\n"
                        f"{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:  # refused while it starts
            last = repr(exc)
        # Polling an external process: there is no event to wait on.
        time.sleep(0.1)
    pytest.fail(f"pgcall was not healthy within {HEALTH_DEADLINE_S:g} s ({last}):\n{_tail(log)}")


@pytest.fixture(scope="session")
def svelte_build() -> Path:
    """frontends/svelte/build, built with ``npm ci && npm run build`` when it is missing."""
    build = SVELTE_DIR / "build"
    if (build / "index.html").is_file():
        return build
    if not (SVELTE_DIR / "package.json").is_file():
        pytest.fail(f"the Svelte frontend is missing: no {SVELTE_DIR / 'package.json'}")
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed, so the Svelte frontend cannot be built "
                    "(install Debian's nodejs and npm, or run .ci/run)")
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        done = subprocess.run([npm, *step], cwd=SVELTE_DIR, capture_output=True, text=True,
                              timeout=BUILD_DEADLINE_S, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).splitlines()[-40:]
            pytest.fail(f"`npm {' '.join(step)}` failed in {SVELTE_DIR} "
                        f"(exit {done.returncode}):\n" + "\n".join(output))
    if not (build / "index.html").is_file():
        pytest.fail(f"`npm run build` succeeded but wrote no {build / 'index.html'}")
    return build


@pytest.fixture(params=["vanilla", "svelte", "static-dir"])
def frontend(request: pytest.FixtureRequest) -> str:
    """Which frontend pgcall serves; svelte makes sure its build exists first.

    ``static-dir`` is ``--frontend PATH`` with a static SvelteKit build made elsewhere: our own
    build copied out of the package, served as any directory of static files is."""
    if request.param in ("svelte", "static-dir"):
        request.getfixturevalue("svelte_build")
    return request.param


@pytest.fixture
def frontend_arg(frontend: str, svelte_build: Path, tmp_path: Path) -> str:
    if frontend != "static-dir":
        return frontend
    elsewhere = tmp_path / "some-static-build"
    shutil.copytree(svelte_build, elsewhere)
    return str(elsewhere)


@pytest.fixture
def pgcall_url(frontend_arg: str, db_dsn: str, tmp_path: Path) -> Iterator[str]:
    """Base URL of a pgcall serving ``frontend`` on its own database; stopped with SIGTERM."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "pgcall.log"
    cmd = [sys.executable, "-m", "pgcall", "--dsn", db_dsn, "--port", str(port),
           "--frontend", frontend_arg]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ})
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"pgcall did not stop within {STOP_DEADLINE_S:g} s of SIGTERM:\n"
                        f"{_tail(log)}")
        # A clean shutdown exits 0; anything else is a server bug worth seeing.
        assert code == 0, f"pgcall exited with {code} after SIGTERM:\n{_tail(log)}"


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver for this module only, so nothing of it outlives the browser tests."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium with fake media devices (never a downloaded browser)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM),
                                                args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ at the top of the repository (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
