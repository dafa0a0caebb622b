"""``pgcall recordings`` and ``pgcall export``: their arguments, usage errors, the listing's
columns, and the README documenting every option (the commands themselves run against a
real PostgreSQL in tests/integration/test_export_cli.py)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pgcall.cli import parse_args
from pgcall.recording.cli import build_export_parser, build_recordings_parser, listing_lines

REPO = Path(__file__).resolve().parents[2]
RID = "0f0e0d0c-0b0a-4908-8706-050403020100"


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        parse_args(argv, {})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: pgcall {argv[0]}") and "error:" in err
    return err


def test_export_arguments() -> None:
    args = parse_args(["export", RID, "-o", "x.mp4"], {})
    assert args.command == "export" and args.recording_id == RID
    assert (args.output, args.layout, args.size, args.fps) == (Path("x.mp4"), "grid",
                                                              (1280, 720), 15)
    assert args.dsn is None and args.data_dir is None
    args = parse_args(["export", RID, "--output", "y.mp4", "--layout", "speaker", "--size",
                       "640x360", "--fps", "30", "--data-dir", "/srv/pgcall"], {})
    assert (args.layout, args.size, args.fps, args.data_dir) == ("speaker", (640, 360), 30,
                                                                 Path("/srv/pgcall"))


def test_the_dsn_comes_from_the_environment_too() -> None:
    env = {"PGCALL_DSN": "host=/run/pg dbname=calls"}
    assert parse_args(["recordings"], env).dsn == "host=/run/pg dbname=calls"
    assert parse_args(["recordings", "--dsn", "x"], env).dsn == "x"
    assert parse_args(["recordings"], {"PGCALL_DSN": ""}).dsn is None


@pytest.mark.parametrize(("argv", "says"), [
    (["export", RID], "-o"),
    (["export", "-o", "x.mp4"], "RECORDING_ID"),
    (["export", RID, "-o", "x.mp4", "--layout", "mosaic"], "--layout"),
    (["export", RID, "-o", "x.mp4", "--size", "big"], "WIDTHxHEIGHT"),
    (["export", RID, "-o", "x.mp4", "--size", "1282x720"], "multiples of 4"),
    (["export", RID, "-o", "x.mp4", "--size", "64x36"], "160x96 to 3840x2160"),
    (["export", RID, "-o", "x.mp4", "--fps", "0"], "1-60"),
    (["recordings", "extra"], "unrecognized arguments"),
])
def test_usage_errors(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert says in usage_error(argv, capsys)


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if "-h" not in a.option_strings]


@pytest.mark.parametrize("build", [build_recordings_parser, build_export_parser])
def test_every_option_has_a_sentence_and_is_in_the_readme(
        build: type[argparse.ArgumentParser]) -> None:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Recordings"):]
    section = section[:section.index("\n## ")]
    for action in _actions(build({})):
        assert action.help and len(action.help.split()) >= 3, action.dest
        for option in action.option_strings:
            assert f"`{option}" in section, option


def test_the_listing() -> None:
    started = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    recs = [
        {"recording_id": RID, "kind": "room", "started_at": started, "stopped_at": None,
         "bytes": 0, "participants": [f"{i}" * 64 for i in range(5)]},
        {"recording_id": "1" * 8 + RID[8:], "kind": "call", "started_at": started,
         "stopped_at": started + timedelta(hours=1, minutes=2, seconds=3.4),
         "bytes": 123_456_789, "participants": ["a" * 64, "b" * 64]},
    ]
    head, room, call = listing_lines(recs)
    assert re.split(r"\s{2,}", head) == ["RECORDING", "KIND", "STARTED (UTC)", "DURATION",
                                         "SIZE", "PARTICIPANTS"]
    assert re.split(r"\s{2,}", room) == [RID, "room", "2026-03-01 12:00:00", "ongoing",
                                         "0.0 MB", "5: 00000000 11111111 22222222 +2"]
    assert re.split(r"\s{2,}", call)[3:] == ["1:02:03", "123.5 MB", "2: aaaaaaaa bbbbbbbb"]
    assert len({line.index("KIND") for line in [head]} | {room.index("room")}) == 1
    assert listing_lines([]) == ["no recordings"]
