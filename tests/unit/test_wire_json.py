"""orjson on the wire: `protocol._loads` and `encode._dumps` give exactly what the stdlib json
module gave before (same value, same bytes, same error), and take orjson's fast path for the
messages that matter (a frame's header, a control message)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import random
import struct
import sys
import uuid
from collections import OrderedDict
from typing import Any

import pytest

from pgcall.wire import encode as enc
from pgcall.wire import protocol as p
from pgcall.wire.plainjson import plain_within
from pgcall.wire.protocol import ProtocolError

SID = "3f1c2a9e-5b7d-4c8e-9a1f-2b3c4d5e6f70"
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


# --- the stdlib paths as they were, and an exact comparison --------------------------------


def stdlib_loads(data: bytes) -> object:
    try:
        return p._DECODER.decode(str(data, "utf-8"))
    except (ValueError, RecursionError):
        raise ProtocolError("unknown", p.ERR_MALFORMED) from None


def stdlib_dumps(obj: object) -> bytes:
    text = enc._ENCODER.encode(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return enc._ASCII_ENCODER.encode(obj).encode("ascii")


def outcome(fn: Any, arg: object) -> tuple[str, object]:
    try:
        return "value", fn(arg)
    except ProtocolError as exc:
        return "protocol error", exc.args
    except (ValueError, TypeError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down, keys in the same order; floats by repr
    (so -0.0 is not 0.0 and NaN is NaN). Without recursion: values nest 1000 deep."""
    pairs = [(a, b)]
    while pairs:
        x, y = pairs.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict) and isinstance(y, dict):
            if list(x) != list(y):
                return False
            pairs.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list | tuple) and isinstance(y, list | tuple):
            if len(x) != len(y):
                return False
            pairs.extend(zip(x, y, strict=True))
        elif isinstance(x, float):
            if repr(x) != repr(y):
                return False
        elif x != y:
            return False
    return True


def assert_loads_as_before(data: bytes) -> None:
    old = outcome(stdlib_loads, data)
    new = outcome(p._loads, memoryview(data))
    assert old[0] == new[0] and same(old[1], new[1]), (data[:80], old, new)


def assert_dumps_as_before(obj: object) -> None:
    old = outcome(stdlib_dumps, obj)
    new = outcome(enc._dumps, obj)
    assert old[0] == new[0] and same(old[1], new[1]), (old, new)


# --- decoding -------------------------------------------------------------------------------


def nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


TRICKY_JSON = [
    b'{"session_id":"%s","to":"%s","seq":1234,"width":640,"height":480}' % (
        SID.encode(), HEX.encode()),
    b'{"a":{"b":[1,{"c":[[],{}]},null,true,false]},"d":"e"}',
    '{"caf\u00e9":"\u00e9\u4e2d\U0001f600 \u2028\u2029\ufeff\uffff"}'.encode(),
    rb'{"s":"\"\\\/\b\f\n\r\t\u00e9\u4E2D"}',
    rb'"\u0000"', rb'"a\u0000b"', rb'"\ud83d\ude00"', rb'"\uD83D\uDE00"',
    rb'"\ud800"', rb'"\udc00"', rb'"\ude00\ud83d"', rb'"\ud83dx"', rb'"\ud83d\u0041"',
    rb'{"\ud800":1}', rb'"\u"', rb'"\x41"', rb'"\ud83d\ude0"',
    b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
    b"-9223372036854775809", b"-18446744073709551617", b"123456789012345678901234567890",
    b'{"seq":99999999999999999999,"n":[1,-123456789012345678901234]}',
    b"7" * 1000, b"7" * 1001, b"-" + b"7" * 5000, b"1" + b"0" * 400,
    b"0", b"-0", b"-0.0", b"0.0", b"0e5", b"-0e-5", b"1E+2", b"1e-2", b"1.5e300",
    b"1e19", b"-1e19", b"9223372036854775808.0", b"[1e19,18446744073709551616]",
    b"1e400", b"-1e400", b"1e-400", b"1.7976931348623157e308", b"1.7976931348623159e308",
    b"2.2250738585072011e-308", b"2.4703282292062327e-324", b"2.4703282292062328e-324",
    b"0.30000000000000004", b"4.35" + b"0" * 900 + b"1", b"0." + b"0" * 300 + b"1",
    b"NaN", b"-NaN", b"Infinity", b"-Infinity", b'{"v":NaN}', b"[Infinity]", b"nan", b"inf",
    b'{"a":1,"a":2,"b":3}', b'{"a":1,"b":2,"a":3}', b'{"a":{"x":1},"a":[2]}',
    b' \t\r\n{"a" : 1 , "b" :\n[ 1 ,2 ] }\r\n\t ', b"\x0b{}", b"{}\x0c", b"\xa0{}",
    "\u2028{}".encode(), b"{}\x00", b"\x00{}",
    b"\xef\xbb\xbf{}", b"\xef\xbb\xbf", '{"t":"x"}'.encode("utf-16"),
    b'"\xff"', b'"\xc3"', b'"\xc0\x80"', b'"\xe0\x80\x80"', b'"\xed\xa0\x80"',
    b'"\xed\xbf\xbf"', b'"\xf4\x90\x80\x80"', b'"\xf8\x88\x80\x80\x80"', b'"\x80"',
    b'{"a":1}x', b'{"a":1}{}', b"[1] 2", b"1 2", b'"a" "b"', b"{}}", b"[]]",
    b"", b" ", b"\n", b"{", b"[", b'{"a"', b'{"a":', b'{"a":1', b"[1,", b'"abc',
    b"01", b"-01", b"1.", b".5", b"+1", b"1e", b"1e+", b"-", b"--1", b"0x10", b"1_000",
    b"[1,]", b'{"a":1,}', b"{,}", b"[,1]", b'{"a" 1}', b"{'a':1}", b"{a:1}",
    b"true", b"false", b"null", b"tru", b"True", b"NULL", b"nul",
    b'"\x00"', b'"\x1f"', b'"\t"', b'"\n"', b'"\x7f"', '"\u0085"'.encode(),
    nest(1), nest(100), nest(511), nest(512), nest(513), nest(1000), nest(1024), nest(1025),
    nest(3000), b'{"a":' * 300 + b"1" + b"}" * 300,
]


@pytest.mark.parametrize("data", TRICKY_JSON, ids=lambda d: repr(d[:24]))
def test_loads_tricky_inputs_as_before(data: bytes) -> None:
    assert_loads_as_before(data)


def test_loads_inside_a_frame_as_before() -> None:
    # parse_message hands _loads a slice of a larger buffer.
    for data in TRICKY_JSON[:40]:
        frame = b"\x02" + len(data).to_bytes(4, "big") + data + b"\xff\xd8\x00"
        view = memoryview(frame)[5 : 5 + len(data)]
        old = outcome(stdlib_loads, data)
        new = outcome(p._loads, view)
        assert old[0] == new[0] and same(old[1], new[1]), data


def float_tokens(rng: random.Random) -> list[bytes]:
    """Number texts that test a parser's rounding: random mantissas of every length, and
    decimals at and next to the midpoint between two neighbouring doubles."""
    out = []
    for _ in range(1500):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        digits = digits.lstrip("0") or "0"
        cut = rng.randint(1, len(digits))
        text = digits[:cut] + ("." + digits[cut:] if cut < len(digits) else "")
        out.append(f"{rng.choice(['', '-'])}{text}e{rng.randint(-340, 320)}".encode())
        out.append(text.encode())
    for _ in range(500):
        x = abs(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
        if not math.isfinite(x) or x == 0:
            continue
        mid = (decimal.Decimal(x) + decimal.Decimal(math.nextafter(x, math.inf))) / 2
        text = format(mid, "e") if rng.random() < 0.5 else format(mid, "f")
        ulp = decimal.Decimal(1).scaleb(mid.adjusted() - 60)
        for t in (text, format(mid + ulp, ".60e"), format(mid - ulp, ".60e")):
            out.append(t.replace("E", "e").encode())
    return out


def test_loads_numbers_round_as_before() -> None:
    for token in float_tokens(random.Random(8259)):
        assert_loads_as_before(token)
        assert_loads_as_before(b'{"rms":' + token + b"}")


def random_value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth < 4 and roll < 0.15:
        return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.25:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.45:
        return random_text(rng)
    if roll < 0.65:
        return rng.getrandbits(rng.randint(1, 70)) * rng.choice([1, -1])
    if roll < 0.85:
        return random_float(rng)
    return rng.choice([None, True, False])


def random_text(rng: random.Random) -> str:
    def char() -> str:
        pick = rng.random()
        if pick < 0.5:
            return chr(rng.randint(0x20, 0x7E))
        if pick < 0.6:
            return chr(rng.randint(0, 0x1F))
        if pick < 0.63:
            return chr(rng.randint(0xD800, 0xDFFF))  # a lone surrogate, now and then
        if pick < 0.8:
            return chr(rng.randint(0x80, 0xFFFF))
        return chr(rng.randint(0x10000, 0x10FFFF))

    return "".join(char() for _ in range(rng.randint(0, 8)))


def random_float(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.4:
        return struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]  # NaN too
    if pick < 0.9:
        return rng.uniform(-1, 1) * 10.0 ** rng.randint(-12, 20)
    return rng.choice([0.0, -0.0, 1e16, 1e-4, 9.999999999999999e-05, 1e-5, 1e-7, 1e-10,
                       5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan])


def mutate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    pick = rng.random()
    if pick < 0.3:
        return data[:at]
    if pick < 0.6:
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    if pick < 0.8:
        return data[:at] + rng.choice([b"-", b"0", b"9" * 20, b"e", b".", b",", b"\\", b'"',
                                       b"\\u", b"\\ud800", b"\xed\xa0\x80", b"\xff", b"]"]
                                      ) + data[at:]
    return data[:at] + data[at + 1 :]


def test_loads_random_documents_as_before() -> None:
    rng = random.Random(3629)
    for _ in range(1500):
        value = random_value(rng)
        try:
            text = json.dumps(value, ensure_ascii=rng.random() < 0.3,
                              separators=rng.choice([(",", ":"), (", ", ": ")]))
        except ValueError:
            continue
        data = text.encode("utf-8", "surrogatepass")  # a lone surrogate as invalid UTF-8
        assert_loads_as_before(data)
        assert_loads_as_before(mutate(rng, data))


# --- encoding -------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class Name(enum.StrEnum):
    A = "a"


class Small(float, enum.Enum):
    TINY = 1e-5


class Text(str):
    pass


class Number(int):
    def __repr__(self) -> str:
        return "nope"


class Tiny(float):
    pass


class Items(dict):  # type: ignore[type-arg]
    def items(self):  # type: ignore[no-untyped-def]
        return [("z", 0)]


@dataclasses.dataclass
class Point:
    x: int = 1


def cycle() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


def deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


TRICKY_VALUES: list[object] = [
    {"session_id": SID, "from": HEX, "seq": 1234, "width": 640, "height": 480},
    {"session_id": SID, "from": HEX, "seq": 17, "sample_rate": 16000, "channels": 1,
     "rms": 0.012345679},
    {"type": "snapshot", "table": "users", "rows": [{"identity": HEX, "nickname": None}]},
    {"z": 1, "a": 2, "m": {"y": [1, 2], "b": None}},
    "\"\\/\b\f\n\r\t", "".join(map(chr, range(0x20))) + "\x7f\x80\x9f\xa0",
    "\u2028\u2029\ufeff\uffff", "caf\u00e9 \u4e2d \U0001f600 \U0010ffff", "</script>",
    "\ud800", "\udc00x", {"req_type": "\ud83d", "message": "m"}, {"\ud800": 1},
    {1: "a"}, {1.5: "a"}, {True: "a", None: "b"}, {(1, 2): "a"}, {Text("k"): 1},
    {Level.LOW: 1},
    0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**400, -(10**30),
    True, False, None, (1, (2, [3])), [], {}, "",
    0.0, -0.0, 0.5, 1.0, 100.0, 1e15, 1e16, 1.2345678901234567e16, 1e22, 1.5e300,
    1.7976931348623157e308, 1e-4, 9.999999999999999e-05, 1e-5, -3.0517578125e-05, 1e-7,
    4.9e-9, 1e-10, 1.5e-11, 5e-324, 2.2250738585072014e-308, 0.1, 1 / 3,
    math.nan, math.inf, -math.inf, [1.0, math.nan], {"v": -math.inf},
    Colour.RED, Level.LOW, Name.A, Small.TINY, Text("t"), Number(5), Tiny(1e-5),
    Items(a=1), OrderedDict(a=1), Point(), uuid.UUID(int=1), dt.date(2020, 1, 1),
    dt.datetime(2020, 1, 1), dt.time(1), decimal.Decimal("1.5"), b"x", bytearray(b"x"),
    {1, 2}, 1 + 2j, object(), [uuid.UUID(int=2)], {"k": Colour.RED},
    deep(200), deep(300), deep(5000), cycle(),
]


@pytest.mark.parametrize("obj", TRICKY_VALUES, ids=lambda o: type(o).__name__)
def test_dumps_tricky_values_as_before(obj: object) -> None:
    assert_dumps_as_before(obj)


def test_dumps_floats_as_before() -> None:
    rng = random.Random(754)
    for _ in range(20000):
        x = random_float(rng)
        assert_dumps_as_before(x)
        assert_dumps_as_before({"rms": x, "seq": 1})
    for exponent in range(-330, 310):
        for mantissa in ("1", "2.5", "9.999999999999999", "1.2345678901234567"):
            assert_dumps_as_before([float(f"{mantissa}e{exponent}")])


def test_dumps_random_structures_as_before() -> None:
    rng = random.Random(8259)
    for _ in range(3000):
        assert_dumps_as_before(random_value(rng))


# --- the fast path is taken where it matters -------------------------------------------------


class Refuse:
    """Stands in for the stdlib encoder or decoder: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the stdlib path was taken ({name})")


FAST_JSON = [
    TRICKY_JSON[0],
    b'{"session_id":"%s","to":"%s","seq":17,"sample_rate":16000,"channels":1,"rms":0.25}'
    % (SID.encode(), HEX.encode()),
    b'{"type":"send_message","text":"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00"}',
    b'{"type":"accept_call","session_id":"%s"}' % SID.encode(),
]


@pytest.mark.parametrize("data", FAST_JSON)
def test_loads_takes_orjson_for_headers_and_control(data: bytes,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    expected = stdlib_loads(data)
    monkeypatch.setattr(p, "_DECODER", Refuse())
    assert same(p._loads(memoryview(data)), expected)


@pytest.mark.parametrize("obj", TRICKY_VALUES[:4])
def test_dumps_takes_orjson_for_headers_and_control(obj: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    expected = stdlib_dumps(obj)
    monkeypatch.setattr(enc, "_ENCODER", Refuse())
    assert enc._dumps(obj) == expected


def test_plain_within() -> None:
    assert plain_within({"a": [1, "x", None, True, (0.5, {"b": -0.0})]}, 1e-4, 1e16)
    assert not plain_within({"a": [1e-5]}, 1e-4, 1e16)
    assert not plain_within([{"a": math.nan}], 0.0, 2.0**63)
    assert not plain_within({"a": 1, "b": -(2.0**63)}, 0.0, 2.0**63)
    assert plain_within({"a": 1, "b": 2.0**63 - 1024}, 0.0, 2.0**63)
    assert not plain_within({"a": Text("x")}, 1e-4, 1e16)
    assert not plain_within([uuid.UUID(int=1)], 1e-4, 1e16)
    assert plain_within("x", 1e-4, 1e16) and not plain_within(math.inf, 0.0, 2.0**63)


def test_recursion_limit_is_what_the_stdlib_depth_depends_on() -> None:
    # _loads gives orjson only input too short to nest past 512; the stdlib decoder reaches
    # well beyond that at the default limit, so both agree on everything orjson is given.
    assert sys.getrecursionlimit() >= 1000
    assert stdlib_loads(nest(512)) is not None
