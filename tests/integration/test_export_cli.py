"""The operator's commands against a real PostgreSQL: ``pgcall recordings`` lists every
recording, ``pgcall export`` writes one to MP4; the database by --dsn, by --data-dir whether a
pgcall runs there or not; every failure one line on stderr and exit status 1."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from pgcall.cli import main
from pgcall.pg.conn import PgConnection
from pgcall.pg.migrate import migrate
from pgcall.pg.pool import Pool, open_pool
from tests import synthmedia as sm
from tests.conftest import ServerThread

from .test_export import A, B, audio, store_recording, video

REPO = Path(__file__).resolve().parents[2]


def with_pool(dsn: str, work: Callable[[Pool], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with open_pool(dsn, 2) as pool:
            return await work(pool)

    return trio.run(go)


def a_recording(dsn: str, duration_ms: int = 2000) -> str:
    frames = [video(A, n, n * 100, n, 200) for n in range(duration_ms // 100)]
    frames += [audio(B, k, k * 50, sm.tone(k * sm.FRAME_SAMPLES, 500))
               for k in range(duration_ms // 50)]
    return str(with_pool(dsn, lambda db: store_recording(db, [A, B], duration_ms, frames)))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code: int, err: str, command: str) -> str:
    """The single line a failure prints; its text after the prefix."""
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    prefix = f"pgcall {command}: error: "
    assert lines[0].startswith(prefix), err
    return lines[0].removeprefix(prefix)


def test_recordings_lists_every_recording(db_dsn: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["recordings", "--dsn", db_dsn], capsys)
    assert (code, out) == (0, "no recordings\n")
    first, second = a_recording(db_dsn, 2000), a_recording(db_dsn, 6400)
    code, out, _ = run(["recordings", "--dsn", db_dsn], capsys)
    assert code == 0
    head, *rows = out.splitlines()
    assert head.split() == ["RECORDING", "KIND", "STARTED", "(UTC)", "DURATION", "SIZE",
                            "PARTICIPANTS"]
    assert {r.split()[0] for r in rows} == {first, second}
    by_id = {r.split()[0]: r.split() for r in rows}
    assert by_id[first][1:5] == ["call", "2026-03-01", "12:00:00", "0:00:02"]
    assert by_id[second][4] == "0:00:06"
    assert by_id[first][-3:] == ["2:", A[:8], B[:8]]


def test_export_writes_the_file(db_dsn: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    rid = a_recording(db_dsn, 3000)
    out_file = tmp_path / "call.mp4"
    code, out, err = run(["export", rid, "-o", str(out_file), "--dsn", db_dsn, "--layout",
                          "speaker", "--size", "640x360"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {out_file}: 0:00:03, 640x360 speaker at 15 fps, ")
    assert "x real time)" in out
    print(out)
    pictures = sm.decode_video(out_file)
    assert len(pictures) == 45 and pictures[0][1].shape == (360, 640)
    assert [p.name for p in tmp_path.iterdir()] == ["call.mp4"]  # no part file left


def test_export_errors_are_one_line(db_dsn: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    rid = a_recording(db_dsn, 500)
    unknown = "0f0e0d0c-0b0a-4908-8706-050403020100"
    for bad in (unknown, "not-a-uuid"):
        code, _, err = run(["export", bad, "-o", str(tmp_path / "x.mp4"), "--dsn", db_dsn],
                           capsys)
        assert one_error(code, err, "export") == f"recording {bad} not found"
    code, _, err = run(["export", rid, "-o", str(tmp_path / "no" / "x.mp4"), "--dsn", db_dsn],
                       capsys)
    assert one_error(code, err, "export") == \
        f"cannot write {tmp_path / 'no' / 'x.mp4'}: no directory {tmp_path / 'no'}"
    code, _, err = run(["export", rid, "-o", str(tmp_path), "--dsn", db_dsn], capsys)
    assert one_error(code, err, "export") == f"cannot write {tmp_path}: it is a directory"
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_cannot_be_reached_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = f"host={tmp_path} dbname=nothing user=nobody connect_timeout=2"
    code, _, err = run(["recordings", "--dsn", dsn], capsys)
    assert str(tmp_path) in one_error(code, err, "recordings")
    code, _, err = run(["recordings", "--dsn", "not a = dsn = at all"], capsys)
    assert "--dsn" in one_error(code, err, "recordings")
    code, _, err = run(["recordings", "--data-dir", str(tmp_path / "empty")], capsys)
    assert one_error(code, err, "recordings") == (
        f"no pgcall database in {tmp_path / 'empty'}: pass the --data-dir pgcall runs with, "
        "or --dsn")


def test_a_database_without_pgcalls_schema(db_dsn: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with_pool(db_dsn, lambda db: db.execute("DROP TABLE recordings CASCADE"))
    code, _, err = run(["recordings", "--dsn", db_dsn], capsys)
    assert "no recordings table" in one_error(code, err, "recordings")


def test_without_pyav_export_says_how_to_install_it(tmp_path: Path) -> None:
    """As a separate process in which ``av`` cannot be imported."""
    code = ("import runpy, sys; sys.modules['av'] = None; "
            "sys.argv = ['pgcall', 'export', '0f0e0d0c-0b0a-4908-8706-050403020100', '-o', "
            f"{str(tmp_path / 'x.mp4')!r}, '--dsn', 'host=/nowhere']; "
            "runpy.run_module('pgcall', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr == ("pgcall export: error: video export needs PyAV and numpy: "
                           "pip install 'pgcall[export]'\n")


# -- the embedded database of --data-dir ---------------------------------------------------------


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory as pgcall leaves it: a cluster, migrated, with one recording."""
    path = Path(tempfile.mkdtemp(prefix="pgcx-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_data_dir_of_a_running_pgcall_and_of_a_stopped_one(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running = ServerThread(data_dir)
    server = running.start()  # holds the data directory's lock, as a running pgcall does
    try:
        async def prepare() -> None:
            conn = await PgConnection.connect(server.dsn)
            try:
                await migrate(conn)
            finally:
                conn.close()

        trio.run(prepare)
        rid = a_recording(server.dsn, 1000)
        code, out, err = run(["recordings", "--data-dir", str(data_dir)], capsys)
        assert (code, err) == (0, "") and rid in out  # through the running server's socket
    finally:
        running.stop()
    code, out, err = run(["recordings", "--data-dir", str(data_dir)], capsys)
    assert (code, err) == (0, "") and rid in out  # started for the command, and stopped
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_a_running_pgcall_whose_database_cannot_be_reached(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The data directory's lock is held (as by a running pgcall) but its server is not there
    yet, or its socket cannot be reached: one line, saying what to do."""
    lock = os.open(tmp_path / "pgcall.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = run(["recordings", "--data-dir", str(tmp_path)], capsys)
        assert one_error(code, err, "recordings") == (
            f"data directory {tmp_path} is in use by a pgcall whose database is not running "
            "yet (or any more); try again, or pass --dsn")
        (tmp_path / "pg").mkdir()
        gone = tmp_path / "no-socket-here"
        (tmp_path / "pg" / "postmaster.pid").write_text(
            f"4242\n{tmp_path / 'pg'}\n1700000000\n5432\n{gone}\n\n  1 2\nready\n")
        code, _, err = run(["export", "0f0e0d0c-0b0a-4908-8706-050403020100", "-o",
                            str(tmp_path / "x.mp4"), "--data-dir", str(tmp_path)], capsys)
        message = one_error(code, err, "export")
        assert message.startswith(f"a pgcall is running in {tmp_path} but its database "
                                  "cannot be reached (")
        assert message.endswith("): run this as the user that pgcall runs as (or root), or "
                                "pass --dsn")
    finally:
        os.close(lock)
