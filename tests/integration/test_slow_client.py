"""A client that stops reading must cost only its own video, never anybody else's (issue 4's
acceptance; docs/limits.md "outbox", docs/threat-model.md).

A stalls for 30 s in an Active video call while its peer B keeps sending 15 fps of ~30 KB
frames; meanwhile C and D hold another call at 15 fps both ways. C and D must each receive at
least 14.5 fps on average over the 30 s. The server's queue to A must stay bounded: its outbox
is sampled every second (the hub is reached by wrapping the class pgcall builds it from), the
``slow_client_video`` drop counter of ``/metrics`` must grow, and this process's memory (the
server runs in it) must not grow with the frames A does not read.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import attrs
import pytest
import trio

from pgcall import app
from pgcall.relay.hub import Hub
from pgcall.relay.outbox import OutboxLimits

from .test_observability import rss_bytes, sample, scrape_metrics
from .test_security import serving, ws_base
from .wsclient import TAG_VIDEO, Client, open_clients, setup_call, video_header

STALL_S = 30.0
FPS = 15.0
FRAME_BYTES = 30_000
MIN_FPS = 14.5  # the acceptance number
SAMPLE_EVERY_S = 1.0
DRAIN_S = 10.0  # after the 30 s, how long the last frames may take to arrive
RSS_GROWTH_MAX = 100 * 1024 * 1024  # boundedness, not performance
# What may wait for A: the outbox's video (its byte bound plus the frame that tipped it over)
# plus a little state (events, replies).
LIMITS = OutboxLimits()
OUTBOX_BYTES_MAX = LIMITS.max_video_bytes + FRAME_BYTES + 512 + 64 * 1024


class RecordingHub(Hub):
    """pgcall's hub, remembered so that the test can look at the outboxes."""

    made: ClassVar[list[Hub]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        RecordingHub.made.append(self)


@attrs.define
class Stream:
    """One direction of video: frames sent and sequence numbers received."""

    sender: Client
    receiver: Client
    session_id: str
    sent: int = 0
    received: list[int] = attrs.Factory(list)
    arrived: trio.Event = attrs.Factory(trio.Event)  # set, and replaced, on every frame

    async def wait_last(self) -> None:
        """Until the last frame sent has arrived (frames arrive in order)."""
        while not (self.received and self.received[-1] >= self.sent - 1):
            await self.arrived.wait()


async def send(stream: Stream, stop_at: float, payload: bytes) -> None:
    """15 fps on a fixed schedule (a late frame is sent at once, not skipped)."""
    start = trio.current_time()
    while (due := start + stream.sent / FPS) < stop_at:
        await trio.sleep_until(due)
        await stream.sender.send_media(
            "video", video_header(stream.session_id, stream.receiver.identity, stream.sent),
            payload)
        stream.sent += 1


async def read(client: Client, streams: list[Stream]) -> None:
    """Read everything ``client`` gets; record the video seqs of the stream addressed to it.
    Frames are not kept (``Client`` would keep them all), so that this process's memory is
    the server's."""
    mine = [s for s in streams if s.receiver is client]
    while True:
        data = await client.ws.get_message()
        assert isinstance(data, bytes)
        if data[0] != TAG_VIDEO:
            continue
        header = json.loads(data[5:5 + int.from_bytes(data[1:5], "big")])
        for s in mine:
            if header["session_id"] == s.session_id:
                s.received.append(header["seq"])
                s.arrived.set()
                s.arrived = trio.Event()


@pytest.mark.slow
@pytest.mark.one_pg  # the outbox under a stalled reader: the same on every major
async def test_a_stalled_reader_costs_only_its_own_video(
        db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "Hub", RecordingHub)
    RecordingHub.made.clear()
    payload = b"\xff\xd8" + os.urandom(FRAME_BYTES - 2)
    samples: list[tuple[int, int]] = []  # (messages, bytes) waiting for A, every second
    with trio.fail_after(STALL_S + 60):
        async with serving(db_dsn) as running:
            (hub,) = RecordingHub.made
            base = ws_base(running)
            async with open_clients(base, 4, buffered=False) as (a, b, c, d):
                stalled = Stream(b, a, await setup_call(a, b, "Video"))
                other = [Stream(c, d, sid := await setup_call(c, d, "Video")),
                         Stream(d, c, sid)]
                _, before = await scrape_metrics(running.url)
                rss_before = rss_bytes()
                stop_at = trio.current_time() + STALL_S

                async def watch_outbox() -> None:
                    while trio.current_time() < stop_at:
                        owner = hub.owners.get(a.identity)
                        if owner is not None:
                            samples.append((len(owner.outbox), owner.outbox.queued_bytes))
                        await trio.sleep(SAMPLE_EVERY_S)

                # A reads nothing from here on: no task reads it.
                async with trio.open_nursery() as readers:
                    for client in (b, c, d):
                        readers.start_soon(read, client, other)
                    async with trio.open_nursery() as senders:
                        senders.start_soon(watch_outbox)
                        for s in (stalled, *other):
                            senders.start_soon(send, s, stop_at, payload)
                    # Each of the other call's last frames arrives (a fixed deadline, then
                    # the count below decides).
                    with trio.move_on_after(DRAIN_S):
                        for s in other:
                            await s.wait_last()
                    readers.cancel_scope.cancel()
                _, after = await scrape_metrics(running.url)
                rss_after = rss_bytes()

    for s in other:
        fps = len(s.received) / STALL_S
        assert fps >= MIN_FPS, (fps, s.sent, len(s.received))
        assert s.received == sorted(set(s.received))  # in order, no duplicates
    assert stalled.sent >= MIN_FPS * STALL_S  # the peer of the stalled client kept sending
    # A's queue stayed bounded while it did not read; what it did not get was dropped.
    # (A may not stay connected for all 30 s: a peer that acknowledges nothing for 10 s is
    # dropped, docs/limits.md "unresponsive peer"; the samples cover the time it was there.)
    assert samples, "A was never seen connected"
    assert max(b for _, b in samples) <= OUTBOX_BYTES_MAX, samples
    # The stall was real: A's queue filled up to a video limit (frames, or bytes), and no
    # further.
    assert (max(n for n, _ in samples) >= LIMITS.max_video
            or max(b for _, b in samples) >= LIMITS.max_video_bytes - FRAME_BYTES), samples
    dropped = sample(after, "pgcall_frames_dropped_total", reason="slow_client_video")
    assert dropped > sample(before, "pgcall_frames_dropped_total", reason="slow_client_video")
    assert rss_after - rss_before < RSS_GROWTH_MAX, (rss_before, rss_after)
