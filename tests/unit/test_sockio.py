"""``web.sockio``: reads and writes of a plain socket tried before waiting, and after a read
that emptied the kernel's buffer, a wait before the next read instead of a read bound to fail."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from pgcall.web import sockio


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int | str]:
    """Every ``os.read`` sockio makes: the bytes it returned, or "EAGAIN"."""
    seen: list[int | str] = []
    real = os.read

    def read(fd: int, n: int) -> bytes:
        try:
            data = real(fd, n)
        except BlockingIOError:
            seen.append("EAGAIN")
            raise
        seen.append(len(data))
        return data

    monkeypatch.setattr(sockio.os, "read", read)
    return seen


@pytest.fixture
async def pair() -> AsyncIterator[tuple[sockio.SocketIO, trio.SocketStream]]:
    a, b = trio.socket.socketpair()
    yield sockio.SocketIO(trio.SocketStream(a)), trio.SocketStream(b)
    a.close()
    b.close()


async def test_after_a_short_read_the_next_one_waits_instead_of_failing(
        reads: list[int | str], pair: Any, autojump_clock: Any) -> None:
    io, peer = pair
    await peer.send_all(b"x" * 10)
    assert await io.receive_some(100) == b"x" * 10  # short: the buffer is empty now
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await io.receive_some(100))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(1)
        assert reads == [10]  # waiting, without a read that would have failed
        await peer.send_all(b"y" * 5)
    assert got == [b"y" * 5]
    assert reads == [10, 5]


async def test_after_a_full_read_the_next_one_tries_at_once(
        reads: list[int | str], pair: Any, autojump_clock: Any) -> None:
    io, peer = pair
    await peer.send_all(b"x" * 150)
    assert await io.receive_some(100) == b"x" * 100  # full: there may be more
    assert await io.receive_some(100) == b"x" * 50
    assert reads == [100, 50]
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await io.receive_some(100))

    await peer.send_all(b"z" * 100)
    assert await io.receive_some(100) == b"z" * 100
    assert reads == [100, 50, 100]  # after the short read of 50, no EAGAIN read either
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)  # after a full read: tried at once, fails, then waits
        await trio.sleep(1)
        assert reads == [100, 50, 100, "EAGAIN"]
        await peer.send_all(b"w")
    assert got == [b"w"]


async def test_a_socket_closed_after_a_short_read_raises_closed(
        reads: list[int | str], pair: Any, autojump_clock: Any) -> None:
    io, peer = pair
    await peer.send_all(b"x")
    assert await io.receive_some(100) == b"x"
    io._sock.close()
    with pytest.raises(trio.ClosedResourceError):
        await io.receive_some(100)


async def test_end_of_stream_after_a_short_read(reads: list[int | str], pair: Any,
                                                 autojump_clock: Any) -> None:
    io, peer = pair
    await peer.send_all(b"x")
    assert await io.receive_some(100) == b"x"
    await peer.aclose()
    assert await io.receive_some(100) == b""
