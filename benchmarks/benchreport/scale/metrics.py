"""A relay's ``/metrics``, fetched over plain HTTP/1.0 and parsed.

Owns: the GET and reading its body. Does not own: the parsing (``promtext``) or which figures
a section takes from it (``relays``).
"""

from __future__ import annotations

import trio

from ..settings import HOST
from .promtext import Series, parse

TIMEOUT_S = 10.0


async def scrape(port: int) -> Series:
    with trio.fail_after(TIMEOUT_S):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(f"GET /metrics HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            data = bytearray()
            while True:
                head_end = data.find(b"\r\n\r\n")
                if head_end >= 0 and _complete(data, head_end):
                    break
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status = head.split(b" ", 2)
    if len(status) < 2 or status[1] != b"200":
        raise RuntimeError(f"GET /metrics on port {port}: {head[:80]!r}")
    return parse(body.decode())


def _complete(data: bytearray, head_end: int) -> bool:
    """Whether the whole body is in: its Content-Length reached (else wait for the close)."""
    for line in bytes(data[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(data) - head_end - 4 >= int(value)
    return False
