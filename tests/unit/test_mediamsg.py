"""Media frames carried as logical decoding messages: encode → decode round trip and errors."""

import struct

import pytest

from pgcall.db import mediamsg
from pgcall.wire.protocol import Media

SID = "a0f375ab-fd13-48b1-8ba0-a68734dddfb8"


def test_round_trip_video_payload_is_zero_copy_and_identical() -> None:
    payload = b"\xff\xd8" + bytes(range(256)) * 10
    media = Media("video", SID, "b" * 64, 7, {"width": 640, "height": 360}, payload)
    content = mediamsg.encode(media, "a" * 64)
    kind, row = mediamsg.decode("pgcall.video", content)
    assert kind == "video"
    assert isinstance(row["jpeg"], memoryview) and bytes(row["jpeg"]) == payload
    assert {k: row[k] for k in ("session_id", "from_id", "to_id", "seq", "width", "height")} == {
        "session_id": SID, "from_id": "a" * 64, "to_id": "b" * 64, "seq": 7,
        "width": 640, "height": 360}


def test_round_trip_audio() -> None:
    media = Media("audio", SID, "b" * 64, 3,
                  {"sample_rate": 16000, "channels": 1, "rms": 0.5}, b"\x01\x00" * 800)
    kind, row = mediamsg.decode("pgcall.audio", mediamsg.encode(media, "a" * 64))
    assert kind == "audio" and bytes(row["pcm16le"]) == b"\x01\x00" * 800
    assert (row["sample_rate"], row["channels"], row["rms"]) == (16000, 1, 0.5)


@pytest.mark.parametrize("prefix, content", [
    ("other", b""),
    ("pgcall.video", b"\x00\x00"),
    ("pgcall.video", struct.pack(">I", 100) + b"{}"),
    ("pgcall.video", struct.pack(">I", 2) + b"[]"),
    ("pgcall.video", struct.pack(">I", 3) + b"{x}"),
    ("pgcall.video", struct.pack(">I", 2) + b"{}"),
])
def test_malformed_messages_raise_the_documented_error(prefix: str, content: bytes) -> None:
    with pytest.raises(mediamsg.MediaMessageError):
        mediamsg.decode(prefix, content)
