"""Regenerate the golden pgoutput captures in tests/golden/.

Starts a throwaway PostgreSQL (initdb into a temporary directory, ``postgres`` with
``wal_level=logical``, Unix socket only), runs tests/golden/workload.sql, and records
every CopyData message of two logical replication streams over it: one with
``binary 'true'`` and one in text mode, both ``proto_version '1'`` and
``messages 'true'``. Writes tests/golden/pgoutput_binary.json and
tests/golden/pgoutput_text.json, then stops the server and removes the directory.

PostgreSQL refuses to run as root, so when run as root the server runs as the
``postgres`` OS user. Blocking libpq calls are fine here: this is a script.

Usage: python scripts/capture_golden.py [--bindir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import pq

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
WORKLOAD = GOLDEN / "workload.sql"
DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
SERVER_USER = "postgres"
PUBLICATION = "golden_pub"
MODES = {"binary": "binary 'true', ", "text": ""}

# pgoutput message tags (PostgreSQL docs, "Logical Replication Message Formats"),
# used only to label the captured messages.
TAG_NAMES = {
    "B": "Begin",
    "C": "Commit",
    "O": "Origin",
    "R": "Relation",
    "Y": "Type",
    "I": "Insert",
    "U": "Update",
    "D": "Delete",
    "T": "Truncate",
    "M": "Message",
}
XLOGDATA_HEADER = 25  # 'w' + three Int64 (Streaming Replication Protocol, XLogData)


def parse_sections(sql: str) -> tuple[str, list[tuple[str, str]]]:
    """Split workload.sql at its "-- @setup" / "-- @step <name>" lines."""
    setup: list[str] = []
    steps: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in sql.splitlines():
        if line.startswith("-- @setup"):
            current = setup
        elif line.startswith("-- @step "):
            steps.append((line.removeprefix("-- @step ").strip(), []))
            current = steps[-1][1]
        elif current is not None:
            current.append(line)
    return "\n".join(setup), [(name, "\n".join(body)) for name, body in steps]


def run_as_server_user() -> dict[str, object]:
    return {"user": SERVER_USER} if os.geteuid() == 0 else {}


def start_server(bindir: Path, tmp: Path, log: BinaryIO) -> subprocess.Popen[bytes]:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
    data = tmp / "data"
    subprocess.run(
        [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C"],
        check=True, stdout=subprocess.DEVNULL, cwd=tmp, **run_as_server_user(),
    )  # fmt: skip
    return subprocess.Popen(
        [bindir / "postgres", "-D", data, "-k", tmp, "-c", "listen_addresses=",
         "-c", "wal_level=logical", "-c", "TimeZone=UTC", "-c", "autovacuum=off",
         "-c", "fsync=off", "-c", "max_wal_senders=4", "-c", "max_replication_slots=4"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp, **run_as_server_user(),
    )  # fmt: skip


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)  # fast shutdown
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def connect(conninfo: str, deadline: float) -> psycopg.Connection:
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # waiting for the server to accept connections


def replication_conn(conninfo: str, slot: str) -> pq.PGconn:
    conn = pq.PGconn.connect(f"{conninfo} replication=database".encode())
    if conn.status != pq.ConnStatus.OK:
        raise RuntimeError(conn.error_message.decode())
    res = conn.exec_(f"CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput".encode())
    if res.status != pq.ExecStatus.TUPLES_OK:
        raise RuntimeError(conn.error_message.decode())
    return conn


def snapshot(admin: psycopg.Connection) -> dict[str, str]:
    row = admin.execute(
        "SELECT pg_current_wal_insert_lsn()::text,"
        " pg_snapshot_xmax(pg_current_snapshot())::text, clock_timestamp()::text"
    ).fetchone()
    assert row is not None
    return {"lsn": row[0], "next_xid": row[1], "time": row[2]}


def stream(conn: pq.PGconn, command: str, commits: int, timeout: float) -> list[bytes]:
    """START_REPLICATION and collect CopyData messages up to the `commits`-th Commit."""
    res = conn.exec_(command.encode())
    if res.status != pq.ExecStatus.COPY_BOTH:
        raise RuntimeError(conn.error_message.decode())
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while commits:
        nbytes, data = conn.get_copy_data(1)
        if nbytes == 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stream stalled; still expecting {commits} commits")
            select.select([conn.socket], [], [], left)
            conn.consume_input()
            continue
        if nbytes < 0:
            raise RuntimeError(conn.error_message.decode())
        frame = bytes(data)
        frames.append(frame)
        if frame[:1] == b"w" and frame[XLOGDATA_HEADER : XLOGDATA_HEADER + 1] == b"C":
            commits -= 1
    return frames


def describe(frames: list[bytes], step_names: list[str], tables: dict[int, str]) -> list[dict]:
    messages = []
    step = 0
    for frame in frames:
        entry: dict[str, object] = {}
        if frame[:1] == b"k":
            entry["step"] = None
            entry["description"] = "primary keepalive"
        else:
            payload = frame[XLOGDATA_HEADER:]
            tag = chr(payload[0])
            text = f"XLogData carrying pgoutput {TAG_NAMES.get(tag, tag)}"
            if tag in "RIUD":
                text += f" ({tables.get(int.from_bytes(payload[1:5], 'big'), '?')})"
            entry["step"] = step_names[step]
            entry["description"] = text
            if tag == "C":
                step += 1
        entry["copy_data"] = frame.hex()
        messages.append(entry)
    return messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindir", type=Path, default=Path(DEFAULT_BINDIR))
    args = parser.parse_args()
    setup_sql, steps = parse_sections(WORKLOAD.read_text())
    step_names = [name for name, _ in steps]

    tmp = Path(tempfile.mkdtemp(prefix="pgc-", dir="/tmp"))  # short socket path
    server = None
    log = open(tmp / "server.log", "wb")
    try:
        server = start_server(args.bindir, tmp, log)
        conninfo = f"host={tmp} dbname=postgres user=postgres"
        admin = connect(conninfo, time.monotonic() + 30)
        admin.execute(setup_sql)
        server_version = admin.execute("SHOW server_version").fetchone()[0]
        oid_rows = admin.execute(
            "SELECT 'golden_items'::regclass::oid::int8, 'golden_full'::regclass::oid::int8,"
            " 'mood'::regtype::oid::int8"
        ).fetchone()
        oids = dict(zip(("golden_items", "golden_full", "mood"), oid_rows, strict=True))
        tables = {oids["golden_items"]: "golden_items", oids["golden_full"]: "golden_full"}

        # Slots first: a logical slot decodes only what commits after its creation.
        repl = {mode: replication_conn(conninfo, f"golden_{mode}") for mode in MODES}
        step_records = []
        for name, sql in steps:
            before = snapshot(admin)
            admin.execute(sql)
            after = snapshot(admin)
            step_records.append({"name": name} | {
                f"{key}_{when}": value
                for when, snap in (("before", before), ("after", after))
                for key, value in snap.items()
            })  # fmt: skip

        for mode, options in MODES.items():
            command = (
                f"START_REPLICATION SLOT golden_{mode} LOGICAL 0/0 (proto_version '1', "
                f"publication_names '{PUBLICATION}', {options}messages 'true')"
            )
            started = snapshot(admin)["time"]
            frames = stream(repl[mode], command, len(steps), timeout=30)
            finished = snapshot(admin)["time"]
            repl[mode].finish()
            document = {
                "comment": "Generated by scripts/capture_golden.py from workload.sql;"
                " do not edit by hand. copy_data is one whole CopyData message, hex.",
                "server_version": server_version,
                "start_replication": command,
                "oids": oids,
                "steps": step_records,
                "stream_started": started,
                "stream_finished": finished,
                "messages": describe(frames, step_names, tables),
            }
            out = GOLDEN / f"pgoutput_{mode}.json"
            out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
            print(f"{out.name}: {len(frames)} messages")
        admin.close()
    except Exception:
        log.flush()
        sys.stderr.write((tmp / "server.log").read_text(errors="replace"))
        raise
    finally:
        if server is not None:
            stop_server(server)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
