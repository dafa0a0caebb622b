"""``pgcall --workers N``: N relays on one host and one port, so that every core works.

Owns: the parent process. It opens the database once (the embedded server, or the one given,
migrated), keeps the port (a bound, never listening socket with ``SO_REUSEPORT``), starts N
workers (``python -m pgcall`` with the same options, the DSN in their environment) that each
bind that port with ``SO_REUSEPORT`` (the kernel spreads new connections over them), reports
ready once every worker is, restarts a worker that dies (its clients reconnect, through the
kernel, to the others or to the new one; the others clean up its users within seconds, as
for any dead relay), and on shutdown stops them all (SIGTERM, then SIGKILL past the deadline)
before the database. Each worker is a full relay: its own replication stream, publication,
pool and liveness lock.
Does not own: what a worker does (``app.serve``).

Why ``SO_REUSEPORT`` rather than a parent handing out connections: the kernel balances by
connection with no extra hop and no process in the data path; a worker that dies loses only
its own connections. Why processes rather than threads: Python's GIL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

import attrs
import trio

from .app import Running, open_database
from .config import READY_FD_ENV, WORKER_ENV, Config
from .pg.embedded import _set_pdeathsig
from .preflight import StartupError

log = logging.getLogger("pgcall.workers")

RESTART_DELAY_S = (0.5, 5.0)  # first delay after a death, and the cap as deaths repeat
STOP_DEADLINE_S = 4.0  # a worker shuts down within 3 s (cli.SHUTDOWN_DEADLINE_S)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with SO_REUSEPORT: the port stays ours
    (port 0 picks one) while workers come and go, and no connection ever waits on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@attrs.define
class Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    pidfd: int = -1
    deaths: int = 0


class Pool:
    """The workers of one parent."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], count: int) -> None:
        self.argv = list(argv)
        self.env = env
        self.workers = [Worker(i) for i in range(count)]
        self.stopping = False

    def _spawn(self, worker: Worker, ready_w: int) -> None:
        env = {**self.env, WORKER_ENV: str(worker.index), READY_FD_ENV: str(ready_w)}
        # From this thread (not a trio worker thread): PR_SET_PDEATHSIG follows the thread
        # that forks (see pg/embedded.py); a worker outliving a killed parent stops itself.
        worker.proc = subprocess.Popen(self.argv, env=env, pass_fds=(ready_w,),
                                       preexec_fn=_set_pdeathsig)
        worker.pidfd = os.pidfd_open(worker.proc.pid)

    async def run(self, worker: Worker, task_status: trio.TaskStatus[None]) -> None:
        """Keep one worker running; ``started`` once its first run reports ready."""
        started = False
        while not self.stopping:
            ready_r, ready_w = os.pipe()
            try:
                self._spawn(worker, ready_w)
            finally:
                os.close(ready_w)
            assert worker.proc is not None
            async with trio.lowlevel.FdStream(ready_r) as ready:
                with contextlib.suppress(trio.BrokenResourceError):
                    if await ready.receive_some(1):  # b"": it died before it was ready
                        if not started:
                            started = True
                            task_status.started()
                        elif not self.stopping:
                            log.info("worker %d ready again (pid %d)", worker.index,
                                     worker.proc.pid)
            await trio.lowlevel.wait_readable(worker.pidfd)
            code = worker.proc.wait()
            trio.lowlevel.notify_closing(worker.pidfd)
            os.close(worker.pidfd)
            if self.stopping:
                return
            if not started:
                raise WorkerFailed(f"worker {worker.index} exited with code {code} before it "
                                   "was ready")
            worker.deaths += 1
            delay = min(RESTART_DELAY_S[0] * 2 ** (worker.deaths - 1), RESTART_DELAY_S[1])
            log.warning("worker %d (pid %d) exited with code %d; restarting in %.1f s",
                        worker.index, worker.proc.pid, code, delay)
            await trio.sleep(delay)

    def signal_all(self, signum: int) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signum)



class WorkerFailed(StartupError):
    """A worker could not start: one line, as start-up failures are."""


# Options a worker does not take from the parent's command line: the parent gives it the DSN
# (in its environment), its port, and a secret in the environment rather than in ``ps``.
_NOT_FOR_WORKERS = ("--workers", "--dsn", "--data-dir", "--port", "--join-secret",
                    "--pg-bindir", "--replication-dsn")


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The parent's (already checked) command line, as its workers get it."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _NOT_FOR_WORKERS:
            skip = "=" not in arg
            continue
        if arg == "serve" and not out:
            continue
        out.append(arg)
    return out


def worker_env(dsn: str, config: Config) -> dict[str, str]:
    """The workers' environment: secrets travel here, not on the command line (ps)."""
    env = dict(os.environ, PGCALL_DSN=dsn)
    if config.replication_dsn is not None:
        env["PGCALL_REPLICATION_DSN"] = config.replication_dsn
    if config.join_secret is not None:
        env["PGCALL_JOIN_SECRET"] = config.join_secret
    return env


async def serve_workers(config: Config, worker_argv: Sequence[str], shutdown: trio.Event, *,
                        task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED
                        ) -> None:
    """Run ``config.workers`` relays until ``shutdown`` is set."""
    reserved = reserve_port(config.host, config.port)
    with contextlib.closing(reserved):
        port = reserved.getsockname()[1]
        async with open_database(config) as dsn:
            argv = [sys.executable, "-m", "pgcall", *worker_argv, "--port", str(port)]
            pool = Pool(argv, worker_env(dsn, config), config.workers)
            try:
                async with trio.open_nursery() as nursery:
                    for worker in pool.workers:
                        await nursery.start(pool.run, worker)
                    scheme = "https" if config.certfile is not None else "http"
                    shown = f"[{config.host}]" if ":" in config.host else config.host
                    url = f"{scheme}://{shown}:{port}"
                    log.info("pgcall ready on %s: %d workers", url, config.workers)
                    task_status.started(Running(url=url, dsn=dsn))
                    await shutdown.wait()
                    pool.stopping = True
                    pool.signal_all(signal.SIGTERM)  # each run() returns as its worker exits
                    nursery.cancel_scope.deadline = trio.current_time() + STOP_DEADLINE_S
            finally:
                pool.stopping = True
                pool.signal_all(signal.SIGKILL)
                for w in pool.workers:
                    if w.proc is not None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            w.proc.wait(STOP_DEADLINE_S)
