"""The embedded PostgreSQL server that pgcall starts when it is given no --dsn.

Owns: the data directory lock, ``initdb`` (once), starting ``postgres`` with logical replication
on a private Unix socket, waiting for readiness and stopping it on every way out.
Does not own: the schema (``migrate``) or where the binaries are (``binaries``), though it
picks, among the installations found, the one the data directory's cluster needs.

Readiness is read from the server's own log ("ready to accept connections"), which we pipe
through ourselves: no polling, no fixed sleeps. The server runs in its own session so that a
Ctrl-C in the terminal reaches pgcall only, and pgcall stops the server after closing its own
connections. ``PR_SET_PDEATHSIG`` makes the kernel stop the server if pgcall itself is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import attrs
import trio

from .binaries import BinariesNotFound, PgInstall, choose, install_at, server_user, user_can_run
from .bundled import stage_copy

log = logging.getLogger("pgcall.pg")

# "... accept connections", or "... accept read-only connections" from a hot standby
READY_LINE = b"database system is ready to accept"
SUPERUSER = "pgcall"
STOP_TIMEOUT_S = 10.0

# Settings the embedded server always runs with. Logical replication needs wal_level=logical;
# each pgcall uses one walsender and one temporary slot, tests and the AI worker a few more.
# max_slot_wal_keep_size bounds the WAL any forgotten (non-temporary) slot can pin.
# autovacuum_naptime: the frame tables are queues, vacuumed by their count of dead rows
# (sql/0006); the default minute between looks let a video call's deleted TOAST chunks pile
# up to hundreds of thousands before one large vacuum (docs/deployment.md).
SERVER_SETTINGS = {
    "wal_level": "logical",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
    "max_connections": "200",
    "max_slot_wal_keep_size": "1GB",
    "autovacuum_naptime": "5s",
    "listen_addresses": "",
    "unix_socket_permissions": "0700",
    "lc_messages": "C",
    "log_min_messages": "warning",
}


class EmbeddedError(Exception):
    """A one-line, user-facing reason why the embedded server cannot run."""


@attrs.frozen
class EmbeddedPostgres:
    dsn: str
    socket_dir: Path
    cluster_dir: Path
    pid: int
    bindir: Path | None = None  # the bin/ the server runs from


def _make_data_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise EmbeddedError(f"the data directory {data_dir} is a file, not a directory; "
                            "pass another --data-dir") from None
    except OSError as exc:
        raise EmbeddedError(f"cannot create the data directory {data_dir}: {exc.strerror}; "
                            "pass another --data-dir") from None


def _lock_data_dir(data_dir: Path) -> int:
    try:
        fd = os.open(data_dir / "pgcall.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise EmbeddedError(f"cannot write in the data directory {data_dir}: {exc.strerror}; "
                            "pass another --data-dir") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise EmbeddedError(
            f"data directory {data_dir} is in use by another pgcall (pid {owner}); "
            "stop it or pass another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG = 1; SIGINT = fast shutdown


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


async def _initdb(bindir: Path, cluster: Path, user: str | None) -> None:
    """initdb into a sibling temporary directory, then rename: a half-made cluster never
    stands at ``cluster``."""
    staging = cluster.with_name(cluster.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    _chown(staging, user)
    argv = [str(bindir / "initdb"), "-D", str(staging), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-instructions"]
    result = await trio.run_process(argv, user=user, capture_stdout=True, capture_stderr=True,
                                    check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise EmbeddedError(f"initdb failed in {cluster}: {tail[0]}")
    staging.rename(cluster)


def _check_reachable(data_dir: Path, user: str | None) -> None:
    if user is None:
        return
    ok = subprocess.run(["test", "-w", str(data_dir), "-a", "-x", str(data_dir)],
                        user=user, check=False).returncode == 0
    if not ok:
        raise EmbeddedError(
            f"the embedded PostgreSQL runs as user {user!r}, which cannot write to {data_dir}; "
            "pass a --data-dir it can reach (for example under /var/lib or /srv)"
        )


async def _watch_log(stream: trio.abc.ReceiveStream, logfile: Path,
                     ready: trio.Event, tail: list[bytes]) -> None:
    """Copy the server's output to ``logfile``, keep the last lines, set ``ready``."""
    buf = b""
    with logfile.open("ab") as out:
        async for chunk in stream:
            out.write(chunk)
            out.flush()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                tail.append(line)
                del tail[:-5]
                if READY_LINE in line:
                    ready.set()
                elif b"FATAL:" in line or b"PANIC:" in line:
                    log.warning("postgres: %s", line.decode(errors="replace"))


def _runnable_bindir(install: PgInstall, data_dir: Path, user: str | None) -> Path:
    """``install``'s bin/ if ``user`` can run it; else, for the bundled server, a copy it can."""
    if all(user_can_run(install.bindir / name, user) for name in ("initdb", "postgres")):
        return install.bindir
    if install.bundled:
        try:
            return stage_copy(install.bindir, data_dir)
        except OSError as exc:
            raise EmbeddedError(f"cannot copy the bundled PostgreSQL into {data_dir}: "
                                f"{exc}") from None
    raise BinariesNotFound(
        f"the embedded PostgreSQL runs as user {user!r}, which cannot run the programs in "
        f"{install.bindir}: let it read and enter every directory above them, or pass "
        "another --pg-bindir"
    )


@contextlib.asynccontextmanager
async def open_embedded(
    data_dir: Path,
    bindir: Path | Sequence[PgInstall],
    *,
    run_as: str = "postgres",
    extra_settings: dict[str, str] | None = None,
) -> AsyncIterator[EmbeddedPostgres]:
    """Run PostgreSQL on ``data_dir`` for the duration of the ``async with`` block.

    ``bindir`` is a bin/ directory, or the installations found in order of preference: a new
    cluster gets the first, an existing one the first of its major version.
    """
    data_dir = data_dir.absolute()
    installs = [install_at(bindir)] if isinstance(bindir, Path) else list(bindir)
    _make_data_dir(data_dir)
    lock_fd = _lock_data_dir(data_dir)
    try:
        user = server_user(run_as)
        _chown(data_dir, user)
        _check_reachable(data_dir, user)
        cluster = data_dir / "pg"
        server_bin = _runnable_bindir(choose(installs, cluster), data_dir, user)
        if not (cluster / "PG_VERSION").exists():
            log.info("creating the embedded PostgreSQL cluster in %s", cluster)
            await _initdb(server_bin, cluster, user)
        # A short, private socket directory: socket paths must stay under 107 bytes.
        socket_dir = Path(tempfile.mkdtemp(prefix="pgcall-"))
        _chown(socket_dir, user)
        try:
            async with _running(server_bin, cluster, socket_dir, user, data_dir,
                                {**SERVER_SETTINGS, **(extra_settings or {})}) as server:
                yield server
        finally:
            shutil.rmtree(socket_dir, ignore_errors=True)
    finally:
        os.close(lock_fd)


class _Server:
    """A ``postgres`` child spawned from the trio thread itself.

    trio's ``open_process`` forks from a worker thread, and ``PR_SET_PDEATHSIG`` fires when the
    *thread* that forked exits (trio retires idle worker threads), which would stop the server
    after a few idle seconds. So we fork here (a few milliseconds, once, at start-up) and wait
    for the exit on a pidfd.
    """

    def __init__(self, argv: list[str], user: str | None) -> None:
        self.popen = subprocess.Popen(
            argv, user=user, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_set_pdeathsig,
        )
        assert self.popen.stdout is not None
        self.output = trio.lowlevel.FdStream(os.dup(self.popen.stdout.fileno()))
        self.popen.stdout.close()
        self._pidfd = os.pidfd_open(self.popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    async def wait(self) -> int:
        if self.popen.poll() is None:
            await trio.lowlevel.wait_readable(self._pidfd)
        return self.popen.wait()

    async def aclose(self) -> None:
        await self.output.aclose()
        trio.lowlevel.notify_closing(self._pidfd)
        os.close(self._pidfd)


@contextlib.asynccontextmanager
async def _running(bindir: Path, cluster: Path, socket_dir: Path, user: str | None,
                   data_dir: Path, settings: dict[str, str]) -> AsyncIterator[EmbeddedPostgres]:
    argv = [str(bindir / "postgres"), "-D", str(cluster), "-k", str(socket_dir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    proc = _Server(argv, user)
    ready, tail = trio.Event(), list[bytes]()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_log, proc.output, data_dir / "postgres.log", ready, tail)

            async def _exited() -> None:
                await proc.wait()
                ready.set()

            nursery.start_soon(_exited)
            await ready.wait()
            if proc.returncode is not None:
                last = (tail[-1] if tail else b"exited").decode(errors="replace")
                raise EmbeddedError(f"the embedded PostgreSQL did not start: {last}")
            who = f" as user {user!r}" if user else ""
            log.debug("embedded PostgreSQL %s running%s from %s (pid %d, socket %s)",
                      cluster, who, bindir, proc.pid, socket_dir)
            yield EmbeddedPostgres(
                dsn=f"host={socket_dir} dbname=postgres user={SUPERUSER}",
                socket_dir=socket_dir, cluster_dir=cluster, pid=proc.pid, bindir=bindir,
            )
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _stop(proc)


async def _stop(proc: _Server) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGQUIT, 5.0),
                        (signal.SIGKILL, 5.0)):
        if proc.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            proc.popen.send_signal(sig)
        with trio.move_on_after(wait_s):
            await proc.wait()
    await proc.aclose()
