"""Refusing an oversized WebSocket message from its frame headers, before its payload is read.

Owns: following the frame boundaries of what a client sends (RFC 6455 §5.2: two header bytes,
an extended length of 2 or 8 bytes, a 4-byte mask, then the payload) and the size of the data
message being assembled from them (a first frame plus its continuation frames, §5.4). Control
frames (opcodes 8-15) are skipped: wsproto refuses those over 125 bytes itself.
Does not own: decoding frames (wsproto does that, after the guard has passed the bytes) or
anything the header says besides lengths and opcodes. Pure.

Why a guard beside wsproto: wsproto hands out a frame's payload as it arrives, but tells
nobody the length a header declares. Without the guard, a client declaring a 50 MB message is
noticed only once 600 KiB of it have been read; with it, the first chunk holding the header
is refused, and the rest is never read.
"""

from __future__ import annotations

import attrs

_CONTINUATION = 0x0
_CLOSE = 0x8
_CONTROL_BIT = 0x8


@attrs.frozen
class Oversize:
    """The message being received would exceed the limit."""

    declared: int  # bytes of the message so far, counting the frame just announced
    limit: int


class FrameGuard:
    """Feed it every byte received after the handshake, in order; ``feed`` answers None while
    the stream stays within ``max_message`` bytes per message, else an ``Oversize``."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._head = bytearray()  # the frame header received so far (incomplete)
        self._skip = 0  # payload bytes of the current frame still to come
        self._message = 0  # data bytes of the message being assembled
        self._in_message = False  # a data message has begun and its final frame not passed
        self._ends_message = False  # the current frame is the final frame of a data message
        self.frames = 0  # frame headers seen, of any kind
        self.messages = 0  # of which first frames of a data message (the socket's frame budget
        # counts the others: control frames and continuations)
        # Times the stream came back between messages (a message, or a control frame outside
        # one, ended): the socket's message deadline starts again from the next byte.
        self.boundaries = 0
        self.closes = 0  # close frames begun

    @property
    def mid_message(self) -> bool:
        """True while a frame, or a message fragmented over several frames, is incomplete."""
        return bool(self._head) or self._skip > 0 or self._in_message

    def feed(self, data: bytes | bytearray | memoryview) -> Oversize | None:
        """Follow ``data``'s frames; the first refusal among them, if any. Frames are followed
        to the end of ``data`` either way, so that after a refusal the guard still knows where
        the next frame (a close frame, say) begins."""
        view = memoryview(data).cast("B")
        pos, end = 0, len(view)
        first: Oversize | None = None
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                if not self._skip:
                    self._frame_passed()
                continue
            if not self._head and end - pos >= 2 and \
                    end - pos >= (size := header_length(view[pos:pos + 2])):
                # The whole header is in this chunk (the usual case): taken at once.
                self._head = bytearray(view[pos:pos + size])
                pos += size
            else:  # a header split across reads: byte by byte until it is complete
                self._head.append(view[pos])
                pos += 1
                if len(self._head) < header_length(self._head):
                    continue
            verdict = self._header_complete()
            if verdict is not None and first is None:
                first = verdict
        return first

    def _header_complete(self) -> Oversize | None:
        head, self._head = self._head, bytearray()
        self.frames += 1
        fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
        self._skip = payload_length(head)
        self._ends_message = False
        if opcode == _CLOSE:
            self.closes += 1
        if not opcode & _CONTROL_BIT:
            if opcode != _CONTINUATION:
                self._message = 0
                self.messages += 1
            self._message += self._skip
            self._in_message = True  # even if all its frames are empty: it is unfinished
            if self._message > self.max_message:
                return Oversize(self._message, self.max_message)
            self._ends_message = fin
        if not self._skip:
            self._frame_passed()
        return None

    def _frame_passed(self) -> None:
        if self._ends_message:
            self._message = 0
            self._in_message = self._ends_message = False
        if not self._in_message:
            self.boundaries += 1


def header_length(head: bytes | bytearray | memoryview) -> int:
    """The full length of a frame header that starts with ``head`` (2 until its second byte,
    which gives the length's width and whether a mask follows, is known)."""
    if len(head) < 2:
        return 2
    short = head[1] & 0x7F
    extended = 2 if short == 126 else 8 if short == 127 else 0
    return 2 + extended + (4 if head[1] & 0x80 else 0)


def payload_length(head: bytes | bytearray) -> int:
    """The payload length a complete header declares (§5.2)."""
    short = head[1] & 0x7F
    if short == 126:
        return int.from_bytes(head[2:4], "big")
    if short == 127:
        return int.from_bytes(head[2:10], "big")
    return short
