"""Synthetic media for the export tests: pictures that show a number, sound that beeps, and
reading both back out of an exported MP4.

Owns: a 640x360 JPEG (made with FFmpeg's encoder through PyAV) whose eight vertical stripes are
the bits of a counter (white 1, black 0) under a band of a colour of the sender's; 50 ms PCM
frames, silent or a sine tone; decoding an MP4 back into (time, picture) and (samples, rate),
reading the counter out of a tile of a picture, and finding where a tone starts.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

WIDTH, HEIGHT = 640, 360
RATE = 16000
FRAME_SAMPLES = 800  # 50 ms
BITS = 8


def counter_jpeg(n: int, shade: int = 128, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A picture of ``n`` (0-255): its bits as stripes, most significant left, in the lower
    four fifths; the top fifth is grey ``shade`` (who sent it)."""
    y = np.zeros((height, width), np.uint8)
    stripe = width // BITS
    for bit in range(BITS):
        if n >> (BITS - 1 - bit) & 1:
            y[:, bit * stripe:(bit + 1) * stripe] = 235
    y[:height // 5] = shade
    rgb = np.repeat(y[:, :, None], 3, axis=2)
    picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 15)
    packets = encoder.encode(picture) + encoder.encode(None)
    return bytes(packets[0])


def read_counter(luma: Any, x: int, y: int, w: int, h: int) -> int:
    """The counter shown in the tile at (x, y, w, h) of a decoded picture's Y plane."""
    row = y + h * 3 // 5
    value = 0
    for bit in range(BITS):
        col = x + (2 * bit + 1) * w // (2 * BITS)
        value = value << 1 | int(luma[row, col] > 128)
    return value


def read_shade(luma: Any, x: int, y: int, w: int, h: int) -> int:
    return int(luma[y + h // 10, x + w // 2])


def tone(start_sample: int, freq: float, amplitude: float = 0.3) -> bytes:
    t = (np.arange(FRAME_SAMPLES) + start_sample) / RATE
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2").tobytes()


SILENCE = bytes(2 * FRAME_SAMPLES)


def decode_video(path: Path) -> list[tuple[float, Any]]:
    """Every picture of ``path``: (seconds, its Y plane as an array)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            luma = frame.reformat(format="gray").to_ndarray()
            out.append((float(frame.pts * frame.time_base), luma))
    return out


def decode_audio(path: Path) -> tuple[Any, int]:
    """All of ``path``'s sound as one float array (mono), and its rate."""
    chunks, rate = [], 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(chunks), rate


def onset(samples: Any, rate: int, after_s: float, threshold: float = 0.05) -> float:
    """The time of the first sample after ``after_s`` louder than ``threshold``."""
    start = int(after_s * rate)
    loud = np.nonzero(np.abs(samples[start:]) > threshold)[0]
    assert len(loud), f"no sound after {after_s} s"
    return (start + int(loud[0])) / rate


def level_at(samples: Any, rate: int, from_s: float, to_s: float, freq: float) -> float:
    """How much of ``freq`` there is between ``from_s`` and ``to_s`` (amplitude of a sine)."""
    part = samples[int(from_s * rate):int(to_s * rate)]
    t = np.arange(len(part)) / rate
    return float(2 * np.abs(np.dot(part, np.exp(-2j * np.pi * freq * t))) / max(1, len(part)))
