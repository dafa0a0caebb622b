"""Each relay's publication: row filters from PostgreSQL 15, every frame (and a warning) on 14."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pgcall.db import publications


class FakeConn:
    def __init__(self, server_version: int) -> None:
        self.server_version = server_version
        self.executed: list[str] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.executed.append(sql)


async def test_postgresql_15_gets_a_publication_of_its_own_frames() -> None:
    conn = FakeConn(150004)
    pubs = await publications.open_relay_publication(conn, 42)  # type: ignore[arg-type]
    assert pubs == (publications.STATE, "pgcall_frames_42")
    assert conn.executed == ["DROP PUBLICATION IF EXISTS pgcall_frames_42",
                             publications.create_sql(42)]
    assert "to_relay = 42" in conn.executed[1] and "relays @> '{42}'" in conn.executed[1]


async def test_postgresql_14_reads_every_frame_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    conn = FakeConn(140011)
    with caplog.at_level(logging.WARNING, logger="pgcall.publications"):
        pubs = await publications.open_relay_publication(conn, 42)  # type: ignore[arg-type]
    assert pubs == (publications.STATE, publications.SHARED_FRAMES)
    assert conn.executed == []
    assert "PostgreSQL 14 has no publication row filters" in caplog.text
