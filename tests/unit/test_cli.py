"""The command line: arguments and environment → ``Config``, usage errors, --version, --help."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pgcall import __version__
from pgcall.bench.cli import build_bench_parser
from pgcall.cli import build_parser, config_from_args, parse_args
from pgcall.config import Config

REPO = Path(__file__).resolve().parents[2]


def config_of(argv: list[str], env: dict[str, str] | None = None) -> Config:
    env = {} if env is None else env
    return config_from_args(parse_args(argv, env), env)


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str],
                env: dict[str, str] | None = None) -> str:
    """Parse ``argv``, expect argparse's exit code 2, return what it printed on stderr."""
    with pytest.raises(SystemExit) as info:
        parse_args(argv, env or {})
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: pgcall")
    assert "error:" in err
    return err


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend to be an ordinary user whose home is ``tmp_path``."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


# -- defaults ------------------------------------------------------------------------------


def test_defaults(as_user: Path) -> None:
    cfg = config_of([])
    assert cfg.port == 9000
    assert cfg.host == "127.0.0.1"
    assert cfg.frontend == "vanilla"
    assert cfg.retain_s == 5.0
    assert cfg.dsn is None and cfg.embedded
    assert cfg.log_level == "info" and cfg.log_format == "text"
    assert cfg.certfile is None and cfg.keyfile is None


def test_serve_is_optional(as_user: Path) -> None:
    argv = ["--port", "9123", "--host", "0.0.0.0", "--retain", "2.5"]
    assert config_of(argv) == config_of(["serve", *argv])
    assert config_of(argv).port == 9123
    assert parse_args([], {}).command == "serve"


def test_options_reach_the_config(as_user: Path, tmp_path: Path) -> None:
    front = tmp_path / "site"
    front.mkdir()
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cfg = config_of(["serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
                     "--frontend", str(front), "--retain", "0.5", "--log-level", "debug",
                     "--log-format", "json", "--certfile", str(cert), "--keyfile", str(key)])
    assert cfg.port == 0
    assert cfg.data_dir == tmp_path / "d"
    assert cfg.frontend == str(front.resolve())
    assert cfg.retain_s == 0.5
    assert (cfg.log_level, cfg.log_format) == ("debug", "json")
    assert (cfg.certfile, cfg.keyfile) == (cert, key)


@pytest.mark.parametrize("name", ["vanilla", "svelte"])
def test_frontend_by_name(as_user: Path, name: str) -> None:
    assert config_of(["--frontend", name]).frontend == name


# -- the environment -----------------------------------------------------------------------


def test_dsn_from_the_environment(as_user: Path) -> None:
    env = {"PGCALL_DSN": "postgresql://db.example/calls"}
    cfg = config_of([], env)
    assert cfg.dsn == "postgresql://db.example/calls"
    assert not cfg.embedded


def test_dsn_option_beats_the_environment(as_user: Path) -> None:
    env = {"PGCALL_DSN": "postgresql://from-env/x"}
    assert config_of(["--dsn", "host=/run/pg dbname=x"], env).dsn == "host=/run/pg dbname=x"


def test_empty_dsn_in_the_environment_means_embedded(as_user: Path) -> None:
    assert config_of([], {"PGCALL_DSN": ""}).embedded


def test_path_comes_from_the_given_environment(as_user: Path) -> None:
    assert config_of([], {"PATH": "/opt/pg/bin:/usr/bin"}).path_env == "/opt/pg/bin:/usr/bin"
    assert config_of([], {}).path_env is None


# -- the data directory --------------------------------------------------------------------


def test_data_dir_for_a_user(as_user: Path) -> None:
    assert config_of([]).data_dir == as_user / ".local" / "share" / "pgcall"


def test_data_dir_for_a_user_with_xdg(as_user: Path) -> None:
    env = {"XDG_DATA_HOME": str(as_user / "xdg")}
    assert config_of([], env).data_dir == as_user / "xdg" / "pgcall"


def test_data_dir_for_root(as_root: Path) -> None:
    assert config_of([]).data_dir == Path("/var/lib/pgcall")


def test_data_dir_for_root_with_xdg(as_root: Path) -> None:
    assert config_of([], {"XDG_DATA_HOME": "/srv/data"}).data_dir == Path("/srv/data/pgcall")


def test_data_dir_option_wins(as_root: Path) -> None:
    env = {"XDG_DATA_HOME": "/srv/data"}
    assert config_of(["--data-dir", "/tmp/here"], env).data_dir == Path("/tmp/here")


# -- bad arguments: exit 2 with a usage message ----------------------------------------------


def test_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["--port", "70000"], capsys)
    assert "--port" in err and "70000" in err


def test_port_not_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--port" in usage_error(["--port", "http"], capsys)


def test_negative_retain(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["--retain", "-1"], capsys)
    assert "--retain" in err and "positive" in err


def test_zero_retain(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--retain" in usage_error(["--retain", "0"], capsys)


def test_frontend_neither_name_nor_directory(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    err = usage_error(["--frontend", str(tmp_path / "nowhere")], capsys)
    assert "--frontend" in err and "vanilla" in err


def test_frontend_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text("<!doctype html>")
    assert "--frontend" in usage_error(["--frontend", str(page)], capsys)


def test_certfile_without_keyfile(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["--certfile", "/etc/ssl/c.pem"], capsys)
    assert "--certfile and --keyfile" in err


def test_keyfile_without_certfile(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--keyfile" in usage_error(["serve", "--keyfile", "/etc/ssl/k.pem"], capsys)


def test_replication_dsn_without_dsn(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["--replication-dsn", "host=standby dbname=pgcall"], capsys)
    assert "--replication-dsn" in err and "--dsn" in err


def test_replication_dsn_from_the_environment() -> None:
    env = {"PGCALL_DSN": "host=primary", "PGCALL_REPLICATION_DSN": "host=standby"}
    args = parse_args([], env)
    assert config_from_args(args, env).replication_dsn == "host=standby"


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--colour" in usage_error(["--colour", "blue"], capsys)


def test_unknown_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--log-level" in usage_error(["--log-level", "chatty"], capsys)


# -- --version and --help --------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--version"], {})
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pgcall {__version__}"


def test_help_as_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "pgcall", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: pgcall")
    assert "serve" in proc.stdout
    assert proc.stderr == ""


def test_serve_help_lists_the_options() -> None:
    proc = subprocess.run([sys.executable, "-m", "pgcall", "serve", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for option in ("--dsn", "--port", "--data-dir", "--frontend", "--retain", "--certfile"):
        assert option in proc.stdout


def test_bad_argument_as_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "pgcall", "--port", "70000"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: pgcall")
    assert "Traceback" not in proc.stderr


def test_version_after_serve(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["serve", "--version"], {})
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pgcall {__version__}"


def test_one_usage_line_with_and_without_serve(capsys: pytest.CaptureFixture[str]) -> None:
    bare = usage_error(["--bogus"], capsys).splitlines()[0]
    serve = usage_error(["serve", "--bogus"], capsys).splitlines()[0]
    assert bare == serve == "usage: pgcall [serve] [options]"


def _help_of(*argv: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pgcall", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_lists_version_and_bench() -> None:
    text = _help_of("--help")
    assert text == _help_of("serve", "--help")
    assert "--version" in text
    assert "pgcall bench [options]" in text and "Exit status:" in text


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and "-h" not in a.option_strings]


@pytest.mark.parametrize("make", [lambda: build_parser({}), build_bench_parser],
                         ids=["serve", "bench"])
def test_every_option_has_a_sentence(make: Callable[[], argparse.ArgumentParser]) -> None:
    for action in _actions(make()):
        assert action.help and len(action.help.split()) >= 3, action.option_strings


def test_bench_help_gives_defaults_and_exit_codes() -> None:
    text = " ".join(_help_of("bench", "--help").split())
    assert text.startswith("usage: pgcall bench [options]")
    assert "Load-test" in text
    assert "--calls N video calls to run at once, 2 clients each (default 1)" in text
    assert "Exit status: 0 PASS, 1 FAIL" in text


def test_dsn_help_says_what_runs_without_it() -> None:
    text = " ".join(_help_of("--help").split())
    assert "without it, pgcall runs an embedded PostgreSQL of its own in --data-dir" in text


# -- --pg-bindir -------------------------------------------------------------------------------


def _fake_bindir(path: Path, *names: str) -> Path:
    path.mkdir(parents=True)
    for name in names:
        (path / name).write_text("#!/bin/sh\n")
        (path / name).chmod(0o755)
    return path


def test_pg_bindir_reaches_the_config(as_user: Path, tmp_path: Path) -> None:
    bindir = _fake_bindir(tmp_path / "bin", "initdb", "postgres")
    assert config_of(["--pg-bindir", str(bindir)]).pg_bindir == bindir
    assert config_of([]).pg_bindir is None


def test_pg_bindir_without_the_server(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    bindir = _fake_bindir(tmp_path / "bin", "initdb")
    err = usage_error(["--pg-bindir", str(bindir)], capsys)
    assert "--pg-bindir" in err and "initdb and postgres" in err


# -- the README's options table ------------------------------------------------------------------


def _readme_options() -> set[str]:
    """The options in the first column of the README's Options table."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Options"):]
    table = table[:table.index("\n\n", table.index("| option"))]
    first_column = [row.split("|")[1] for row in table.splitlines()[2:]]
    return {option for cell in first_column for option in re.findall(r"--[a-z][a-z0-9-]*", cell)}


def test_readme_options_table_matches_help() -> None:
    in_help = {s for a in _actions(build_parser({})) for s in a.option_strings}
    assert _readme_options() == in_help | {"--help"}


@pytest.mark.parametrize("url", ["notaurl", "http://127.0.0.1:9000", "ws://"])
def test_bench_refuses_what_is_not_a_websocket_url(url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["bench", "--url", url], {})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: pgcall bench [options]")
    assert "--url" in err and "ws://127.0.0.1:9000" in err
