"""Fixtures for the browser tests: a pgcall subprocess per test and one headless Chromium.

Owns: starting ``python -m pgcall`` on a free loopback port against the test's own database
(the ``db_dsn`` fixture of tests/conftest.py), waiting for ``/healthz``, stopping it with
SIGTERM; building the Svelte frontend once when its build is missing or older than its
sources; launching the system
Chromium through Playwright with fake cameras, microphones and screen; one page per person
(``alice``, ``bob``, and ``carol`` for rooms); the artifacts directory.
Does not own: what a test does with the pages (test_call.py, test_call_features.py,
test_rooms.py) or the steps they share (people.py).

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

from tests.browser.people import Person, open_person

REPO = Path(__file__).resolve().parents[2]
SVELTE_DIR = REPO / "frontends" / "svelte"
VANILLA_LIB = REPO / "frontends" / "vanilla" / "lib"
SVELTE_CONFIG_FILES = ("package.json", "package-lock.json", "svelte.config.js", "vite.config.js")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")

# Fake devices: two cameras showing a moving test pattern (so switching cameras switches
# something) and microphones playing a beep; no permission prompts, which also makes
# getDisplayMedia pick a fake 1280x720 screen at once; media may start without a click. The rest
# keeps Chromium quiet and offline (no component updates, sync, QUIC probing) and lets it run as
# root.
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream=device-count=2",
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


def _newest_source_mtime() -> float:
    """The newest modification time among the files a Svelte build is made from."""
    roots = [SVELTE_DIR / "src", SVELTE_DIR / "static", VANILLA_LIB]
    files = [f for root in roots if root.is_dir() for f in root.rglob("*") if f.is_file()]
    files += [SVELTE_DIR / n for n in SVELTE_CONFIG_FILES if (SVELTE_DIR / n).is_file()]
    return max((f.stat().st_mtime for f in files), default=0.0)


def svelte_build_is_current(build: Path) -> bool:
    """Whether build/ exists and is newer than every source it was made from (the app imports
    the vanilla frontend's lib/, so a change there needs a new build too)."""
    index = build / "index.html"
    return index.is_file() and index.stat().st_mtime >= _newest_source_mtime()


@pytest.fixture(scope="session")
def svelte_build() -> Path:
    """frontends/svelte/build, (re)built with ``npm ci && npm run build`` when it is missing or
    older than its sources."""
    build = SVELTE_DIR / "build"
    if svelte_build_is_current(build):
        return build
    if not (SVELTE_DIR / "package.json").is_file():
        pytest.fail(f"the Svelte frontend is missing: no {SVELTE_DIR / 'package.json'}")
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed, so the Svelte frontend cannot be built "
                    "(install Debian's nodejs and npm, or run .ci/run)")
    steps = [["run", "build"]]
    installed = SVELTE_DIR / "node_modules" / ".package-lock.json"
    lock = SVELTE_DIR / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        steps.insert(0, ["ci", "--no-audit", "--no-fund"])
    for step in steps:
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


@pytest.fixture
def alice(browser: Browser, pgcall_url: str) -> Iterator[Person]:
    """A page of its own (own context, own identity) on the test's pgcall."""
    yield from open_person(browser, pgcall_url, "alice")


@pytest.fixture
def bob(browser: Browser, pgcall_url: str) -> Iterator[Person]:
    yield from open_person(browser, pgcall_url, "bob")


@pytest.fixture
def carol(browser: Browser, pgcall_url: str) -> Iterator[Person]:
    """A third person, for rooms."""
    yield from open_person(browser, pgcall_url, "carol")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ at the top of the repository (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
