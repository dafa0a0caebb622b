"""How fast ``pgcall export`` is, and how large its files are, for a minute of a call and of a
16-person room (docs/recording.md "Export").

Makes the recording in memory, with camera-like pictures (a lit background, a moving head,
sensor noise: what costs an H.264 encoder its bits) and speech-like sound, and runs the export
itself (``write_mp4``) on it: no database, so the figures are the encoding's alone. Reading
the frames from PostgreSQL adds little (one query per ten seconds of recording).

* call: two people, 640x360 JPEG at 15 frames/s each, both talking in turn;
* room: 16 people, each a 160x90 thumbnail at 7.5 frames/s, the speaker also 640x360 at 15.

Prints, for each, how many times faster than real time the export ran by the wall clock and
by the CPU time it used (all threads: with ``--threads 1`` that is one core's worth, as a
download in pgcall uses), and the file's size per minute of recording.

Not part of the test suite. From the repository root, alone on the machine:
``python3 benchmarks/export_speed.py [--seconds 60] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from pgcall.recording.export import ExportOptions, RecordingInfo, write_mp4
from pgcall.recording.timeline import Frame

DISTINCT = 60  # distinct pictures per person, shown in a loop


def camera_jpegs(seed: int, width: int, height: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 60 + 80 * xx / width + 40 * yy / height + 10 * rng.random()
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 15)
    out = []
    for k in range(DISTINCT):
        cx = width / 2 + width / 8 * np.sin(k / 9)
        cy = height / 2 + height / 12 * np.cos(k / 7)
        head = ((xx - cx) / (width / 7)) ** 2 + ((yy - cy) / (height / 3.5)) ** 2 < 1
        y = np.where(head, 150 + 20 * np.sin(xx / 5), base) + rng.normal(0, 3, base.shape)
        rgb = np.repeat(np.clip(y, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
        rgb[:, :, 0] = np.clip(rgb[:, :, 0].astype(int) + 25, 0, 255)  # a warm tint
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
        out.append(bytes(encoder.encode(frame)[0]))
    return out


def speech(seconds: float, talking: bool, seed: int) -> list[bytes]:
    """50 ms frames: a voice-like mix of tones, or None for silence (not sent)."""
    rng = np.random.default_rng(seed)
    t = np.arange(800) / 16000
    pitch = 120 + 60 * rng.random()
    wave: Any = sum(np.sin(2 * np.pi * pitch * h * t) / h for h in range(1, 6))
    return [(wave * 3000 * (0.5 + rng.random())).astype("<i2").tobytes() if talking else b""
            for _ in range(int(seconds * 20))]


def recording(kind: str, seconds: float) -> tuple[RecordingInfo, list[Frame]]:
    people = 2 if kind == "call" else 16
    ids = [f"{i:02x}" * 32 for i in range(people)]
    frames: list[Frame] = []
    full = {i: camera_jpegs(i, 640, 360) for i in range(min(people, 2))}
    for i, who in enumerate(ids):
        turn = i % 2  # who speaks: person 0 then 1, ten seconds each
        if kind == "room":
            thumbs = camera_jpegs(100 + i, 160, 90)
            for k in range(int(seconds * 7.5)):
                frames.append(Frame("video", who, k, round(k * 1000 / 7.5) + i, "thumb", 160,
                                    90, None, None, None, thumbs[k % DISTINCT]))
        if i < 2:
            for k in range(int(seconds * 15)):
                ms = round(k * 1000 / 15)
                speaking = (ms // 10_000) % 2 == turn
                if kind == "call" or speaking:
                    frames.append(Frame("video", who, k, ms, "full", 640, 360, None, None,
                                        None, full[i][k % DISTINCT]))
            for k, pcm in enumerate(speech(seconds, True, i)):
                ms = k * 50
                if (ms // 10_000) % 2 == turn:
                    frames.append(Frame("audio", who, k, ms, None, None, None, 16000, 1, None,
                                        pcm))
    frames.sort(key=lambda f: f.ms)
    return RecordingInfo(kind, tuple(ids), round(seconds * 1000)), frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=0,
                        help="the encoder's threads (0: as many as it finds cores)")
    args = parser.parse_args()
    rows: list[tuple[Any, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("call", "room"):
            rec, frames = recording(kind, args.seconds)
            for layout in ("grid", "speaker"):
                for size in ((1280, 720), (640, 360)):
                    options = ExportOptions(layout=layout, width=size[0], height=size[1],
                                            threads=args.threads)
                    cpu = time.process_time()
                    stats = write_mp4(rec, frames, Path(tmp) / "out.mp4", options)
                    cpu = time.process_time() - cpu
                    per_minute = stats.bytes / (stats.duration_ms / 60_000) / 1e6
                    rows.append((kind, layout, f"{size[0]}x{size[1]}", f"{stats.speed:.1f}x",
                                 f"{stats.duration_ms / 1000 / cpu:.1f}x",
                                 f"{per_minute:.1f} MB"))
                    print(*rows[-1], sep="\t", flush=True)
    print("\n| recording | layout | size | x real time (wall clock) | x real time (per CPU "
          "second) | MP4 per minute |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
