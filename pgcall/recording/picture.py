"""Drawing one picture of an exported video (docs/recording.md "Export"). Needs PyAV and numpy
(the ``export`` extra); imported only by ``export``.

Owns: decoding a recorded JPEG (with FFmpeg's decoder, through PyAV), scaling it to its tile
(FFmpeg's scaler), and the canvas: a 4:2:0 picture in one numpy array, on which tiles are
pasted, empty tiles filled and the talking people framed, then handed to the encoder as a
``VideoFrame``. A decoded and scaled picture is kept while its frame is the one shown, so a
held picture costs nothing.
Does not own: where tiles go (``layout``), what each shows (``timeline``), encoding (``export``).
"""

from __future__ import annotations

import logging
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .layout import Rect
from .timeline import Frame

log = logging.getLogger("pgcall.export")

BACKGROUND = (16, 128, 128)  # black
EMPTY_TILE = (40, 128, 128)  # dark grey: someone with no picture yet (camera off, voice)
TALKING = (138, 102, 71)  # green, in Y, U, V
BORDER = 4  # pixels


class Canvas:
    """A ``width`` x ``height`` picture in yuv420p; both must be multiples of 4 (the chroma
    planes are views into the same array, as ``VideoFrame.from_ndarray`` wants them)."""

    def __init__(self, width: int, height: int) -> None:
        if width % 4 or height % 4:
            raise ValueError(f"the picture size must be multiples of 4, not {width}x{height}")
        self.width, self.height = width, height
        self.buf = np.empty((height * 3 // 2, width), np.uint8)
        quarter = height // 4
        self.y = self.buf[:height]
        self.u = self.buf[height:height + quarter].reshape(height // 2, width // 2)
        self.v = self.buf[height + quarter:].reshape(height // 2, width // 2)

    def clear(self) -> None:
        self.fill(Rect(0, 0, self.width, self.height), BACKGROUND)

    def fill(self, r: Rect, yuv: tuple[int, int, int]) -> None:
        self.y[r.y:r.y + r.h, r.x:r.x + r.w] = yuv[0]
        cy, cx, ch, cw = r.y // 2, r.x // 2, r.h // 2, r.w // 2
        self.u[cy:cy + ch, cx:cx + cw] = yuv[1]
        self.v[cy:cy + ch, cx:cx + cw] = yuv[2]

    def paste(self, r: Rect, planes: tuple[Any, Any, Any]) -> None:
        y, u, v = planes
        self.y[r.y:r.y + r.h, r.x:r.x + r.w] = y
        cy, cx = r.y // 2, r.x // 2
        self.u[cy:cy + r.h // 2, cx:cx + r.w // 2] = u
        self.v[cy:cy + r.h // 2, cx:cx + r.w // 2] = v

    def frame_around(self, r: Rect, yuv: tuple[int, int, int], width: int = BORDER) -> None:
        for side in (Rect(r.x, r.y, r.w, width), Rect(r.x, r.y + r.h - width, r.w, width),
                     Rect(r.x, r.y, width, r.h), Rect(r.x + r.w - width, r.y, width, r.h)):
            self.fill(side, yuv)

    def video_frame(self) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(self.buf, format="yuv420p")


def _planes(frame: av.VideoFrame) -> tuple[Any, Any, Any]:
    """The Y, U, V planes of a yuv420p frame as arrays without their line padding."""
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        out.append(rows[:plane.height, :plane.width])
    return out[0], out[1], out[2]


class PictureCache:
    """Decoded and scaled pictures, kept per person while the same frame is shown."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("mjpeg", "r")
        self._decoded: dict[str, tuple[Frame, av.VideoFrame | None]] = {}
        self._scaled: dict[str, tuple[Frame, int, int, tuple[Any, Any, Any]]] = {}
        # One scaler per person and layer: it keeps its set-up while sizes stay the same,
        # which makes scaling two to three times faster than a new one per picture.
        self._scalers: dict[tuple[str, str | None], VideoReformatter] = {}
        self.decoded = 0
        self.undecodable = 0

    def decode(self, frame: Frame) -> av.VideoFrame | None:
        kept = self._decoded.get(frame.from_id)
        if kept is not None and kept[0] is frame:
            return kept[1]
        picture: av.VideoFrame | None = None
        try:
            got = self._decoder.decode(av.Packet(frame.payload))
            picture = got[0] if got else None
        except (av.FFmpegError, ValueError) as exc:
            log.debug("frame %s/%d from %s not decodable: %s", frame.kind, frame.seq,
                      frame.from_id[:8], exc)
        if picture is None:
            self.undecodable += 1
        else:
            self.decoded += 1
        self._decoded[frame.from_id] = (frame, picture)
        return picture

    def scaled(self, frame: Frame, w: int, h: int) -> tuple[Any, Any, Any] | None:
        kept = self._scaled.get(frame.from_id)
        if kept is not None and kept[0] is frame and kept[1:3] == (w, h):
            return kept[3]
        picture = self.decode(frame)
        if picture is None:
            return None
        scaler = self._scalers.setdefault((frame.from_id, frame.layer), VideoReformatter())
        # JPEG (JFIF) pictures use the full range of values; H.264's the video range.
        planes = _planes(scaler.reformat(picture, w, h, format="yuv420p",
                                         src_color_range="JPEG", dst_color_range="MPEG"))
        self._scaled[frame.from_id] = (frame, w, h, planes)
        return planes

    def size(self, frame: Frame) -> tuple[int, int] | None:
        """The picture's own size (decoding it if need be): what its tile's aspect follows."""
        picture = self.decode(frame)
        return None if picture is None else (picture.width, picture.height)
