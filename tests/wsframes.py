"""WebSocket frames built byte by byte (RFC 6455 §5.2), including every way to get them wrong,
for the tests of pgcall's WebSocket layer and the hostile clients of the integration tests.

Owns: encoding one frame with any opcode, FIN and RSV bits, mask (or none), length width and
declared length (which may lie about the payload), and the opening handshake of a client
(§4.1) as raw bytes. Its own code, not wsproto's: a library refuses to build the broken
frames these tests need, and sharing the server's library would hide a shared bug.
"""

from __future__ import annotations

import base64

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"  # any fixed key: the tests need reproducible bytes
KEY = base64.b64encode(b"pgcall-test-key!").decode()  # 16 bytes, as §4.1 asks


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the 4-byte ``key`` repeated (§5.3), as one big-integer operation."""
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
          mask: bytes | None = MASK, declared: int | None = None,
          width: int | None = None) -> bytes:
    """One frame. ``declared`` is the length the header states (default: the payload's);
    ``width`` forces the length encoding: 7, 16 or 64 bits (default: the shortest, as §5.2
    requires). ``mask=None`` sends the payload unmasked, which a client must never do."""
    length = len(payload) if declared is None else declared
    if width is None:
        width = 7 if length < 126 else 16 if length < 65536 else 64
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0xF
    mask_bit = 0x80 if mask is not None else 0
    if width == 7:
        head = bytes([first, mask_bit | length])
    elif width == 16:
        head = bytes([first, mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + length.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + mask_bytes(payload, mask)


def binary(payload: bytes, **kw: object) -> bytes:
    return frame(BINARY, payload, **kw)  # type: ignore[arg-type]


def close_frame(code: int | None = 1000, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return frame(CLOSE, payload)


def upgrade_request(host: str = "127.0.0.1", path: str = "/",
                    headers: dict[str, str] | None = None) -> bytes:
    """A browser-like opening handshake (§4.1) with no Origin header, as raw bytes."""
    fields = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13", **(headers or {})}
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
