"""A recorded frame as a replay message (docs/recording.md "Replay"). Pure.

Owns: the media message a client replaying a recording gets for each frame: the tag of its
kind, a header with the ``recording_id``, who sent it (``from``), its ``seq``, ``t`` (ms after
the recording started) and the fields of its kind (video: width, height, layer; audio:
sample_rate, channels, rms), then the payload unchanged.
"""

from __future__ import annotations

from typing import Any

from ..wire import encode, rowjson


def replay_message(recording_id: str, frame: tuple[Any, ...]) -> bytes:
    """``frame``: (kind, from_id, seq, ms, layer, width, height, sample_rate, channels, rms,
    payload), as ``db.recordings.RecordingStore.frames`` gives it."""
    kind, from_id, seq, ms, layer, width, height, rate, channels, rms, payload = frame
    header: dict[str, Any] = {"recording_id": recording_id, "from": from_id, "seq": seq,
                              "t": int(ms)}
    if kind == "video":
        header.update(width=width, height=height, layer=layer or "full")
    else:
        header.update(sample_rate=rate, channels=channels, rms=rowjson.float4_text(rms))
    return encode.encode_media(kind, header, payload)
