"""The hostile inputs of the fuzz test (``test_fuzz``), each drawn from a seeded
``random.Random``: malformed WebSocket frames, malformed opening handshakes, malformed
pg-relay messages (protocol.md §2-3), and valid but hostile requests aimed at a healthy call.

Owns: generating the inputs, sending them, and checking what each hostile client got back
against what it may ever get (``Fuzzer.inspect``): only well-formed messages (§2), no media
but from its own call partner, no call rows but its own, never the healthy call. Each case
is bounded in time and never waits for the server longer than a few seconds. Does not own
the healthy call, the server process or the verdict (``test_fuzz``).
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import trio

from pgcall.config import WsLimits
from tests.wsframes import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    binary,
    close_frame,
    frame,
    upgrade_request,
)

from .rawws import SEND_ERRORS, RawWs, open_raw, tcp
from .wsclient import audio_header, decode_frame, encode_control, encode_media, video_header

MAX = WsLimits().max_message
WAIT_S = 5.0  # the longest a case waits for an answer (a healthy server answers in ms)
LEAVE_S = 0.3  # how long a case reads before leaving, when no answer is owed


@attrs.define
class Target:
    """The healthy call the hostile clients aim at."""

    session_id: str
    caller: str
    callee: str


@attrs.define
class Fuzzer:
    base: str
    target: Target
    runs: Counter[str] = attrs.Factory(Counter)
    violations: list[str] = attrs.Factory(list)
    trace: list[str] = attrs.Factory(list)  # worker/iteration/case, for a failure's message

    def violation(self, case: str, text: str) -> None:
        self.violations.append(f"{case}: {text}")

    def inspect(self, case: str, client: RawWs, identity: str,
                partner: tuple[str, str] | None = None) -> None:
        """Everything ``client`` (``identity``) received is allowed to it; ``partner`` is
        (identity, session id) of the call it is in, if any."""
        healthy = {self.target.caller, self.target.callee}
        if identity in healthy:
            self.violation(case, f"a hostile client got a healthy identity {identity}")
        for raw in client.messages:
            try:
                f = decode_frame(raw)
            except (AssertionError, ValueError) as exc:
                self.violation(case, f"malformed server message {raw[:80]!r}: {exc}")
                continue
            if f.is_media:
                allowed = partner is not None and (f.obj.get("from"), f.obj.get("session_id")) \
                    == partner
                if not allowed:
                    self.violation(case, f"media not from its partner: {f.obj}")
                continue
            if f.obj.get("table") != "call_sessions":
                continue
            if f.type == "snapshot":
                rows = f.obj.get("rows") or []
            else:
                rows = [f.obj.get("row") or f.obj.get("old") or {}]
            for row in rows:
                if row.get("session_id") == self.target.session_id:
                    self.violation(case, f"the healthy call leaked: {f.obj}")
                if f.type != "delete" and identity not in (row.get("caller"), row.get("callee")):
                    self.violation(case, f"somebody else's call: {f.obj}")


Case = Callable[[Fuzzer, random.Random, str], Awaitable[None]]


# -- helpers ------------------------------------------------------------------------------------


async def leave_after(client: RawWs, seconds: float = LEAVE_S) -> None:
    await client.read_for(seconds)


@contextlib.asynccontextmanager
async def session(fz: Fuzzer, name: str, *, token: str | None = None,
                  partner: list[tuple[str, str]] | None = None) -> AsyncIterator[RawWs]:
    """A pg-relay session (identity and snapshots read); inspected when it ends."""
    path = "/" if token is None else f"/?token={token}"
    async with open_raw(fz.base, path=path) as client:
        if not await client.wait_messages(6, WAIT_S):
            fz.violation(name, f"no identity and snapshots: {client.close}")
            yield client
            return
        identity = decode_frame(client.messages[0]).obj["identity"]
        client.identity = identity
        try:
            yield client
        finally:
            fz.inspect(name, client, identity, partner[0] if partner else None)


async def own_call(client: RawWs) -> str:
    row = await wait_event(client, lambda o: o.get("type") == "insert"
                           and o.get("table") == "call_sessions")
    return str((row or {}).get("row", {}).get("session_id", ""))


def replies(client: RawWs) -> list[dict[str, Any]]:
    out = []
    for raw in client.messages:
        with contextlib.suppress(AssertionError, ValueError):
            f = decode_frame(raw)
            if f.type in ("ack", "error"):
                out.append(f.obj)
    return out


async def request(client: RawWs, data: bytes) -> dict[str, Any] | None:
    """Send one message and wait for the reply it gets (None if the socket closed or no
    reply came: a media frame that was accepted gets none)."""
    before = len(replies(client))
    if not await client.send_message(data):
        return None
    with trio.move_on_after(WAIT_S):
        while len(replies(client)) == before and not client.ended:
            await client.wait_messages(len(client.messages) + 1, WAIT_S)
    got = replies(client)
    return got[before] if len(got) > before else None


async def wait_event(client: RawWs, predicate: Callable[[dict[str, Any]], bool]) -> \
        dict[str, Any] | None:
    checked = 0
    with trio.move_on_after(WAIT_S):
        while True:
            for raw in client.messages[checked:]:
                with contextlib.suppress(AssertionError, ValueError):
                    f = decode_frame(raw)
                    if not f.is_media and predicate(f.obj):
                        return f.obj  # type: ignore[no-any-return]
            checked = len(client.messages)
            if not await client.wait_messages(checked + 1, WAIT_S):
                return None
    return None


def spellings(session_id: str, rng: random.Random) -> str:
    """The same uuid as PostgreSQL would also read it (case, braces, hyphens), or not."""
    h = session_id.replace("-", "")
    return rng.choice([session_id, session_id.upper(), "{" + session_id + "}", h, h.upper(),
                       "-".join(h[i:i + 4] for i in range(0, 32, 4)), session_id + " ",
                       session_id[:-1], " " + session_id])


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**31, 2**63, -(2**70), 10**400, 1.5, -0.0, 1e308])
    if kind == 3:
        return "".join(chr(rng.choice([0, 0x7F, 0x202E, 0xD800, 0xFEFF, 0x1F600, 0x41,
                                       rng.randrange(0x110000)])) for _ in range(rng.randrange(8)))
    if kind == 4:
        return rng.choice(["", " ", "x" * 600, "constructor", "__proto__", "toString"])
    if kind == 5:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["type", "to", "a", ""]): random_value(rng, depth + 1)
            for _ in range(rng.randrange(3))}


def dumps(value: Any, rng: random.Random) -> bytes:
    """JSON as a client may send it: non-ASCII escaped or raw (a lone surrogate as CESU-ish
    bytes, which is invalid UTF-8)."""
    return json.dumps(value, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


# -- malformed frames, after a proper opening handshake -----------------------------------------


def random_frame(rng: random.Random) -> bytes:
    """Any frame: valid or not in every field."""
    opcode = rng.choice([BINARY, TEXT, CONTINUATION, PING, PONG, CLOSE, rng.randrange(16)])
    payload = rng.randbytes(rng.choice([0, 1, 5, 125, 126, 300, rng.randrange(70000)]))
    declared = None
    if rng.random() < 0.2:
        declared = rng.choice([len(payload) + 1, MAX + 1, 2**63 - 1, 2**64 - 1,
                               rng.randrange(2**64)])
    length = len(payload) if declared is None else declared
    widths = [w for w in (7, 16, 64) if length < {7: 126, 16: 65536, 64: 2**64}[w]]
    return frame(opcode, payload, fin=rng.random() < 0.8, rsv=rng.choice([0, 0, 0, 1, 4, 7]),
                 mask=None if rng.random() < 0.1 else rng.randbytes(4), declared=declared,
                 width=rng.choice([None, None, None, *widths]))


def _frames(make: Callable[[random.Random], bytes]) -> Case:
    """Send the frames; whatever the server answers (a close code of its own, or the echo of
    a valid close frame among them) is fine, as long as it stays up and well."""
    async def case(fz: Fuzzer, rng: random.Random, name: str) -> None:
        data = make(rng)
        async with open_raw(fz.base) as client:
            if client.status != 101:
                fz.violation(name, f"handshake answered {client.status}")
                return
            await client.send(data)
            await leave_after(client)
    return case


def _mutated_stream(rng: random.Random) -> bytes:
    valid = (binary(encode_control({"type": "set_nickname", "nickname": "m"}))
             + frame(PING, b"p") + binary(b"\x00{", fin=False) + frame(CONTINUATION, b"}"))
    data = bytearray(valid)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] = data[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.7 else rng.randrange(256)
    return bytes(data)


FRAME_CASES: dict[str, Case] = {
    "unmasked frame": _frames(lambda r: binary(r.randbytes(r.randrange(200)), mask=None)),
    "bad opcode": _frames(lambda r: frame(r.choice([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]),
                                          r.randbytes(r.randrange(50)), fin=r.random() < .5)),
    "RSV bits": _frames(lambda r: frame(r.choice([BINARY, TEXT, PING]), b"x",
                                        rsv=r.randint(1, 7))),
    "lengths": _frames(lambda r: r.choice([
        binary(b"x" * r.randrange(126), width=r.choice([16, 64])),
        binary(b"x" * r.randrange(126, 3000), width=64),
        binary(b"", declared=2**63 + r.randrange(2**63)),
        binary(b"\x00{}", declared=r.randrange(4, 100)),  # longer than sent: we leave
        binary(b""), frame(TEXT, b""), frame(PING, b""), frame(CONTINUATION, b""),
    ])),
    "invalid UTF-8": _frames(lambda r: frame(TEXT, r.randbytes(r.randrange(1, 64)))
                             if r.random() < .5 else frame(TEXT, "é✓".encode()[:3], fin=False)
                             + frame(CONTINUATION, r.randbytes(3))),
    "fragmented control": _frames(lambda r: frame(r.choice([PING, PONG, CLOSE]),
                                                  b"\x03\xe8"[:r.randrange(3)], fin=False)),
    "huge declared length": _frames(lambda r: frame(
        r.choice([BINARY, TEXT, CONTINUATION, PING, CLOSE]), b"",
        declared=r.choice([MAX + 1, r.randrange(MAX + 1, 2**64), 2**64 - 1, 126, 65536]))),
    "big ping": _frames(lambda r: frame(r.choice([PING, PONG]),
                                        r.randbytes(r.choice([126, 1000, 65535, 70000])))),
    "truncated header": _frames(lambda r: r.choice([binary(bytes(300)), binary(bytes(70000)),
                                                    frame(PING, b"ab")])[:r.randint(1, 13)]),
    "random bytes": _frames(lambda r: r.randbytes(r.randint(1, 4096))),
    "bad close": _frames(lambda r: r.choice([
        frame(CLOSE, b"\x03"), close_frame(r.choice([0, 999, 1004, 1005, 1006, 1015, 2999,
                                                     5000, 65535])),
        close_frame(1000, r.randbytes(r.randrange(1, 100))), close_frame(1000, b"x" * 123)])),
    "random frames": _frames(lambda r: b"".join(random_frame(r) for _ in range(r.randint(1, 5)))),
    "mutated stream": _frames(_mutated_stream),
    "interleaved data frames": _frames(lambda r: binary(b"a", fin=False)
                                       + r.choice([binary(b"b"), frame(TEXT, b"c")])),
}


async def ping_flood(fz: Fuzzer, rng: random.Random, name: str) -> None:
    """Valid pings (or pongs), as fast as the socket takes them, reading nothing or all: over
    the frame budget, the server closes with 1008."""
    async with open_raw(fz.base) as client:
        client.answer_pings = rng.random() < 0.5
        opcode = rng.choice([PING, PONG])
        frames = b"".join(frame(opcode, rng.randbytes(rng.randrange(126))) for _ in range(500))
        with trio.move_on_after(rng.uniform(0.2, 1.0)):
            while await client.send(frames):
                if rng.random() < 0.5:
                    await client.read_for(0.01)
        await client.read_for(WAIT_S)
        if client.close not in (None, (1008, "Too many frames")):
            fz.violation(name, f"a flood of valid control frames ended with {client.close}")


async def tiny_fragments(fz: Fuzzer, rng: random.Random, name: str) -> None:
    """A message in frames of a byte or none: costly per frame, so over the frame budget."""
    async with open_raw(fz.base) as client:
        n = rng.choice([10, 1000, 2500, 10000])
        data = binary(b"\x00", fin=False) + b"".join(
            frame(CONTINUATION, b" " * rng.randrange(2), fin=False) for _ in range(n))
        await client.send(data + frame(CONTINUATION, b"}"))
        await leave_after(client)


FRAME_CASES["ping flood"] = ping_flood
FRAME_CASES["tiny fragments"] = tiny_fragments


# -- malformed opening handshakes ---------------------------------------------------------------


def _garbage_head(rng: random.Random) -> bytes:
    alphabet = bytes(range(32, 127)) + b"\r\n\t:\x00\xff"
    return bytes(rng.choice(alphabet) for _ in range(rng.randrange(200))) + b"\r\n\r\n"


def _mutated_upgrade(rng: random.Random) -> bytes:
    lines = upgrade_request(host="127.0.0.1").split(b"\r\n")[:-2]
    choice = rng.randrange(9)
    if choice == 0 and len(lines) > 1:
        del lines[rng.randrange(1, len(lines))]  # a required header missing
    elif choice == 1:
        lines[0] = rng.choice([b"POST / HTTP/1.1", b"GET / HTTP/1.0", b"GET / HTTP/2",
                               b"GET  HTTP/1.1", b"get / http/1.1", b"GET / HTTP/1.1 x"])
    elif choice == 2:
        lines[0] = b"GET " + rng.choice([b"//[", b"*", b"http://x/?token=", b"//a]b/",
                                         b"/" + b"a" * 8000, b"/%ff%00?token=%00",
                                         b"/?token=" + bytes(rng.randrange(256)
                                                             for _ in range(20)).hex().encode()]
                                        ) + b" HTTP/1.1"
    elif choice == 3:
        lines.append(b"Sec-WebSocket-Version: " + rng.choice([b"8", b"13, 8", b"", b"x"]))
    elif choice == 4:
        lines.append(b"Origin: " + rng.choice([b"https://evil.example", b"null", b"http://[",
                                               b"\xff\xfe", b"http://127.0.0.1:1"]))
    elif choice == 5:
        lines.append(rng.choice([b"Host: second", b"Content-Length: 5", b"Transfer-Encoding: "
                                 b"chunked", b"Sec-WebSocket-Extensions: permessage-deflate",
                                 b"Sec-WebSocket-Protocol: chat", b"X: \xff\x00"]))
    elif choice == 6:
        lines[1] = b"Host: " + rng.choice([b"", b"\xff", b"xn--", b"[::1", b"a" * 300])
    elif choice == 7:
        lines = [ln.replace(b": ", b":") for ln in lines]
    else:
        lines.insert(1, b" folded")
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def handshake_case(fz: Fuzzer, rng: random.Random, name: str) -> None:
    kind = rng.randrange(8)
    if kind == 0:
        data = _garbage_head(rng)
    elif kind == 1:
        data = _mutated_upgrade(rng)
    elif kind == 2:
        data = upgrade_request() + rng.randbytes(rng.randrange(1, 300))  # hypercorn#225
    elif kind == 3:
        data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + rng.choice(
            [rng.randbytes(100), upgrade_request() + binary(b"\x00{}")])  # pipelined
    elif kind == 4:
        data = b"GET / HTTP/1.1\r\nX: " + b"a" * 17000 + b"\r\n\r\n"  # over 16 KiB: 431
    elif kind == 5:
        data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(rng.randrange(100))
    elif kind == 6:
        data = (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
                + rng.randbytes(rng.randrange(100)))
    else:
        data = upgrade_request()[:rng.randrange(1, 100)]  # then we leave
    stream = await tcp(fz.base)
    async with stream:
        with contextlib.suppress(*SEND_ERRORS):
            await stream.send_all(data)
            with trio.move_on_after(LEAVE_S):
                while await stream.receive_some(65536):
                    pass


# -- malformed pg-relay messages (§2, §3) ---------------------------------------------------------


def _malformed_message(rng: random.Random, fz: Fuzzer) -> tuple[bytes, bool]:
    """A message and whether it may be valid after all (random fields can make one)."""
    kind = rng.randrange(8)
    return _malformed(rng, fz, kind), kind in (4, 6)


def _malformed(rng: random.Random, fz: Fuzzer, kind: int) -> bytes:
    if kind == 0:
        return bytes([rng.randrange(3, 256)]) + rng.randbytes(rng.randrange(20))  # bad tag
    if kind == 1:
        return rng.choice([b"", b"\x00", b"\x01", b"\x02\x00\x00"])
    if kind == 2:  # bad header lengths
        header = json.dumps(video_header(fz.target.session_id, fz.target.callee, 1)).encode()
        return bytes([rng.choice([1, 2])]) + rng.choice(
            [0xFFFFFFFF, 2**31, len(header) + 1, 0, rng.randrange(2**32)]).to_bytes(4, "big") \
            + header + rng.randbytes(rng.randrange(10))
    if kind == 3:  # bad JSON
        return b"\x00" + rng.choice([rng.randbytes(rng.randrange(1, 50)), b"{", b'{"type":',
                                     b"[" * 100_000, b'{"type":"send_message","text":NaN}',
                                     b'{"a":' + b"9" * 5000 + b"}", b"\xff{}", b"null", b"0",
                                     b'""', b"[]", b'{"type":"\\ud800"}'])
    if kind == 4:  # wrong types
        msg: dict[str, Any] = {"type": rng.choice(["set_nickname", "send_message",
                                                   "request_call", "accept_call",
                                                   "decline_call", "end_call",
                                                   random_value(rng)])}
        for field in rng.sample(["nickname", "text", "target", "session_id", "call_type"], 2):
            msg[field] = random_value(rng)
        return b"\x00" + dumps(msg, rng)
    if kind == 5:  # media headers of wrong types
        header = {k: random_value(rng) if rng.random() < 0.3 else v
                  for k, v in audio_header(fz.target.session_id, fz.target.caller, 1).items()}
        return encode_media(rng.choice(["audio", "video"]), header, rng.randbytes(10))
    if kind == 6:
        return b"\x00" + dumps(random_value(rng), rng)
    return encode_media("video", video_header(str(uuid.uuid4()), fz.target.callee, 0),
                        rng.choice([b"", b"\xff", b"\x89PNG", rng.randbytes(600_000)]))


async def malformed_messages(fz: Fuzzer, rng: random.Random, name: str) -> None:
    async with session(fz, name) as client:
        for _ in range(rng.randint(1, 10)):
            data, may_be_valid = _malformed_message(rng, fz)
            reply = await request(client, data)
            if client.ended:
                if client.close and client.close[0] != 1009:
                    fz.violation(name, f"closed with {client.close} after {data[:60]!r}")
                return
            allowed = ("error", "ack") if may_be_valid else ("error",)
            if reply is None or reply.get("type") not in allowed:
                fz.violation(name, f"{data[:60]!r} was answered with {reply}")


# -- valid but hostile requests -----------------------------------------------------------------


async def meddle_with_the_healthy_call(fz: Fuzzer, rng: random.Random, name: str) -> None:
    """Accept, decline, end the healthy call, call its participants, send media claiming it."""
    t = fz.target
    async with session(fz, name) as client:
        for _ in range(rng.randint(1, 8)):
            sid = spellings(t.session_id, rng)
            kind = rng.randrange(5)
            if kind == 0:
                msg = {"type": rng.choice(["accept_call", "decline_call", "end_call"]),
                       "session_id": sid}
                data = encode_control(msg)
            elif kind == 1:
                # Refused while they are in the healthy call; once the bench has ended it,
                # calling them is allowed: hang up at once then, and take the answer to the
                # hang-up here, or the next request would read it as its own.
                msg = {"type": "request_call", "target": rng.choice([t.caller, t.callee]),
                       "call_type": "Video"}
                reply = await request(client, encode_control(msg))
                if reply == {"type": "ack", "req_type": "request_call"}:
                    await request(client, encode_control(
                        {"type": "end_call", "session_id": await own_call(client)}))
                continue
            else:
                to = rng.choice([t.caller, t.callee, client.identity])
                if rng.random() < 0.5:
                    header = video_header(sid, to, rng.randrange(1000))
                    payload = b"\xff\xd8" + rng.randbytes(100)
                    kind_name = "video"
                else:
                    header = audio_header(sid, to, rng.randrange(1000))
                    payload = rng.randbytes(320)
                    kind_name = "audio"
                header["from"] = rng.choice([t.caller, t.callee])  # spoofed: the server sets it
                data = encode_media(kind_name, header, payload)
            reply = await request(client, data)
            if reply is None or reply.get("type") != "error":
                fz.violation(name, f"{data[:120]!r} got {reply} (must be refused)")


async def own_call_with_a_spoofed_session(fz: Fuzzer, rng: random.Random, name: str) -> None:
    """Two hostile clients in a call of their own: media claiming the healthy session or its
    participants is refused; media between them arrives with the true sender."""
    t = fz.target
    a_partner: list[tuple[str, str]] = []
    b_partner: list[tuple[str, str]] = []
    async with session(fz, name, partner=a_partner) as a, \
            session(fz, name, partner=b_partner) as b:
        a_id, b_id = a.identity, b.identity
        if await request(a, encode_control({"type": "request_call", "target": b_id,
                                            "call_type": "Video"})) != {
                "type": "ack", "req_type": "request_call"}:
            return  # one of them may already be gone (another case's flood)
        row = await wait_event(b, lambda o: o.get("type") == "insert"
                               and (o.get("row") or {}).get("caller") == a_id)
        if row is None:
            fz.violation(name, "no Ringing row for the callee")
            return
        sid = row["row"]["session_id"]
        await request(b, encode_control({"type": "accept_call", "session_id": sid}))
        await wait_event(a, lambda o: o.get("type") == "update"
                         and (o.get("row") or {}).get("state") == "Active")
        a_partner.append((b_id, sid))  # each may receive media from the other only
        b_partner.append((a_id, sid))
        for seq in range(rng.randint(1, 5)):
            claim = rng.choice([t.session_id, sid])
            to = rng.choice([b_id, t.caller, t.callee])
            header = video_header(spellings(claim, rng), to, seq)
            header["from"] = rng.choice([t.caller, t.callee, b_id])
            await a.send_message(encode_media("video", header, b"\xff\xd8" + bytes(10)))
        await b.send_message(encode_media("audio", audio_header(sid, a_id, 0), bytes(320)))
        await leave_after(b)
        await leave_after(a)


async def flood(fz: Fuzzer, rng: random.Random, name: str) -> None:
    """More of one kind than the rate limits take: refused, then closed with 4029."""
    t = fz.target
    messages = [
        encode_control({"type": "send_message", "text": "flood"}),
        encode_control({"type": "set_nickname", "nickname": "flood"}),
        encode_control({"type": "end_call", "session_id": t.session_id}),
        encode_media("audio", audio_header(t.session_id, t.callee, 0), bytes(320)),
        b"\x07",
    ]
    async with session(fz, name) as client:
        data = binary(rng.choice(messages))
        await client.send(data * rng.randint(700, 900))
        await client.read_for(WAIT_S)
        if client.close != (4029, "Rate limit exceeded"):
            fz.violation(name, f"a flood ended with {client.close}")


async def take_an_identity(fz: Fuzzer, rng: random.Random, name: str) -> None:
    """A token that is somebody's identity, or random, or odd, gives a new identity."""
    t = fz.target
    token = rng.choice([t.caller, t.callee, t.session_id, str(uuid.uuid4()), "%00", "x" * 300])
    async with session(fz, name, token=token):
        pass  # inspect() checks the identity is not a healthy one


PROTOCOL_CASES: dict[str, Case] = {
    "malformed messages": malformed_messages,
    "meddling with the healthy call": meddle_with_the_healthy_call,
    "own call claiming the healthy one": own_call_with_a_spoofed_session,
    "flood": flood,
    "identity takeover": take_an_identity,
}

ALL_CASES: dict[str, Case] = {**FRAME_CASES, "handshake": handshake_case, **PROTOCOL_CASES}
