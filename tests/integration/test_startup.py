"""Start-up and shutdown of the real ``pgcall`` command with its embedded PostgreSQL.

Each test runs ``python -m pgcall`` as a subprocess on a data directory of its own and watches
it from outside: readiness through ``GET /healthz``, the embedded server through ``/proc``.
Finding the PostgreSQL binaries is tested in-process, with the search root redirected.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgcall import cli
from pgcall.pg import binaries
from pgcall.pg.binaries import INSTALL_HINT, BinariesNotFound, find_bindir

REPO = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 60.0  # initdb on a busy 2-core machine can take a while
STOP_DEADLINE_S = 5.0
CREATING = "creating the embedded PostgreSQL cluster"


# -- helpers: ports, HTTP, processes -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # a zombie has stopped running


def postmasters_of(data_dir: Path) -> list[int]:
    """Live ``postgres`` server processes whose command line names ``data_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if (Path(argv[0].decode(errors="replace")).name == "postgres"
                and any(str(data_dir).encode() in arg for arg in argv[1:])
                and alive(int(entry.name))):
            found.append(int(entry.name))
    return found


def cluster_processes(data_dir: Path) -> set[int]:
    """The postmaster of ``data_dir`` and its children (checkpointer, walwriter, ...)."""
    masters = set(postmasters_of(data_dir))
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] in masters:
                children.add(int(entry.name))
    return masters | children


def wait_until_gone(pids: set[int], deadline_s: float) -> set[int]:
    """Poll until none of ``pids`` runs any more; returns those still running at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        left = {pid for pid in pids if alive(pid)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


PGCALL = (sys.executable, "-m", "pgcall")


class Pgcall:
    """One pgcall server process; its stderr goes to a file so it can never block."""

    def __init__(self, data_dir: Path, port: int, log_path: Path, *extra: str,
                 command: tuple[str, ...] = PGCALL, cwd: Path = REPO,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [*command, "--data-dir", str(data_dir), "--port", str(port), *extra],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    @property
    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline_s: float = READY_DEADLINE_S) -> None:
        """Poll ``/healthz`` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + deadline_s
        while True:
            code = self.proc.poll()
            assert code is None, f"pgcall exited with {code} before it was ready:\n{self.stderr}"
            try:
                status, _ = http_get(self.port, "/healthz", timeout=2.0)
            except OSError:
                status = 0
            if status == 200:
                return
            assert time.monotonic() < deadline, f"pgcall not ready in time:\n{self.stderr}"
            time.sleep(0.05)

    def stop(self, sig: signal.Signals, deadline_s: float = STOP_DEADLINE_S) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pgcall did not exit within {deadline_s} s of {sig.name}:\n"
                        f"{self.stderr}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # A short path under /tmp, removed afterwards; pgcall hands it to the server's user itself.
    path = Path(tempfile.mkdtemp(prefix="pgc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Pgcall]]:
    started: list[Pgcall] = []

    def start(data_dir: Path, port: int | None = None, *extra: str) -> Pgcall:
        log_path = tmp_path / f"pgcall-{len(started)}.log"
        p = Pgcall(data_dir, free_port() if port is None else port, log_path, *extra)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            p.close()


def socket_dir_of(data_dir: Path) -> Path:
    # postmaster.pid, line 5: the Unix socket directory (PostgreSQL docs, "Database File
    # Layout"; LOCK_FILE_LINE_SOCKET_DIR in src/include/utils/pidfile.h).
    return Path((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[4])


# -- start, serve, stop --------------------------------------------------------------------


def assert_serves(p: Pgcall) -> None:
    status, body = http_get(p.port, "/healthz")
    assert status == 200
    detail = json.loads(body)
    assert (detail["status"], detail["database"]) == ("ok", "up")
    status, body = http_get(p.port, "/")
    assert status == 200
    assert b"<html" in body.lower()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_start_serve_and_stop(launch, data_dir: Path, sig: signal.Signals) -> None:
    p = launch(data_dir)
    p.wait_ready()
    assert_serves(p)
    cluster = cluster_processes(data_dir)
    assert len(postmasters_of(data_dir)) == 1
    assert len(cluster) > 1  # the postmaster and its background processes

    assert p.stop(sig) == 0
    # pgcall waits for its server before exiting: nothing of the cluster may be left.
    assert postmasters_of(data_dir) == []
    assert {pid for pid in cluster if alive(pid)} == set()
    assert CREATING in p.stderr
    assert "Traceback" not in p.stderr
    assert not (data_dir / "pg" / "postmaster.pid").exists()  # a clean shutdown


@pytest.mark.slow
def test_second_run_reuses_the_cluster(launch, data_dir: Path) -> None:
    first = launch(data_dir)
    first.wait_ready()
    assert first.stop(signal.SIGTERM) == 0
    assert CREATING in first.stderr
    version = (data_dir / "pg" / "PG_VERSION").read_text()
    system_id = (data_dir / "pg" / "global" / "pg_control").stat().st_ino

    second = launch(data_dir)
    second.wait_ready()
    assert_serves(second)
    assert CREATING not in second.stderr
    assert (data_dir / "pg" / "PG_VERSION").read_text() == version
    assert (data_dir / "pg" / "global" / "pg_control").stat().st_ino == system_id
    assert second.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_second_pgcall_on_the_same_data_dir(launch, data_dir: Path) -> None:
    first = launch(data_dir)
    first.wait_ready()

    second = launch(data_dir)
    assert second.proc.wait(timeout=30) == 1
    lines = second.stderr.splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("pgcall: error: ")
    assert "in use" in lines[0]
    assert str(first.proc.pid) in lines[0]  # the lock file names the owner

    # The first one did not notice.
    assert_serves(first)
    assert len(postmasters_of(data_dir)) == 1
    assert first.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_kill_9_takes_the_server_with_it(launch, data_dir: Path) -> None:
    p = launch(data_dir)
    p.wait_ready()
    cluster = cluster_processes(data_dir)
    (master,) = postmasters_of(data_dir)
    sockets = socket_dir_of(data_dir)
    try:
        p.proc.kill()
        assert p.proc.wait(timeout=STOP_DEADLINE_S) == -signal.SIGKILL
        # The kernel sends the server SIGINT (PR_SET_PDEATHSIG); a fast shutdown follows.
        assert wait_until_gone({master}, 30.0) == set()
        assert wait_until_gone(cluster, 10.0) == set()
        assert postmasters_of(data_dir) == []
    finally:
        shutil.rmtree(sockets, ignore_errors=True)  # pgcall had no chance to remove it

    # The lock died with its holder: the data directory is usable again.
    again = launch(data_dir)
    again.wait_ready()
    assert CREATING not in again.stderr
    assert again.stop(signal.SIGTERM) == 0


def test_busy_port_is_reported_before_the_database_starts(launch, data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        p = launch(data_dir / "never", busy.getsockname()[1])
        assert p.proc.wait(timeout=30) == 1
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("pgcall: error: cannot listen")
    assert not (data_dir / "never").exists()


# -- finding the binaries ------------------------------------------------------------------


def _fake_bindir(path: Path, *names: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = path / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    return path


@pytest.fixture
def debian_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Redirect ``find_bindir``'s Debian search root (/usr/lib/postgresql) into tmp_path."""
    fake = tmp_path / "usr-lib-postgresql"
    monkeypatch.setattr(binaries, "DEBIAN_ROOT", fake)
    return fake


def test_bindir_from_path(tmp_path: Path, debian_root: Path) -> None:
    bindir = _fake_bindir(tmp_path / "pg" / "bin", "initdb", "postgres")
    assert find_bindir(f"{tmp_path / 'empty'}:{bindir}") == bindir


def test_bindir_through_a_symlinked_initdb(tmp_path: Path, debian_root: Path) -> None:
    # Debian puts only a link to initdb on PATH; postgres sits beside the link's target.
    bindir = _fake_bindir(tmp_path / "lib" / "16" / "bin", "initdb", "postgres")
    on_path = tmp_path / "usr-bin"
    on_path.mkdir()
    (on_path / "initdb").symlink_to(bindir / "initdb")
    assert find_bindir(str(on_path)) == bindir


def test_bindir_from_pg_config(tmp_path: Path, debian_root: Path) -> None:
    bindir = _fake_bindir(tmp_path / "opt" / "bin", "initdb", "postgres")
    tools = tmp_path / "tools"
    tools.mkdir()
    pg_config = tools / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho '{bindir}'\n")
    pg_config.chmod(0o755)
    assert find_bindir(str(tools)) == bindir


def test_bindir_newest_debian_major(tmp_path: Path, debian_root: Path) -> None:
    _fake_bindir(debian_root / "9" / "bin", "initdb", "postgres")
    _fake_bindir(debian_root / "16" / "bin", "initdb", "postgres")
    _fake_bindir(debian_root / "17" / "bin", "initdb")  # client-only: no server binary
    (debian_root / "current").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_bindir(str(empty)) == debian_root / "16" / "bin"


def test_initdb_without_postgres_is_not_enough(tmp_path: Path, debian_root: Path) -> None:
    half = _fake_bindir(tmp_path / "half", "initdb")
    with pytest.raises(BinariesNotFound):
        find_bindir(str(half))


def test_no_binaries(tmp_path: Path, debian_root: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BinariesNotFound) as info:
        find_bindir(str(empty))
    assert str(info.value) == INSTALL_HINT
    assert "apt-get install postgresql" in INSTALL_HINT and "--dsn" in INSTALL_HINT


def test_real_binaries_are_found() -> None:
    bindir = find_bindir(os.environ.get("PATH"))
    assert (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``cli.main`` installs its own log handler; give pytest its logging back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    pgcall_level = logging.getLogger("pgcall").level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("pgcall").setLevel(pgcall_level)


def test_cli_without_binaries(tmp_path: Path, debian_root: Path,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str],
                              restore_logging: None) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    data = tmp_path / "data"
    assert cli.main(["--data-dir", str(data), "--port", "0"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"pgcall: error: {INSTALL_HINT}"]
    assert not data.exists()
