"""Exporting a recording to an MP4 file (docs/recording.md "Export"): what an export is given,
what it produces, and whether this installation can do it.

Owns: the options of an export (layout, picture size, frame rate, encoder threads), what the
exporter needs to know of a recording, the figures it reports, the one line that says how to
install what is missing, and ``write_mp4``, the synchronous entry point (CPU-heavy: run it off
the trio thread, see ``job``). This module imports without PyAV; the encoding itself is in
``mp4`` (which needs the ``export`` extra: PyAV and numpy).
Does not own: reading the frames from PostgreSQL (``job``, ``db.recordings``).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from .timeline import Frame

LAYOUTS = ("grid", "speaker")
DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 15
INSTALL_HINT = "video export needs PyAV and numpy: pip install 'pgcall[export]'"


class ExportUnavailable(Exception):
    """PyAV (or numpy) is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


class ExportCancelled(Exception):
    """The export was asked to stop (its requester went away)."""


@attrs.frozen
class ExportOptions:
    layout: str = "grid"
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    fps: int = DEFAULT_FPS
    threads: int = 0  # the H.264 encoder's threads; 0: as many as it finds cores

    def __attrs_post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if not (160 <= self.width <= 3840 and 96 <= self.height <= 2160) or \
                self.width % 4 or self.height % 4:
            raise ValueError("the picture size must be 160x96 to 3840x2160, in multiples of 4, "
                             f"not {self.width}x{self.height}")
        if not 1 <= self.fps <= 60:
            raise ValueError(f"the frame rate must be 1-60, not {self.fps}")


@attrs.frozen
class RecordingInfo:
    """What the exporter needs of a recording: its people (the tiles, in the order they
    joined) and its length (the video's)."""

    recording_id: str
    participants: tuple[str, ...]
    duration_ms: int
    started_at: dt.datetime | None = None


@attrs.frozen
class ExportStats:
    duration_ms: int
    video_frames: int  # recorded pictures read
    audio_frames: int  # recorded audio frames read
    pictures: int  # pictures in the file (fps x duration)
    composed: int  # of which drawn anew (the others repeat the previous one)
    undecodable: int  # recorded pictures that were not valid JPEG (skipped)
    bytes: int
    seconds: float  # wall-clock time of the export

    @property
    def speed(self) -> float:
        """How many times faster than real time."""
        return self.duration_ms / 1000 / self.seconds if self.seconds > 0 else 0.0


def available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("av", "numpy"))


DEFAULT_OPTIONS = ExportOptions()


def write_mp4(recording: RecordingInfo, frames: Iterable[Frame], path: Path,
              options: ExportOptions = DEFAULT_OPTIONS,
              should_stop: Callable[[], bool] = lambda: False) -> ExportStats:
    """Write ``recording`` to ``path`` (H.264 and AAC in MP4) from its ``frames``, in time
    order. On any failure, or ``ExportCancelled`` when ``should_stop()`` turns true, no file
    is left at ``path``. Raises ``ExportUnavailable`` without the ``export`` extra."""
    try:
        from . import mp4
    except ImportError as exc:
        if exc.name in ("av", "numpy") or not available():
            raise ExportUnavailable() from None
        raise
    return mp4.write(recording, frames, path, options, should_stop)
