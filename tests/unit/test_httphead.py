"""``httphead``: where the first request's head ends (RFC 9112 §2.1) within its size limit, and
whether it asks for a WebSocket (RFC 6455 §4.1). Each input is fed whole, byte by byte and
with trailing bytes, as the front door receives it in chunks of any size."""

from __future__ import annotations

import pytest

from pgcall.web.httphead import MAX_HEAD, HeadTooLarge, split_head, wants_websocket
from tests.wsframes import binary, upgrade_request

GET = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"


def feed_bytewise(data: bytes, max_head: int = MAX_HEAD) -> tuple[int, tuple[bytes, bytes]]:
    """Grow a buffer one byte at a time as the front door does; (bytes it took, result)."""
    buffer = bytearray()
    for i in range(len(data)):
        buffer.append(data[i])
        parts = split_head(buffer, max_head)
        if parts is not None:
            return i + 1, parts
    raise AssertionError("no complete head")


@pytest.mark.parametrize("head", [GET, upgrade_request(), b"\r\n\r\n",
                                  b"GET /?a=b HTTP/1.0\r\nX: \r\n\r\n"])
def test_a_complete_head_whole_bytewise_and_with_trailing_bytes(head: bytes) -> None:
    assert split_head(head) == (head, b"")
    assert feed_bytewise(head) == (len(head), (head, b""))
    for rest in (b"x", binary(b"frames already"), GET, b"\r\n\r\n"):
        assert split_head(head + rest) == (head, rest)
        assert split_head(bytearray(head + rest)) == (head, rest)


@pytest.mark.parametrize("partial", [b"", b"G", GET[:-1], GET[:-2], GET[:-3],
                                     b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\n\n"])
def test_an_incomplete_head_waits(partial: bytes) -> None:
    assert split_head(partial) is None


def test_the_first_empty_line_ends_the_head() -> None:
    data = GET + b"body\r\n\r\nmore"
    assert split_head(data) == (GET, b"body\r\n\r\nmore")


@pytest.mark.parametrize("limit", [64, 1000, MAX_HEAD])
def test_a_head_of_exactly_the_limit_is_taken_whole_and_bytewise(limit: int) -> None:
    start = b"GET / HTTP/1.1\r\nX-Pad: "
    head = start + b"a" * (limit - len(start) - 4) + b"\r\n\r\n"
    assert len(head) == limit
    assert split_head(head, limit) == (head, b"")
    assert split_head(head + b"trailing", limit) == (head, b"trailing")
    assert feed_bytewise(head, limit) == (limit, (head, b""))


@pytest.mark.parametrize("over", [1, 2, 3, 4, 100])
@pytest.mark.parametrize("limit", [64, MAX_HEAD])
def test_a_head_over_the_limit_is_refused_whole_and_bytewise(limit: int, over: int) -> None:
    start = b"GET / HTTP/1.1\r\nX-Pad: "
    head = start + b"a" * (limit + over - len(start) - 4) + b"\r\n\r\n"
    assert len(head) == limit + over
    # Whatever the chunks, the verdict is the same: its first ``limit`` bytes hold no head.
    with pytest.raises(HeadTooLarge):
        split_head(head, limit)
    with pytest.raises(HeadTooLarge):
        split_head(head + GET, limit)
    with pytest.raises(HeadTooLarge):
        feed_bytewise(head, limit)


def test_no_end_within_the_limit_is_refused_once_the_limit_is_reached() -> None:
    assert split_head(b"a" * (MAX_HEAD - 1)) is None
    with pytest.raises(HeadTooLarge):
        split_head(b"a" * MAX_HEAD)
    assert MAX_HEAD == 16 * 1024


@pytest.mark.parametrize(("head", "expected"), [
    (upgrade_request(), True),
    (b"GET / HTTP/1.1\r\nupgrade: WebSocket\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nUPGRADE:websocket\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nUpgrade: h2c, websocket\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nUpgrade: foo,WEBSOCKET , bar\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade : websocket\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nUpgrade: websocketx\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nUpgrade: web socket\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nX-Upgrade: websocket\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nX: Upgrade: websocket\r\n\r\n", False),
    (b"GET /Upgrade:websocket HTTP/1.1\r\n\r\n", False),  # the request line is no header
    (b"Upgrade: websocket\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nUpgrade\r\n\r\n", False),
    (b"\xff\xfe\r\n\xff: \xff\r\n\r\n", False),
])
def test_wants_websocket(head: bytes, expected: bool) -> None:
    assert wants_websocket(head) is expected
