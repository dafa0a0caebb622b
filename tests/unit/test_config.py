"""The frozen ``Config`` and the rules that choose the default data directory."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from pgcall import config
from pgcall.config import Config, default_data_dir

HOME = Path("/home/alice")


def test_defaults_match_pg_relay() -> None:
    cfg = Config()
    assert cfg.port == 9000
    assert cfg.host == "127.0.0.1"
    assert cfg.frontend == "vanilla"
    assert cfg.retain_s == 5.0
    assert cfg.dsn is None
    assert cfg.certfile is None and cfg.keyfile is None


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]


def test_changed_copy_leaves_the_original_alone() -> None:
    cfg = Config()
    other = attrs.evolve(cfg, port=9100)
    assert other.port == 9100
    assert cfg.port == 9000
    assert other != cfg


def test_embedded_without_dsn_only() -> None:
    assert Config().embedded
    assert not Config(dsn="postgresql://db.example/pgcall").embedded


def test_frontend_names() -> None:
    assert set(config.FRONTENDS) == {"vanilla", "svelte"}


@pytest.mark.parametrize("is_root", [False, True])
def test_xdg_data_home_wins(is_root: bool) -> None:
    env = {"XDG_DATA_HOME": "/srv/xdg"}
    assert default_data_dir(env, HOME, is_root) == Path("/srv/xdg/pgcall")


def test_user_without_xdg_uses_local_share() -> None:
    assert default_data_dir({}, HOME, False) == HOME / ".local" / "share" / "pgcall"


def test_empty_xdg_data_home_is_ignored() -> None:
    # The XDG base directory spec: an empty value counts as unset.
    assert default_data_dir({"XDG_DATA_HOME": ""}, HOME, False) == (
        HOME / ".local" / "share" / "pgcall")


def test_root_without_xdg_uses_var_lib() -> None:
    assert default_data_dir({}, Path("/root"), True) == Path("/var/lib/pgcall")


def test_default_data_dir_ignores_the_process_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Only ``cli`` reads os.environ; everything below gets the environment passed in.
    monkeypatch.setenv("XDG_DATA_HOME", "/from/process/env")
    monkeypatch.setenv("HOME", "/from/process/home")
    assert default_data_dir({}, HOME, False) == HOME / ".local" / "share" / "pgcall"
