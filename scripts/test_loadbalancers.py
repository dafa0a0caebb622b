"""Test the load balancer configurations in deploy/ against real pgcall relays.

Runs by hand (it is not part of the test suite: it installs nginx and HAProxy with apt-get
when they are missing, which needs root, and it runs some forty seconds):

    python3 scripts/test_loadbalancers.py [--calls 1] [--duration 3] [--keep]

What it does, all on 127.0.0.1 with free ports and a temporary directory:

1. starts a PostgreSQL of its own (pgcall's embedded server code, the binaries pgcall would
   pick) and makes a self-signed certificate for 127.0.0.1 with openssl;
2. starts two relays (``python3 -m pgcall``, the DSN in ``PGCALL_DSN``) on one database, then
   nginx with deploy/nginx.conf and HAProxy with deploy/haproxy.cfg, each file rendered with
   these ports and paths (every address it replaces must be found in the file);
3. through each balancer: ``/healthz`` over https is 200 and plain http is redirected to
   https; ``/metrics`` is not served; a WebSocket upgrade from the page's https origin is 101
   and one from another origin 403; an upgrade sent on a kept-alive connection after a GET is
   101; ``pgcall bench --url wss://BALANCER`` runs a call with no errors, and each relay's
   ``/metrics`` shows it wrote frames and delivered frames, so the balancer put the caller
   and the callee on different relays and the frames crossed from one to the other;
4. stops one relay: through each balancer ``/healthz`` and new WebSockets keep working;
5. the same checks with TLS passed through: two relays with ``--certfile``/``--keyfile``
   behind HAProxy with deploy/haproxy-passthrough.cfg;
6. checks deploy/pgcall.service with ``systemd-analyze verify``, when that is installed;

then stops everything. Each check prints a line; the exit status is 0 when all passed, else 1.
``--keep`` keeps the temporary directory (logs, rendered configurations) and prints where.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this tree's pgcall, wherever the script is run from

import trio  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from pgcall.pg.binaries import find_installs  # noqa: E402
from pgcall.pg.embedded import open_embedded  # noqa: E402

DEPLOY = REPO / "deploy"
READY_S = 60.0  # a relay or PostgreSQL starting on a busy machine
STOP_S = 10.0
PROBE_TIMEOUT_S = 10.0  # one HTTP request or handshake
BENCH_GRACE_S = 60.0  # bench start-up, set-up and drain beyond --duration
OTHER_ORIGIN = "https://elsewhere.example"
# The example relay addresses and paths in deploy/, replaced when rendering.
RELAY_ADDRS = ("10.0.0.11", "10.0.0.12")


class Checks:
    """Prints one line per check and remembers the failures."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        line = f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail else "")
        print(line, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        return ok


def say(text: str) -> None:
    print(f"---- {text}", flush=True)


# -- tools ----------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def ensure_tools() -> dict[str, str]:
    """nginx, haproxy and openssl, installed with apt-get when missing (as root)."""
    wanted = {"nginx": "nginx", "haproxy": "haproxy", "openssl": "openssl"}
    missing = [pkg for tool, pkg in wanted.items() if find_tool(tool) is None]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"missing {', '.join(missing)}: install them, or run this as root")
        say(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                       check=True, env=env)
    tools = {tool: find_tool(tool) for tool in wanted}
    for tool, path in tools.items():
        if path is None:
            sys.exit(f"{tool} is still missing")
    return {tool: str(path) for tool, path in tools.items()}


def versions(tools: dict[str, str]) -> str:
    nginx = subprocess.run([tools["nginx"], "-v"], capture_output=True, text=True).stderr
    haproxy = subprocess.run([tools["haproxy"], "-v"], capture_output=True, text=True).stdout
    return f"{nginx.strip()}; {haproxy.splitlines()[0].strip()}"


def make_certificate(work: Path) -> dict[str, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; also as one PEM for HAProxy."""
    cert, key, both = work / "cert.pem", work / "key.pem", work / "cert+key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return {"cert": cert, "key": key, "pem": both}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render(source: Path, replacements: dict[str, str]) -> str:
    """``source`` with each key replaced; every key must occur in it."""
    text = source.read_text()
    for old, new in replacements.items():
        if old not in text:
            raise SystemExit(f"{source.name} no longer contains {old!r}: update this script")
        text = text.replace(old, new)
    return text


# -- PostgreSQL and processes ---------------------------------------------------------------


class Database:
    """A PostgreSQL with logical replication for the relays: pgcall's embedded server code,
    run by a trio loop in a thread of its own (it stops the server when asked to)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.dsn = ""
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by start()
            self.error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with open_embedded(self.data_dir, find_installs(os.environ.get("PATH"))) as pg:
            self.dsn = pg.dsn
            self._ready.set()
            await self._stop.wait()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(READY_S)
        if not self.dsn:
            raise SystemExit(f"PostgreSQL did not start: {self.error!r}")
        return self.dsn

    def stop(self) -> None:
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(STOP_S * 3)


class Processes:
    """Child processes, each logging to a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=REPO,
                                    env={**os.environ, **(env or {})})
        self.running[name] = proc
        return proc

    def stop(self, name: str) -> int | None:
        proc = self.running.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return None
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.running)[::-1]:
            self.stop(name)

    def log_tail(self, name: str, lines: int = 5) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return " | ".join(text[-lines:])


# -- HTTP and WebSocket probes --------------------------------------------------------------


def client_tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@contextlib.contextmanager
def connection(port: int, tls: ssl.SSLContext | None) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
    with sock:
        yield sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response head, and its body when it has a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def get(port: int, path: str, tls: ssl.SSLContext | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    with connection(port, tls) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        return read_response(sock)


def upgrade_request(port: int, origin: str) -> bytes:
    return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode()


def upgrade(port: int, tls: ssl.SSLContext | None, origin: str, after_get: bool = False) -> str:
    """The status of a WebSocket handshake from ``origin``, as a browser sends it, or why
    there was none; with ``after_get``, sent on a connection that has just served a
    kept-alive GET."""
    try:
        with connection(port, tls) as sock:
            if after_get:
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                             .encode())
                status, _, _ = read_response(sock)
                if status != 200:
                    return f"GET {status}"
            sock.sendall(upgrade_request(port, origin))
            return str(read_response(sock)[0])
    except TimeoutError:
        return f"no answer in {PROBE_TIMEOUT_S:g} s"
    except (OSError, ConnectionError) as exc:
        return f"{type(exc).__name__}: {exc}"


def frame_counters(port: int, tls: ssl.SSLContext | None) -> tuple[float, float]:
    """A relay's (frames written to PostgreSQL, frames queued to its clients) so far."""
    conn: http.client.HTTPConnection
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    written = out = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "pgcall_frames_written_total":
                written += s.value
            elif s.name == "pgcall_frames_out_total":
                out += s.value
    return written, out


def wait_until(probe: Any, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            if probe():
                return
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            last = exc
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready within {READY_S:g} s ({last})")


def run_bench(url: str, calls: int, duration: float, cert: Path) -> tuple[int, dict[str, Any]]:
    cmd = [sys.executable, "-m", "pgcall", "bench", "--url", url, "--calls", str(calls),
           "--duration", str(duration), "--json"]
    # The bench trusts the test certificate the way any Python client would.
    env = {**os.environ, "SSL_CERT_FILE": str(cert), "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=duration + BENCH_GRACE_S)
    try:
        return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return done.returncode, {"output": done.stdout + done.stderr}


# -- the checks -----------------------------------------------------------------------------


class Balancer:
    def __init__(self, name: str, https: int, http: int | None) -> None:
        self.name, self.https, self.http = name, https, http

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.https}"


class Relay:
    def __init__(self, name: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.name, self.port, self.tls = name, port, tls


def check_balancer(c: Checks, lb: Balancer, relays: list[Relay], tls: ssl.SSLContext,
                   cert: Path, opts: argparse.Namespace, http_mode: bool) -> None:
    """``http_mode``: the balancer reads HTTP (TLS ends there); else it forwards bytes."""
    n = lb.name
    if lb.http is not None:
        status, headers, _ = get(lb.http, "/healthz")
        c.check(status == 301 and headers.get("location", "").startswith("https://"),
                f"{n}: plain http is redirected to https",
                f"{status} {headers.get('location')}")
    bodies = []
    for _ in range(4):
        status, _, body = get(lb.https, "/healthz", tls)
        bodies.append((status, body))
    c.check(all(s == 200 and json.loads(b)["status"] == "ok" for s, b in bodies),
            f"{n}: /healthz over https, 4 times", bodies[0][1].decode().strip())
    if http_mode:
        status, _, _ = get(lb.https, "/metrics", tls)
        c.check(status == 404, f"{n}: /metrics is not served through the balancer",
                str(status))
    answer = upgrade(lb.https, tls, lb.origin)
    c.check(answer == "101", f"{n}: WebSocket upgrade from the page's origin {lb.origin}",
            answer)
    answer = upgrade(lb.https, tls, OTHER_ORIGIN)
    c.check(answer == "403", f"{n}: WebSocket upgrade from {OTHER_ORIGIN} is refused", answer)
    if http_mode:
        # A balancer that kept its relay connection open after the GET would hand pgcall an
        # upgrade that is not the first request on its connection, which pgcall does not
        # serve. Four times: each relay gets some.
        answers = [upgrade(lb.https, tls, lb.origin, after_get=True) for _ in range(4)]
        c.check(answers == ["101"] * 4,
                f"{n}: WebSocket upgrade after a GET on one kept-alive connection, x4",
                " ".join(answers))

    before = [frame_counters(r.port, r.tls) for r in relays]
    code, result = run_bench(f"wss://127.0.0.1:{lb.https}/", opts.calls, opts.duration, cert)
    after = [frame_counters(r.port, r.tls) for r in relays]
    ran = code in (0, 1) and "errors" in result
    summary = (f"{result.get('calls')} call(s), frames sent {result.get('frames_sent')} "
               f"received {result.get('frames_received')} lost {result.get('lost')}, video "
               f"p50 {result.get('latency_ms', {}).get('p50')} ms p99 "
               f"{result.get('latency_ms', {}).get('p99')} ms, fps min "
               f"{result.get('fps', {}).get('min')}; {result.get('verdict')}"
               if ran else f"exit {code}: {result.get('output', '')[-400:]}")
    c.check(ran and result["errors"] == 0 and result["frames_received"] > 0,
            f"{n}: pgcall bench through the balancer, no errors", summary)
    if not ran:
        return
    deltas = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)]
    per_relay = ", ".join(f"{r.name} wrote {int(w)} delivered {int(o)}"
                          for r, (w, o) in zip(relays, deltas, strict=True))
    c.check(all(w > 0 and o > 0 for w, o in deltas),
            f"{n}: both relays served the bench's clients, frames crossed", per_relay)


def check_failover(c: Checks, lb: Balancer, tls: ssl.SSLContext) -> None:
    answers = [str(get(lb.https, "/healthz", tls)[0]) for _ in range(4)]
    answers += [upgrade(lb.https, tls, lb.origin) for _ in range(4)]
    c.check(answers == ["200"] * 4 + ["101"] * 4,
            f"{lb.name}: one relay stopped, /healthz and new WebSockets x4 still served",
            " ".join(answers))


def start_relays(procs: Processes, dsn: str, names: list[str], extra: list[str],
                 tls: ssl.SSLContext | None) -> list[Relay]:
    relays = []
    for name in names:  # one after another: the first one migrates the database
        port = free_port()
        proc = procs.start(name, [sys.executable, "-m", "pgcall", "--host", "127.0.0.1",
                                  "--port", str(port), "--log-level", "warning", *extra],
                           env={"PGCALL_DSN": dsn, "PYTHONPATH": str(REPO)})
        relay = Relay(name, port, tls)
        wait_until(lambda r=relay: get(r.port, "/healthz", r.tls)[0] == 200, name, proc)
        relays.append(relay)
    return relays


def start_nginx(procs: Processes, nginx: str, work: Path, lb: Balancer, relays: list[Relay],
                cert: dict[str, Path]) -> None:
    assert lb.http is not None
    conf = work / "nginx"
    conf.mkdir()
    (conf / "pgcall.conf").write_text(render(DEPLOY / "nginx.conf", {
        "listen 80;": f"listen 127.0.0.1:{lb.http};",
        "listen 443 ssl;": f"listen 127.0.0.1:{lb.https} ssl;",
        f"{RELAY_ADDRS[0]}:9000": f"127.0.0.1:{relays[0].port}",
        f"{RELAY_ADDRS[1]}:9000": f"127.0.0.1:{relays[1].port}",
        "/etc/ssl/pgcall/fullchain.pem": str(cert["cert"]),
        "/etc/ssl/pgcall/privkey.pem": str(cert["key"]),
    }))
    # The main file nginx.conf would have around deploy/nginx.conf, kept to this directory.
    temp_paths = "".join(f"    {kind}_temp_path {conf / kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (conf / "nginx.conf").write_text(
        ("user www-data;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {conf / 'nginx.pid'};\n"
        f"error_log {conf / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log {conf / 'access.log'};\n{temp_paths}"
        f"    include {conf / 'pgcall.conf'};\n}}\n")
    argv = [nginx, "-e", str(conf / "error.log"), "-p", str(conf), "-c",
            str(conf / "nginx.conf")]
    subprocess.run([*argv, "-t", "-q"], check=True)
    proc = procs.start("nginx", [*argv, "-g", "daemon off;"])
    wait_until(lambda: get(lb.https, "/healthz", client_tls(cert["cert"]))[0] == 200, "nginx",
               proc)


def start_haproxy(procs: Processes, haproxy: str, work: Path, name: str, source: str,
                  lb: Balancer, relays: list[Relay], cert: dict[str, Path],
                  relay_port: str) -> None:
    binds = ({"bind :80\n": f"bind 127.0.0.1:{lb.http}\n",
              "bind :443 ssl crt /etc/haproxy/certs/pgcall.pem":
                  f"bind 127.0.0.1:{lb.https} ssl crt {cert['pem']}"}
             if lb.http is not None else {"bind :443\n": f"bind 127.0.0.1:{lb.https}\n"})
    cfg = work / f"{name}.cfg"
    cfg.write_text(render(DEPLOY / source, {
        **binds,
        # No syslog here: HAProxy's log lines go to its output, kept in the log file.
        "log /dev/log local0": "log stdout format short local0",
        "maxconn 20000": f"maxconn {haproxy_maxconn()}",
        f"{RELAY_ADDRS[0]}:{relay_port}": f"127.0.0.1:{relays[0].port}",
        f"{RELAY_ADDRS[1]}:{relay_port}": f"127.0.0.1:{relays[1].port}",
    }))
    subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], check=True)
    proc = procs.start(name, [haproxy, "-db", "-f", str(cfg)])
    wait_until(lambda: get(lb.https, "/healthz", client_tls(cert["cert"]))[0] == 200, name,
               proc)


def haproxy_maxconn() -> int:
    """deploy/'s 20000, unless this machine's hard limit on open files is too low for it:
    HAProxy needs two descriptors per connection (a container may not let root raise it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 2 * 20000 + 100:
        return 20000
    return max(100, (hard - 100) // 2)


def check_unit(c: Checks, work: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("---- systemd-analyze not installed: deploy/pgcall.service not verified")
        return
    unit = work / "pgcall.service"
    # verify needs ExecStart's program to exist: this Python, running pgcall.
    unit.write_text(render(DEPLOY / "pgcall.service", {
        "/usr/local/bin/pgcall": f"{sys.executable} -m pgcall"}))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    c.check(done.returncode == 0 and not done.stderr.strip(),
            "deploy/pgcall.service: systemd-analyze verify", done.stderr.strip())


def run(c: Checks, tools: dict[str, str], work: Path, opts: argparse.Namespace) -> None:
    cert = make_certificate(work)
    tls = client_tls(cert["cert"])
    db_dir = Path(tempfile.mkdtemp(prefix="pgcall-lb-db-"))
    db = Database(db_dir)
    procs = Processes(work)
    try:
        dsn = db.start()
        say(f"PostgreSQL running; {versions(tools)}")

        say("TLS ends at the balancer: two relays, nginx and HAProxy in front")
        nginx = Balancer("nginx", free_port(), free_port())
        haproxy = Balancer("haproxy", free_port(), free_port())
        origins = f"{nginx.origin},{haproxy.origin}"
        relays = start_relays(procs, dsn, ["relay1", "relay2"],
                              ["--allowed-origins", origins], None)
        start_nginx(procs, tools["nginx"], work, nginx, relays, cert)
        start_haproxy(procs, tools["haproxy"], work, "haproxy", "haproxy.cfg", haproxy,
                      relays, cert, "9000")
        for lb in (nginx, haproxy):
            check_balancer(c, lb, relays, tls, cert["cert"], opts, http_mode=True)
        code = procs.stop("relay2")
        c.check(code == 0, "relay2 stopped by SIGTERM, exit status 0", str(code))
        for lb in (nginx, haproxy):
            check_failover(c, lb, tls)
        procs.stop_all()

        say("TLS passed through: two relays with --certfile, HAProxy in front")
        passthrough = Balancer("haproxy-passthrough", free_port(), None)
        relays = start_relays(procs, dsn, ["relay3", "relay4"],
                              ["--certfile", str(cert["cert"]), "--keyfile", str(cert["key"])],
                              tls)
        start_haproxy(procs, tools["haproxy"], work, "haproxy-passthrough",
                      "haproxy-passthrough.cfg", passthrough, relays, cert, "9443")
        check_balancer(c, passthrough, relays, tls, cert["cert"], opts, http_mode=False)
        procs.stop("relay4")
        check_failover(c, passthrough, tls)
        procs.stop_all()

        say("systemd unit")
        check_unit(c, work)
    except BaseException:
        for name in procs.running:
            print(f"---- {name}'s log ends: {procs.log_tail(name)}")
        raise
    finally:
        procs.stop_all()
        db.stop()
        shutil.rmtree(db_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1, help="calls per bench run (default 1)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds of media per bench run (default 3)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs, rendered configurations)")
    opts = parser.parse_args()
    tools = ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="pgcall-lb-"))
    # What the embedded server's watcher logs (PostgreSQL's warnings) goes to a file too.
    logging.basicConfig(filename=work / "postgres-warnings.log", level=logging.WARNING)
    c = Checks()
    try:
        run(c, tools, work, opts)
    finally:
        if opts.keep or c.failed:
            print(f"---- logs and rendered configurations kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"---- {c.passed} checks passed, {len(c.failed)} failed"
          + (": " + "; ".join(c.failed) if c.failed else ""))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
