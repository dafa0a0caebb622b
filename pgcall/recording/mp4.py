"""The encoding loop of an export (docs/recording.md "Export"). Needs PyAV and numpy.

Owns: reading the frames once, in time order, and turning them into the file's pictures and
sound as it goes: each picture slot is drawn as soon as no later frame can change it, each
stretch of sound as soon as no later frame can fall in it; mixing the senders' audio; the
H.264 (libx264) and AAC encoder settings and the MP4 container. Memory stays that of a few
frames whatever the recording's length.
Does not own: times and choices (``timeline``), tile positions (``layout``), drawing
(``picture``), the options and figures (``export``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from . import layout
from .export import ExportCancelled, ExportOptions, ExportStats, RecordingInfo
from .picture import EMPTY_TILE, TALKING, Canvas, PictureCache
from .timeline import (
    AudioPlacer,
    Frame,
    Pictures,
    Speakers,
    choose_main,
    slot_count,
    slot_final_ms,
)

MIX_RATE = 16000  # the clients' rate: audio is mixed at it, then resampled once for AAC
AAC_RATE = 48000
AAC_BITRATE = 64000
FLUSH_SAMPLES = 1600  # sound is handed to the encoder 100 ms at a time
X264 = {"preset": "veryfast", "crf": "23", "profile": "high"}  # keyframes: every 4 s (below)

Tile = tuple[str, layout.Rect, Frame | None, bool]  # who, where, the picture shown, talking


class Mixer:
    """The sound not yet handed to the encoder: each sender's samples added at their place."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.base = 0  # the sample at buf[0]: everything before it is encoded
        self.buf = np.zeros(0, np.int32)

    def add(self, start: int, pcm: Any) -> None:
        if start < self.base:
            pcm, start = pcm[self.base - start:], self.base
        pcm = pcm[:max(0, self.total - start)]
        if not len(pcm):
            return
        end = start + len(pcm) - self.base
        if end > len(self.buf):
            grown = np.zeros(max(end, 2 * len(self.buf)), np.int32)
            grown[:len(self.buf)] = self.buf
            self.buf = grown
        self.buf[start - self.base:end] += pcm

    def take(self, upto: int) -> Any:
        """The mixed samples from ``base`` to ``upto``, clipped to 16 bits."""
        n = max(0, min(upto, self.total) - self.base)
        out = np.zeros(n, np.int32)
        have = min(n, len(self.buf))
        out[:have] = self.buf[:have]
        self.buf = self.buf[have:].copy()
        self.base += n
        return np.clip(out, -32768, 32767).astype(np.int16)


def _pcm(frame: Frame) -> Any:
    """A frame's samples, mono, at ``MIX_RATE``."""
    data = frame.payload[:len(frame.payload) // 2 * 2]
    pcm: Any = np.frombuffer(data, "<i2").astype(np.int32)
    channels = frame.channels or 1
    if channels > 1:
        pcm = pcm[:len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1)
    rate = frame.sample_rate or MIX_RATE
    if rate != MIX_RATE and len(pcm):
        n = round(len(pcm) * MIX_RATE / rate)
        pcm = np.interp(np.arange(n) * rate / MIX_RATE, np.arange(len(pcm)), pcm)
    return pcm.astype(np.int32)


class _Writer:
    def __init__(self, rec: RecordingInfo, opt: ExportOptions, container: Any) -> None:
        self.opt, self.container = opt, container
        self.video = container.add_stream("libx264", rate=opt.fps)
        self.video.width, self.video.height, self.video.pix_fmt = opt.width, opt.height, "yuv420p"
        self.video.options = {**X264, "g": str(opt.fps * 4)}
        self.video.codec_context.thread_count = opt.threads
        self.audio = container.add_stream("aac", rate=AAC_RATE, layout="mono")
        self.audio.bit_rate = AAC_BITRATE
        self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=AAC_RATE,
                                           frame_size=1024)
        self.order = list(rec.participants)
        self.duration_ms = rec.duration_ms
        self.slots = slot_count(rec.duration_ms, opt.fps)
        self.next_slot = 0
        self.pictures, self.speakers = Pictures(), Speakers()
        self.cache, self.canvas = PictureCache(), Canvas(opt.width, opt.height)
        self.placer = AudioPlacer(MIX_RATE)
        self.mixer = Mixer(round(rec.duration_ms * MIX_RATE / 1000))
        self.last_tiles: list[Tile] | None = None
        self.last_frame: av.VideoFrame | None = None
        self.video_in = self.audio_in = self.composed = 0

    # -- reading ---------------------------------------------------------------------------

    def add(self, frame: Frame) -> None:
        self._pictures_until(frame.ms)
        if frame.kind == "video":
            self.video_in += 1
            if frame.from_id not in self.order:
                self.order.append(frame.from_id)
            self.pictures.seen(frame)
        else:
            self.audio_in += 1
            pcm = _pcm(frame)
            level = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) / 32768 \
                if len(pcm) else 0.0
            self.speakers.heard(frame.from_id, frame.ms, level, len(pcm) * 1000 / MIX_RATE)
            start, skip = self.placer.place(frame.from_id, frame.seq, frame.ms, len(pcm))
            self.mixer.add(start, pcm[skip:])
        done = self.placer.earliest_next(frame.ms)
        if done - self.mixer.base >= FLUSH_SAMPLES:
            self._sound_until(done)

    def finish(self) -> None:
        while self.next_slot < self.slots:  # the last one shows the last frames recorded
            self._picture(self.next_slot)
            self.next_slot += 1
        self._sound_until(self.mixer.total)
        self._encode_sound(None)
        self._mux(self.video.encode(None))

    # -- pictures ----------------------------------------------------------------------------

    def _pictures_until(self, ms: float) -> None:
        """Draw every slot that a frame at ``ms`` comes too late to change (but the last)."""
        while self.next_slot < self.slots - 1 and \
                slot_final_ms(self.next_slot, self.opt.fps) <= ms:
            self._picture(self.next_slot)
            self.next_slot += 1

    def _tiles(self, now: float) -> list[Tile]:
        talking = self.speakers.talking(now)
        w, h = self.opt.width, self.opt.height
        if self.opt.layout == "grid":
            placed = list(zip(self.order, layout.grid(len(self.order), w, h), strict=True))
        else:
            fresh = {who for who in self.order if self.pictures.has_fresh_full(who, now)}
            main = choose_main(self.order, self.speakers.dominant(now), fresh)
            others = [who for who in self.order if who != main]
            big, strip = layout.speaker(len(others), w, h)
            placed = ([] if main is None else [(main, big)]) + list(zip(others, strip,
                                                                        strict=True))
        return [(who, rect, self.pictures.best(who, now), who in talking) for who, rect in placed]

    def _picture(self, slot: int) -> None:
        tiles = self._tiles(slot_final_ms(slot, self.opt.fps))
        if tiles != self.last_tiles or self.last_frame is None:
            self.last_tiles, self.last_frame = tiles, self._draw(tiles)
            self.composed += 1
        self.last_frame.pts = slot
        self.last_frame.time_base = Fraction(1, self.opt.fps)
        self._mux(self.video.encode(self.last_frame))

    def _draw(self, tiles: list[Tile]) -> av.VideoFrame:
        canvas = self.canvas
        canvas.clear()
        for _, rect, frame, talking in tiles:
            size = None if frame is None else self.cache.size(frame)
            if frame is None or size is None:
                canvas.fill(rect, EMPTY_TILE)
            else:
                box = layout.fit(size[0], size[1], rect)
                planes = self.cache.scaled(frame, box.w, box.h)
                if planes is None:
                    canvas.fill(rect, EMPTY_TILE)
                else:
                    canvas.paste(box, planes)
            if talking:
                canvas.frame_around(rect, TALKING)
        return canvas.video_frame()

    # -- sound -----------------------------------------------------------------------------

    def _sound_until(self, sample: int) -> None:
        start = self.mixer.base
        pcm = self.mixer.take(sample)
        if not len(pcm):
            return
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = MIX_RATE
        frame.pts = start
        frame.time_base = Fraction(1, MIX_RATE)
        self._encode_sound(frame)

    def _encode_sound(self, frame: av.AudioFrame | None) -> None:
        for resampled in self.resampler.resample(frame):
            self._mux(self.audio.encode(resampled))
        if frame is None:
            self._mux(self.audio.encode(None))

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self.container.mux(packet)


def write(rec: RecordingInfo, frames: Iterable[Frame], path: Path, opt: ExportOptions,
          should_stop: Callable[[], bool]) -> ExportStats:
    began = time.perf_counter()
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        writer = _Writer(rec, opt, container)
        for frame in frames:
            if should_stop():
                raise ExportCancelled()
            if frame.ms <= rec.duration_ms:
                writer.add(frame)
        writer.finish()
        container.close()
    except BaseException:
        with contextlib.suppress(Exception):
            container.close()
        path.unlink(missing_ok=True)
        raise
    return ExportStats(duration_ms=rec.duration_ms, video_frames=writer.video_in,
                       audio_frames=writer.audio_in, pictures=writer.slots,
                       composed=writer.composed, undecodable=writer.cache.undecodable,
                       bytes=path.stat().st_size, seconds=time.perf_counter() - began)
