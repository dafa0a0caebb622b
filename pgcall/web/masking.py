"""Unmasking client frames in C: the ``websockets`` library's ``apply_mask`` in place of
wsproto's pure-Python masker.

Owns: one drop-in for ``wsproto.frame_protocol.XorMaskerSimple`` (same interface: made with the
frame's 4-byte key, ``process`` called on each piece of the payload in order, the key turning
with the bytes consumed) and installing it. Why: every byte a client sends is masked (RFC 6455
§5.3); wsproto unmasks with four strided ``bytes.translate`` passes, about 70 µs for a 30 KB
video frame, the largest single cost of receiving media. ``apply_mask`` (C, from the
well-kept ``websockets`` package) takes about 1.5 µs. wsproto still does all the parsing and
checking; only this arithmetic moves.
"""

from __future__ import annotations

import wsproto.frame_protocol
from websockets.speedups import apply_mask


class FastMasker:
    def __init__(self, masking_key: bytes | bytearray) -> None:
        self._key = bytes(masking_key)

    def process(self, data: bytes | bytearray) -> bytes | bytearray:
        if not data:
            return data
        out = apply_mask(data, self._key)  # any buffer: no copy on the way in
        turn = len(data) % 4  # the next piece continues with the next byte of the key
        self._key = self._key[turn:] + self._key[:turn]
        return out


def install() -> None:
    """Make wsproto unmask with ``FastMasker``."""
    wsproto.frame_protocol.XorMaskerSimple = FastMasker  # type: ignore[misc,assignment]
