"""Room members played by WebSocket clients, so a browser test can be in a large room with one
Chromium page (docs/protocol-rooms.md §4).

Owns: a thread running trio with `n` clients of the integration tests' client (wsclient.py):
the first creates a public video room, the others join it; each then sends like a pgcall page
that obeys `room_layers` — the full layer at 15 frames/s while told `full:true`, the thumbnail on
every second tick while told `thumb:true`, both with their own `seq` — and one of them (the
second) talks without a pause at a high `rms`, so it is the room's dominant speaker. Their
pictures are JPEGs the test hands in. Like any client of the original protocol they do not say
`hello`, so they cannot show a recording indicator and a recording of their room is refused;
with ``hello=True`` they say they can (docs/recording.md), as pgcall's pages do. Error replies
and failures are collected for the test.
Does not own: the browser or anything a test checks on it (test_rooms.py).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from tests.integration.wsclient import Client, decode_frame, open_clients

FPS = 15.0
AUDIO_FRAME_S = 0.05
PCM = b"\x00\x00" * 800  # 50 ms at 16 kHz (its loudness is the header's rms)
SETUP_DEADLINE_S = 20.0


@attrs.define
class Bots:
    room_id: str = ""
    identities: list[str] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)
    ready: threading.Event = attrs.Factory(threading.Event)
    stop: threading.Event = attrs.Factory(threading.Event)

    @property
    def speaker(self) -> str:
        return self.identities[1]


@contextmanager
def room_bots(base_url: str, n: int, thumb_jpeg: bytes, full_jpeg: bytes,
              hello: bool = False) -> Iterator[Bots]:
    """`n` members in a new public video room on the pgcall at `base_url` (http://...);
    with `hello`, clients that show the recording indicator."""
    bots = Bots()
    ws_base = "ws" + base_url.removeprefix("http")

    def run() -> None:
        try:
            trio.run(_room, bots, ws_base, n, thumb_jpeg, full_jpeg, hello)
        except BaseException:  # reported to the test, which fails on it
            bots.errors.append(traceback.format_exc())
        finally:
            bots.ready.set()

    thread = threading.Thread(target=run, name="room-bots", daemon=True)
    thread.start()
    try:
        if not bots.ready.wait(SETUP_DEADLINE_S) or not bots.room_id:
            raise AssertionError(f"the room bots did not get into a room: {bots.errors}")
        yield bots
    finally:
        bots.stop.set()
        thread.join(10)


async def _room(bots: Bots, base: str, n: int, thumb: bytes, full: bytes, hello: bool) -> None:
    async with open_clients(base, n) as clients:
        if hello:
            for c in clients:
                ack = await c.request({"type": "hello", "features": ["recording", "rooms"]})
                assert ack["type"] == "ack", ack
        ack = await clients[0].request({"type": "create_room", "name": "Big room",
                                        "call_type": "Video"})
        assert ack["type"] == "ack", ack
        room_id = ack["room_id"]
        for c in clients[1:]:
            ack = await c.request({"type": "join_room", "room_id": room_id})
            assert ack["type"] == "ack", ack
        for c in clients:
            # pgcall takes a member's media once its relay knows the membership, which the
            # room's snapshot to that member shows (a join is acked before that).
            await c.expect(lambda f, me=c.identity: f.type == "snapshot"
                           and f.obj.get("table") == "room_members"
                           and any(r.get("identity") == me for r in f.obj.get("rows", [])))
        bots.room_id = room_id
        bots.identities = [c.identity for c in clients]
        async with trio.open_nursery() as nursery:
            for i, c in enumerate(clients):
                nursery.start_soon(_member, bots, c, room_id, i == 1, thumb, full)
            bots.ready.set()
            await trio.to_thread.run_sync(bots.stop.wait)
            nursery.cancel_scope.cancel()


async def _member(bots: Bots, c: Client, room_id: str, talks: bool, thumb: bytes,
                  full: bytes) -> None:
    layers = {"full": False, "thumb": False}

    def read(obj: Any) -> None:
        if obj.get("type") == "room_layers":
            layers["full"], layers["thumb"] = bool(obj["full"]), bool(obj["thumb"])
        elif obj.get("type") == "error":
            bots.errors.append(f"{c.identity[:8]}: {obj}")

    for frame in c.received:  # what came with the room's snapshot, in order
        if frame.type:
            read(frame.obj)

    async def reader() -> None:
        while True:
            frame = decode_frame(await c.ws.get_message())  # type: ignore[arg-type]
            if frame.type:
                read(frame.obj)

    async def talk() -> None:
        start = trio.current_time()
        seq = 0
        while True:
            await c.send_media("audio", {"room_id": room_id, "seq": seq, "sample_rate": 16000,
                                         "channels": 1, "rms": 0.95}, PCM)
            seq += 1
            await trio.sleep_until(start + seq * AUDIO_FRAME_S)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        if talks:
            nursery.start_soon(talk)
        seqs = {"full": 0, "thumb": 0}
        sizes = {"full": (640, 360), "thumb": (160, 90)}
        start = trio.current_time()
        tick = 0
        while True:
            for layer, payload in (("full", full), ("thumb", thumb)):
                if not layers[layer] or (layer == "thumb" and tick % 2):
                    continue
                width, height = sizes[layer]
                await c.send_media("video", {"room_id": room_id, "seq": seqs[layer],
                                             "width": width, "height": height, "layer": layer},
                                   payload)
                seqs[layer] += 1
            tick += 1
            await trio.sleep_until(start + tick / FPS)
