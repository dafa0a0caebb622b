"""Exporting a recording to MP4 (docs/recording.md "Export"), from frames stored in a real
PostgreSQL, decoded back with PyAV: each picture at its recorded time (irregular arrival and a
gap kept, the gap holding the last picture), the length of the recording, the sound where it
was recorded and in step with the pictures, several voices mixed, the talking frame, and in a
room the layer each tile shows and who the speaker layout puts large.

The recordings are synthetic: their rows are written straight into ``recordings`` and
``recorded_frames`` at chosen times (the live path that writes them is tested in
test_recording.py), the pictures show a counter, and the sound beeps at known times.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pgcall.db.recordings import RecordingStore
from pgcall.pg.pool import Pool
from pgcall.recording import job, layout
from pgcall.recording.export import ExportOptions
from pgcall.recording.timeline import slot_of
from tests import synthmedia as sm

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
A, B = "a" * 64, "b" * 64
FPS = 15
SIZE = (1280, 720)


async def store_recording(db: Pool, people: list[str], duration_ms: int,
                          frames: list[dict[str, Any]], room: bool = False) -> str:
    """A stopped recording of ``people`` with ``frames`` (dicts of recorded_frames' columns,
    ``ms`` after its start); returns its id."""
    rid = uuid.uuid4()
    target = "room_id" if room else "session_id"
    await db.execute(
        f"INSERT INTO recordings (recording_id, {target}, started_by, started_at, stopped_at, "
        "participants) VALUES ($1, $2, $3, $4, $5, $6)",
        [rid, uuid.uuid4(), people[0], START, START + timedelta(milliseconds=duration_ms),
         people])
    for f in frames:
        await db.execute(
            "INSERT INTO recorded_frames (recording_id, kind, from_id, seq, layer, width, "
            "height, sample_rate, channels, rms, payload, at) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [rid, f["kind"], f["from"], f["seq"], f.get("layer"), f.get("width"),
             f.get("height"), f.get("rate"), f.get("channels"), f.get("rms"), f["payload"],
             START + timedelta(milliseconds=f["ms"])])
    return str(rid)


def video(who: str, seq: int, ms: int, counter: int, shade: int, layer: str = "full",
          size: tuple[int, int] = (640, 360)) -> dict[str, Any]:
    return {"kind": "video", "from": who, "seq": seq, "ms": ms, "layer": layer,
            "width": size[0], "height": size[1],
            "payload": sm.counter_jpeg(counter, shade, *size)}


def audio(who: str, seq: int, ms: int, pcm: bytes) -> dict[str, Any]:
    return {"kind": "audio", "from": who, "seq": seq, "ms": ms, "rate": sm.RATE,
            "channels": 1, "rms": 0.0, "payload": pcm}


async def export(db: Pool, rid: str, path: Path, **options: Any) -> Any:
    store = RecordingStore(db, 0)
    rec = await job.find(store, rid, None)
    assert rec is not None
    return await job.export(store, rec, path, ExportOptions(**options))


def tile_of(index: int, n: int) -> layout.Rect:
    return layout.fit(640, 360, layout.grid(n, *SIZE)[index])


def picture_at(pictures: list[tuple[float, Any]], seconds: float) -> Any:
    """The picture shown at ``seconds``."""
    return [luma for t, luma in pictures if t <= seconds + 1e-6][-1]


# -- a call -------------------------------------------------------------------------------------

DURATION_MS = 6500
BEEPS_MS = (2000, 4200)  # B beeps at these times; A's pictures change at exactly these too
GAP_MS = (3000, 4200)  # A sends no picture in between


def call_frames() -> tuple[list[dict[str, Any]], list[int]]:
    """A's pictures (every 66 ms give or take 20, none in the gap, one exactly at each beep)
    and sound (a 440 Hz tone from 4400 to 4800 ms); B's sound (speech-like stretches, silent
    frames not sent, a 1320 Hz beep from each of ``BEEPS_MS``, frames 0-15 ms late)."""
    rng = random.Random(7)
    times, t = [], 0
    while t < DURATION_MS - 100:
        if GAP_MS[0] <= t < GAP_MS[1]:
            t = GAP_MS[1]
        times.append(t)
        t += 66 + rng.randint(-20, 20)
    for beep in BEEPS_MS:  # a picture exactly at each beep, none just before it
        times = [x for x in times if not beep - 70 < x < beep] + [beep]
    times = sorted(set(times))
    frames = [video(A, n, ms, n, 200) for n, ms in enumerate(times)]
    seq = 0
    for start, end in ((1500, 2500), (4000, 5000)):
        for ms in range(start, end, 50):
            beeping = any(b <= ms < b + 300 for b in BEEPS_MS)
            late = 0 if ms in (start, *BEEPS_MS) else rng.randint(0, 15)
            pcm = sm.tone((ms - start) * sm.RATE // 1000, 1320) if beeping else \
                sm.tone(0, 200, amplitude=0.02)  # speech-like murmur under the beeps
            frames.append(audio(B, seq, ms + late, pcm))
            seq += 1
    for k, ms in enumerate(range(4400, 4800, 50)):
        frames.append(audio(A, k, ms, sm.tone(k * sm.FRAME_SAMPLES, 440)))
    return frames, times


async def test_a_call_exports_at_its_recorded_times(db: Pool, tmp_path: Path) -> None:
    frames, times = call_frames()
    rid = await store_recording(db, [A, B], DURATION_MS, frames)
    out = tmp_path / "call.mp4"
    stats = await export(db, rid, out)
    print(f"export: {stats.duration_ms / 1000:.1f} s in {stats.seconds:.2f} s "
          f"({stats.speed:.1f}x real time), {stats.bytes} bytes")
    assert (stats.video_frames, stats.audio_frames) == (len(times), len(frames) - len(times))
    assert stats.undecodable == 0

    pictures = sm.decode_video(out)
    samples, rate = sm.decode_audio(out)
    # The recording's length, in pictures and in sound.
    assert abs(len(pictures) / FPS - DURATION_MS / 1000) <= 0.1
    assert abs(len(samples) / rate - DURATION_MS / 1000) <= 0.1
    assert [round(t * FPS) for t, _ in pictures] == list(range(len(pictures)))  # constant rate

    # Every picture shows the newest of A's frames written by then: irregular times kept, the
    # gap holding the last picture before it.
    tile = tile_of(0, 2)
    shown = [sm.read_counter(luma, tile.x, tile.y, tile.w, tile.h) for _, luma in pictures]
    expected = [max(n for n, ms in enumerate(times) if slot_of(ms, FPS) <= slot)
                for slot in range(len(pictures))]
    assert shown == expected
    in_gap = [shown[s] for s in range(len(shown)) if GAP_MS[0] + 100 <= s * 1000 / FPS
              < GAP_MS[1] - 100]
    assert len(set(in_gap)) == 1 and len(in_gap) >= 14

    # Sound where it was recorded, and in step with the pictures.
    for beep in BEEPS_MS:
        heard = sm.onset(samples, rate, beep / 1000 - 0.2, threshold=0.1)
        changed = min(t for t, luma in pictures
                      if sm.read_counter(luma, tile.x, tile.y, tile.w, tile.h) ==
                      times.index(beep))
        print(f"beep at {beep} ms: heard at {heard * 1000:.0f} ms, "
              f"picture at {changed * 1000:.0f} ms")
        assert abs(heard - beep / 1000) <= 0.045
        assert abs(heard - changed) <= 0.080

    # Two voices at once are mixed: A's 440 Hz under B's murmur (and B's second beep's end).
    assert sm.level_at(samples, rate, 4.45, 4.75, 440) > 0.2
    assert sm.level_at(samples, rate, 4.45, 4.75, 200) > 0.01
    assert sm.level_at(samples, rate, 3.0, 3.9, 440) < 0.01  # and silence where nobody spoke

    # B, who sends no picture, has an empty tile, framed while it talks.
    b_tile = layout.grid(2, *SIZE)[1]
    inner = (b_tile.y + b_tile.h // 2, b_tile.x + b_tile.w // 2)
    edge = (b_tile.y + 1, b_tile.x + b_tile.w // 2)
    talking, quiet = picture_at(pictures, 2.1), picture_at(pictures, 3.5)
    assert 20 <= talking[inner] <= 50 and 20 <= quiet[inner] <= 50
    assert abs(int(talking[edge]) - 140) <= 20  # green
    assert abs(int(quiet[edge]) - int(quiet[inner])) <= 5


async def test_an_export_leaves_no_file_when_it_fails(db: Pool, tmp_path: Path) -> None:
    rid = await store_recording(db, [A, B], 1000, [video(A, 0, 0, 1, 200)])
    out = tmp_path / "missing-dir" / "x.mp4"
    store = RecordingStore(db, 0)
    rec = await job.find(store, rid, None)
    assert rec is not None
    try:
        await job.export(store, rec, out)
    except OSError:
        pass
    else:
        raise AssertionError("writing into a missing directory succeeded")
    assert not out.exists()


async def test_find_is_for_participants_and_the_operator(db: Pool) -> None:
    rid = await store_recording(db, [A, B], 1000, [])
    store = RecordingStore(db, 0)
    for who in (A, B, None):
        rec = await job.find(store, rid, who)
        assert rec is not None and rec.participants == (A, B) and rec.duration_ms == 1000
    assert await job.find(store, rid, "c" * 64) is None
    assert await job.find(store, str(uuid.uuid4()), None) is None


# -- a room -------------------------------------------------------------------------------------

MEMBERS = [f"{i:x}" * 64 for i in range(1, 7)]
SHADES = [60, 90, 120, 150, 180, 210]
ROOM_MS = 6000


def room_frames() -> list[dict[str, Any]]:
    """Six members sending thumbnails (counter = their index) all along at 7.5 per second;
    member 3 its full layer (counter 103) and loud sound until 3 s, member 5 from 3.5 s
    (counter 105)."""
    frames = []
    for i, who in enumerate(MEMBERS):
        for k, ms in enumerate(range(10 * i, ROOM_MS, 133)):
            frames.append(video(who, k, ms, i, SHADES[i], "thumb", (160, 90)))
    for i, (start, end) in ((3, (0, 3000)), (5, (3500, ROOM_MS))):
        for k, ms in enumerate(range(start, end, 66)):
            frames.append(video(MEMBERS[i], k, ms, 100 + i, SHADES[i]))
        for k, ms in enumerate(range(start + 500, end, 50)):
            frames.append(audio(MEMBERS[i], k, ms, sm.tone(k * sm.FRAME_SAMPLES, 300)))
    return frames


async def test_a_room_grid_shows_each_members_best_layer(db: Pool, tmp_path: Path) -> None:
    rid = await store_recording(db, MEMBERS, ROOM_MS, room_frames(), room=True)
    out = tmp_path / "grid.mp4"
    await export(db, rid, out, layout="grid", width=640, height=360)
    pictures = sm.decode_video(out)
    tiles = [layout.fit(16, 9, r) for r in layout.grid(6, 640, 360)]

    def counters(at: float) -> list[int]:
        luma = picture_at(pictures, at)
        return [sm.read_counter(luma, t.x, t.y, t.w, t.h) for t in tiles]

    assert counters(2.5) == [0, 1, 2, 103, 4, 5]  # member 3's full layer while it comes
    assert counters(4.5) == [0, 1, 2, 3, 4, 105]  # then its thumbnail again; member 5's full


async def test_a_room_speaker_layout_puts_the_speaker_large(db: Pool, tmp_path: Path) -> None:
    rid = await store_recording(db, MEMBERS, ROOM_MS, room_frames(), room=True)
    out = tmp_path / "speaker.mp4"
    await export(db, rid, out, layout="speaker", width=640, height=360)
    pictures = sm.decode_video(out)
    main, strip = layout.speaker(5, 640, 360)

    def shown(at: float) -> tuple[int, list[int]]:
        luma = picture_at(pictures, at)
        return (sm.read_counter(luma, main.x, main.y, main.w, main.h),
                [sm.read_counter(luma, t.x, t.y, t.w, t.h) for t in strip])

    # Before anyone speaks: whose full layer comes (the server asks only its speaker for it).
    assert shown(0.3) == (103, [0, 1, 2, 4, 5])
    assert shown(2.5) == (103, [0, 1, 2, 4, 5])  # member 3 speaks
    assert shown(5.5) == (105, [0, 1, 2, 3, 4])  # member 5 took over, in join order below
