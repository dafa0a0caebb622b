"""``FrameGuard``: the size of a client's message is refused from its frame headers, before
the payload is read (RFC 6455 §5.2 lengths, §5.4 fragmentation, §5.5 control frames).

Every input is fed three ways, as for any sans-IO parser: whole, byte by byte (the verdict
must come with the byte that completes the offending header, and not before), and with the
start of another frame left over after it. Expected offsets are computed here from the
frames themselves, independently of the guard's own header arithmetic.
"""

from __future__ import annotations

import random

import attrs
import pytest

from pgcall.config import WsLimits
from pgcall.web.frameguard import FrameGuard, Oversize
from tests.wsframes import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, binary, frame

MAX = WsLimits().max_message  # 600 KiB


def cont(payload: bytes = b"", **kw: object) -> bytes:
    return frame(CONTINUATION, payload, **kw)  # type: ignore[arg-type]


def header_size(data: bytes) -> int:
    """The header length of the frame that starts ``data`` (§5.2), computed by hand."""
    short = data[1] & 0x7F
    return 2 + {126: 2, 127: 8}.get(short, 0) + (4 if data[1] & 0x80 else 0)


@attrs.frozen
class Case:
    name: str
    limit: int
    frames: list[bytes]
    # (index of the frame whose header is refused, the size declared by then), or None
    refused: tuple[int, int] | None = None
    mid_message: bool = False  # after all frames (when none is refused)

    @property
    def data(self) -> bytes:
        return b"".join(self.frames)

    @property
    def verdict(self) -> Oversize | None:
        return None if self.refused is None else Oversize(self.refused[1], self.limit)

    @property
    def verdict_at(self) -> int | None:
        """Offset of the byte with which the verdict must come."""
        if self.refused is None:
            return None
        index = self.refused[0]
        before = sum(len(f) for f in self.frames[:index])
        return before + header_size(self.frames[index]) - 1


def x(n: int) -> bytes:
    return b"x" * n


CASES = [
    # one frame, every length width, masked (as clients must) and unmasked
    Case("7-bit length at the limit", 125, [binary(x(125))]),
    Case("7-bit length one over", 124, [binary(x(125))], (0, 125)),
    Case("16-bit length at the limit", 126, [binary(x(126))]),
    Case("16-bit length one over", 300, [binary(x(301))], (0, 301)),
    Case("16-bit length, largest", 65535, [binary(x(65535))]),
    Case("16-bit length, largest, one over", 65534, [binary(x(65535))], (0, 65535)),
    Case("64-bit length at the limit", 65536, [binary(x(65536))]),
    Case("64-bit length one over", 65536, [binary(x(65537))], (0, 65537)),
    Case("a longer length field than needed", 5, [binary(x(5), width=64)]),
    Case("a longer length field than needed, one over", 4, [binary(x(5), width=16)], (0, 5)),
    Case("unmasked, at the limit", 200, [binary(x(200), mask=None), binary(x(1), mask=None)]),
    Case("unmasked, one over", 199, [binary(x(200), mask=None)], (0, 200)),
    Case("a text frame counts like a binary one", 9, [frame(TEXT, x(10))], (0, 10)),
    Case("50 MB declared in 64 bits", MAX, [binary(b"", declared=50_000_000)],
         (0, 50_000_000)),
    Case("the largest 64-bit length", MAX, [binary(b"", declared=2**64 - 1)], (0, 2**64 - 1)),
    Case("the real limit, one over", MAX, [binary(b"", declared=MAX + 1)], (0, MAX + 1)),
    # fragmented messages: the continuation frames are counted as their headers come
    Case("three fragments at the limit", 300,
         [binary(x(100), fin=False), cont(x(100), fin=False), cont(x(100))]),
    Case("three fragments one over", 299,
         [binary(x(100), fin=False), cont(x(100), fin=False), cont(x(100))], (2, 300)),
    Case("refused at the fragment that goes over, not at the end", 150,
         [binary(x(100), fin=False), cont(x(100), fin=False), cont(x(100))], (1, 200)),
    Case("a fragment declaring 50 MB", MAX,
         [binary(x(10), fin=False), cont(b"", declared=50_000_000)], (1, 50_000_010)),
    Case("an unfinished fragmented message", 300, [binary(x(100), fin=False)],
         mid_message=True),
    Case("control frames between fragments are not counted", 300,
         [binary(x(100), fin=False), frame(PING, x(125)), cont(x(100), fin=False),
          frame(PONG, x(125)), frame(PING, b""), cont(x(100))]),
    Case("a control frame inside an unfinished message", 300,
         [binary(x(100), fin=False), frame(PING, x(125))], mid_message=True),
    Case("each message is counted on its own", 300,
         [binary(x(300)), frame(TEXT, x(300)), binary(x(150), fin=False), cont(x(150)),
          binary(x(300))]),
    Case("a new message after a fragmented one starts from zero", 200,
         [binary(x(150), fin=False), cont(x(50)), binary(x(200))]),
    Case("a data frame that is not a continuation restarts the count", 200,
         [binary(x(150), fin=False), binary(x(200))]),
    # zero-length frames
    Case("zero-length messages", 0, [binary(b""), frame(TEXT, b""), binary(b"")]),
    Case("zero-length fragments", 0,
         [binary(b"", fin=False), cont(b"", fin=False), frame(PING, b""), cont(b"")]),
    Case("a message of empty fragments is unfinished", 0,
         [binary(b"", fin=False), cont(b"", fin=False), cont(b"", fin=False)],
         mid_message=True),
    Case("one byte after zero-length frames", 0, [binary(b""), binary(b"x")], (1, 1)),
    # control frames never count, whatever they declare (wsproto refuses them over 125)
    Case("a close frame", 0, [frame(CLOSE, b"\x03\xe8")]),
    Case("a ping declaring 50 MB is not a message", 10,
         [frame(PING, b"", declared=50_000_000)], mid_message=True),
]


def fresh(case: Case) -> FrameGuard:
    return FrameGuard(case.limit)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_whole(case: Case) -> None:
    guard = fresh(case)
    assert guard.feed(case.data) == case.verdict
    if case.verdict is None:
        assert guard.mid_message is case.mid_message
        assert guard.frames == len(case.frames)  # every header counted, of any kind
        firsts = [f for f in case.frames if (f[0] & 0x0F) in (BINARY, TEXT)]
        assert guard.messages == len(firsts)  # of which the first frames of data messages


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_byte_by_byte(case: Case) -> None:
    guard = fresh(case)
    data = case.data
    if len(data) > 70_000:  # one byte at a time up to the verdict, the rest at once
        data = data[:(case.verdict_at or 70_000) + 1]
    verdicts = [(i, v) for i in range(len(data)) if (v := guard.feed(data[i:i + 1]))]
    if case.verdict is None:
        assert verdicts == []
        if data == case.data:
            assert guard.mid_message is case.mid_message
    else:
        # The first verdict comes with the byte that completes the refused frame's header.
        assert verdicts[0] == (case.verdict_at, case.verdict)


@pytest.mark.parametrize("trailing", [b"\x82", b"\x82\xfe\x00", frame(PING, b"abc")[:-1]],
                         ids=["1 byte", "3 bytes", "a ping but its last byte"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_with_trailing_bytes(case: Case, trailing: bytes) -> None:
    guard = fresh(case)
    assert guard.feed(case.data + trailing) == case.verdict
    if case.verdict is None:
        assert guard.mid_message  # another frame has begun


@pytest.mark.parametrize("seed", range(5))
def test_any_split_gives_the_same_verdict(seed: int) -> None:
    rng = random.Random(seed)
    for case in CASES:
        data = case.data[:(case.verdict_at or len(case.data)) + 1]
        guard, pos, verdict = fresh(case), 0, None
        while pos < len(data) and verdict is None:
            step = rng.randint(1, 9)
            verdict = guard.feed(memoryview(data)[pos:pos + step])
            pos += step
        assert verdict == case.verdict, case.name


@pytest.mark.parametrize("chunk", [65536, 4099])
def test_the_real_limit_takes_exactly_600_kib(chunk: int) -> None:
    assert MAX == 600 * 1024
    guard = FrameGuard(MAX)
    at_limit = binary(bytes(MAX))
    data = at_limit + binary(bytes(MAX), fin=False) + cont(b"x")
    verdicts = [(i, v) for i in range(0, len(data), chunk)
                if (v := guard.feed(data[i:i + chunk]))]
    # The first message passes; the second is refused in the chunk holding the header of
    # the one byte too many, after all of its first 600 KiB went through.
    (at, verdict), *_ = verdicts
    assert verdict == Oversize(MAX + 1, MAX)
    assert at <= len(data) - 1 < at + chunk


def test_the_guard_keeps_no_payload() -> None:
    guard = FrameGuard(MAX)
    assert guard.feed(binary(bytes(MAX))) is None
    # What it keeps between calls is at most one incomplete header, never payload.
    assert guard.feed(binary(bytes(10))[:5]) is None
    assert len(guard._head) < 14


@pytest.mark.parametrize("opcode", [BINARY, TEXT])
def test_mid_message_follows_the_frames(opcode: int) -> None:
    guard = FrameGuard(1000)
    assert not guard.mid_message
    first = frame(opcode, x(10), fin=False)
    assert guard.feed(first[:1]) is None and guard.mid_message  # a header has begun
    assert guard.feed(first[1:]) is None and guard.mid_message  # the message is unfinished
    assert guard.feed(frame(PING, b"p")) is None and guard.mid_message
    assert guard.feed(cont(x(5), fin=False)) is None and guard.mid_message
    last = cont(x(5))
    assert guard.feed(last[:-1]) is None and guard.mid_message  # payload still to come
    assert guard.feed(last[-1:]) is None and not guard.mid_message


def test_boundaries_count_the_returns_to_between_messages() -> None:
    guard = FrameGuard(1000)
    assert guard.boundaries == 0
    guard.feed(binary(x(10)) + frame(PING, b""))  # a message, a control frame outside one
    assert guard.boundaries == 2
    guard.feed(binary(x(5), fin=False) + frame(PING, b"p") + cont(x(5), fin=False))
    assert guard.boundaries == 2  # inside a fragmented message: no boundary
    last = cont(x(5))
    guard.feed(last[:-1])
    assert guard.boundaries == 2
    guard.feed(last[-1:])
    assert guard.boundaries == 3


def test_the_fast_masker_unmasks_as_wsproto_does_piece_by_piece() -> None:
    """web.masking replaces wsproto's masker: the same bytes, whatever the pieces."""
    import os

    from wsproto.frame_protocol import XorMaskerNull  # noqa: F401 (wsproto is importable)

    from pgcall.web.masking import FastMasker

    key, data = os.urandom(4), os.urandom(10_001)
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    for cut in (0, 1, 3, 4, 5, 4096, 10_000):
        masker = FastMasker(key)
        got = bytes(masker.process(bytearray(data[:cut]))) + bytes(
            masker.process(bytearray(data[cut:])))
        assert got == expected, cut
