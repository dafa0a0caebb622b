"""Downloading a recording over HTTP (docs/recording.md "Download"): a call recorded through a
real pgcall and PostgreSQL, then ``GET /recordings/<id>.mp4?token=<token>``. Its participants
get the MP4 as an attachment; anyone else, a bad or missing token and an unknown id get the
same 404; a token is looked up, never given a new identity; without PyAV, participants are
told how to install it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import trio

from pgcall.pg.pool import Pool
from pgcall.recording import layout
from pgcall.web import download
from tests import synthmedia as sm

from .test_observability import http_get
from .test_recording import count, hello
from .test_security import serving, ws_base
from .wsclient import Client, audio_header, event, open_clients, setup_call, video_header

FRAMES = 24  # about 1.2 s of a call


async def recorded_call(a: Client, b: Client) -> str:
    """A call between ``a`` and ``b`` recorded while a sends counted pictures and b beeps."""
    session_id = await setup_call(a, b, "Video")
    await hello(a, b)
    rid = (await a.request({"type": "start_recording", "session_id": session_id}))[
        "recording_id"]
    for seq in range(FRAMES):
        await a.send_media("video", video_header(session_id, b.identity, seq),
                           sm.counter_jpeg(seq, 200))
        await b.send_media("audio", audio_header(session_id, a.identity, seq),
                           sm.tone(seq * sm.FRAME_SAMPLES, 700))
        await trio.sleep(0.05)
    await b.expect(lambda f: f.kind == "video" and f.obj["seq"] == FRAMES - 1)
    assert (await a.request({"type": "stop_recording", "session_id": session_id}))[
        "type"] == "ack"
    await b.expect(event("update", "recordings", recording_id=rid))
    return str(rid)


async def http_head(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
    async with stream:
        await stream.send_all(f"HEAD {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                              "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    return int(status_line.split()[1]), headers, rest


async def test_participants_download_the_recording(db_dsn: str, tmp_path: Path) -> None:
    async with serving(db_dsn) as running, open_clients(ws_base(running), 2) as (a, b):
        rid = await recorded_call(a, b)
        status, headers, body = await http_get(running.url,
                                               f"/recordings/{rid}.mp4?token={a.token}")
        assert status == 200, body[:200]
        assert headers["content-type"] == "video/mp4"
        assert headers["cache-control"] == "no-store"
        assert headers["content-disposition"].startswith('attachment; filename="pgcall-')
        assert headers["content-disposition"].endswith(f'-{rid[:8]}.mp4"')
        assert body[4:8] == b"ftyp" and int(headers["content-length"]) == len(body)
        path = tmp_path / "download.mp4"
        path.write_bytes(body)
        pictures = sm.decode_video(path)
        samples, rate = sm.decode_audio(path)
        assert 1.0 <= len(pictures) / 15 <= 3.0 and abs(len(samples) / rate -
                                                         len(pictures) / 15) <= 0.1
        tile = layout.fit(640, 360, layout.grid(2, 1280, 720)[0])  # a's, the caller's
        shown = [sm.read_counter(luma, tile.x, tile.y, tile.w, tile.h) for _, luma in pictures]
        assert shown == sorted(shown) and shown[-1] == FRAMES - 1  # a's pictures, in order
        # b's beep (sent every 50 ms or a little later: sound with short gaps) is heard.
        assert float(np.sqrt(np.mean(samples[int(0.3 * rate):int(0.8 * rate)] ** 2))) > 0.1

        # The other participant too, in the speaker layout; HEAD answers without exporting.
        status, _, body = await http_get(
            running.url, f"/recordings/{rid}.mp4?token={b.token}&layout=speaker")
        assert status == 200 and body[4:8] == b"ftyp"
        status, headers, rest = await http_head(running.url,
                                                f"/recordings/{rid}.mp4?token={b.token}")
        assert (status, headers["content-type"], rest) == (200, "video/mp4", b"")
        status, _, body = await http_get(running.url,
                                         f"/recordings/{rid}.mp4?token={b.token}&layout=mosaic")
        assert (status, body) == (400, b"layout must be one of grid, speaker\n")


async def test_anyone_else_gets_404_and_no_identity(db_dsn: str, db: Pool) -> None:
    async with serving(db_dsn) as running, open_clients(ws_base(running), 3) as (a, b, x):
        rid = await recorded_call(a, b)
        tokens = await count(db, "SELECT count(*) FROM pgcall_tokens")
        unknown = "0f0e0d0c-0b0a-4908-8706-050403020100"
        for path in (f"/recordings/{rid}.mp4?token={x.token}",  # not a participant
                     f"/recordings/{rid}.mp4?token=0f0e0d0c-0000-4000-8000-000000000000",
                     f"/recordings/{rid}.mp4?token=",
                     f"/recordings/{rid}.mp4",
                     f"/recordings/{unknown}.mp4?token={a.token}",
                     f"/recordings/not-an-id.mp4?token={a.token}"):
            status, headers, body = await http_get(running.url, path)
            assert (status, body) == (404, b"not found\n"), path
            assert headers["content-type"].startswith("text/plain")
        assert await count(db, "SELECT count(*) FROM pgcall_tokens") == tokens


async def test_without_pyav_participants_are_told_how_to_install_it(
        db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(db_dsn) as running, open_clients(ws_base(running), 3) as (a, b, x):
        rid = await recorded_call(a, b)
        monkeypatch.setattr(download, "available", lambda: False)
        status, _, body = await http_get(running.url, f"/recordings/{rid}.mp4?token={a.token}")
        assert (status, body) == (501, b"video export needs PyAV and numpy: "
                                       b"pip install 'pgcall[export]'\n")
        status, _, _ = await http_get(running.url, f"/recordings/{rid}.mp4?token={x.token}")
        assert status == 404

