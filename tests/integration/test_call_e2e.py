"""The issue's acceptance test: two clients complete a video call through the real PostgreSQL.

Both sides send, for 5 s, 15 frames/s of distinct JPEG-like video (FF D8, a counter, ~30 KB of
random bytes) and 20 frames/s of 1600-byte PCM16 audio (16 kHz, 50 ms), the rates of the
published demo. Every frame goes client → pgcall → INSERT → WAL → logical replication → pgcall
→ the peer. Then one side hangs up and both see the call's delete event.

The sending is paced by the clock (that is the workload, not synchronisation); receiving ends
when every frame has arrived or a grace period after the last send has passed.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from .wsclient import Client, event, open_clients, setup_call

DURATION_S = 5.0
VIDEO_FPS = 15
AUDIO_FPS = 20
VIDEO_BYTES = 30_000
AUDIO_BYTES = 1600
GRACE_S = 3.0  # after the last frame is sent, for the last ones to arrive
# The functional acceptance number: each side receives at least 14.5 frames/s of video
# on average over the sending window (frames received / window length).
MIN_VIDEO_FPS = 14.5
MIN_AUDIO_SHARE = 0.95  # audio both ways: at least this share of the frames, intact, in order


def video_payload(counter: int) -> bytes:
    return b"\xff\xd8" + counter.to_bytes(4, "big") + os.urandom(VIDEO_BYTES - 6)


async def send_stream(me: Client, peer: Client, session_id: str, kind: str,
                      payloads: list[bytes], fps: int, t0: float) -> None:
    for seq, payload in enumerate(payloads):
        await trio.sleep_until(t0 + seq / fps)
        if kind == "video":
            header: dict[str, Any] = {"session_id": session_id, "to": peer.identity,
                                      "seq": seq, "width": 640, "height": 360}
        else:
            header = {"session_id": session_id, "to": peer.identity, "seq": seq,
                      "sample_rate": 16000, "channels": 1, "rms": 0.1}
        await me.send_media(kind, header, payload)


async def receive_media(me: Client, expected: dict[str, int], until: float,
                        got: dict[str, list[Any]]) -> None:
    with trio.move_on_at(until):
        while any(len(got[k]) < n for k, n in expected.items()):
            frame = await me.expect(lambda f: f.is_media, timeout_s=DURATION_S + GRACE_S)
            got[frame.kind].append(frame)


async def test_video_call_end_to_end(server: str) -> None:
    n_video, n_audio = int(DURATION_S * VIDEO_FPS), int(DURATION_S * AUDIO_FPS)
    with trio.fail_after(DURATION_S + GRACE_S + 30):
        async with open_clients(server, 2) as (a, b):
            session_id = await setup_call(a, b, "Video")
            sent = {c.identity: {"video": [video_payload(i) for i in range(n_video)],
                                 "audio": [os.urandom(AUDIO_BYTES) for _ in range(n_audio)]}
                    for c in (a, b)}
            got: dict[str, dict[str, list[Any]]] = {c.identity: {"video": [], "audio": []}
                                                    for c in (a, b)}
            t0 = trio.current_time() + 0.1
            async with trio.open_nursery() as nursery:
                for me, peer in ((a, b), (b, a)):
                    mine = sent[me.identity]
                    nursery.start_soon(send_stream, me, peer, session_id, "video",
                                       mine["video"], VIDEO_FPS, t0)
                    nursery.start_soon(send_stream, me, peer, session_id, "audio",
                                       mine["audio"], AUDIO_FPS, t0)
                    nursery.start_soon(receive_media, me, {"video": n_video, "audio": n_audio},
                                       t0 + DURATION_S + GRACE_S, got[me.identity])

            # Hang up: both see the call go.
            assert await a.request({"type": "end_call", "session_id": session_id}) \
                == {"type": "ack", "req_type": "end_call"}
            for c in (a, b):
                old = (await c.expect(event("delete", "call_sessions",
                                            session_id=session_id))).obj["old"]
                assert old["session_id"] == session_id

    for me, peer in ((a, b), (b, a)):
        for kind in ("video", "audio"):
            frames = got[me.identity][kind]
            payloads = sent[peer.identity][kind]
            seqs = [f.obj["seq"] for f in frames]
            assert seqs == sorted(set(seqs)), f"{kind} to {me.identity[:8]} out of order"
            for f in frames:
                assert f.obj["from"] == peer.identity and f.obj["session_id"] == session_id
                assert f.payload == payloads[f.obj["seq"]], f"{kind} seq {f.obj['seq']} changed"
        video_fps = len(got[me.identity]["video"]) / DURATION_S
        assert video_fps >= MIN_VIDEO_FPS, f"{me.identity[:8]} received {video_fps:.1f} fps"
        assert len(got[me.identity]["audio"]) >= MIN_AUDIO_SHARE * n_audio
