"""The head of the first HTTP request on a connection, and whether it asks for a WebSocket.

Owns: finding where the request head ends (the first empty line, RFC 9112 §2.1) within a size
limit, and telling a WebSocket upgrade (an ``Upgrade`` header naming ``websocket``, RFC 6455
§4.1) from any other request. The front door reads the head with this, then hands the
connection to the WebSocket side or to the HTTP server. Does not own validating either kind
of request (wsproto and hypercorn do that). Pure.
"""

from __future__ import annotations

MAX_HEAD = 16 * 1024  # request line and headers; browsers send well under 4 KiB
_END = b"\r\n\r\n"


class HeadTooLarge(Exception):
    pass


def split_head(buffer: bytes | bytearray, max_head: int = MAX_HEAD) -> tuple[bytes, bytes] | None:
    """(head including its empty line, what follows it), or None if the head is incomplete.
    Raises ``HeadTooLarge`` once ``max_head`` bytes hold no complete head."""
    end = buffer.find(_END, 0, max_head)  # the whole empty line within the first max_head
    if end < 0:
        if len(buffer) >= max_head:
            raise HeadTooLarge(f"no end of the request head within {max_head} bytes")
        return None
    cut = end + len(_END)
    return bytes(buffer[:cut]), bytes(buffer[cut:])


def wants_websocket(head: bytes) -> bool:
    """True if the request asks to upgrade to a WebSocket (any header line ``Upgrade:`` whose
    comma-separated tokens include ``websocket``, in any case)."""
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"upgrade":
            if any(t.strip().lower() == b"websocket" for t in value.split(b",")):
                return True
    return False
