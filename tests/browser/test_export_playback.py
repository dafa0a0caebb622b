"""An exported recording plays in a browser: headless Chromium loads the MP4 from a test HTTP
server into a ``<video>``, decodes its pictures and its sound, and plays it to ``ended``
without an ``error`` (docs/recording.md "Export"). Both layouts."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import Browser

from pgcall.db.recordings import RecordingStore
from pgcall.pg.pool import open_pool
from pgcall.recording import job
from pgcall.recording.export import ExportOptions
from tests.integration.test_export import DURATION_MS, A, B, call_frames, store_recording

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<video id="v" src="call.mp4" playsinline></video>
<script>
  const v = document.getElementById("v");
  window.result = {};
  v.addEventListener("loadedmetadata", () => Object.assign(window.result, {
    duration: v.duration, width: v.videoWidth, height: v.videoHeight}));
  v.addEventListener("error", () => {
    window.result.error = v.error ? `${v.error.code} ${v.error.message}` : "error"; });
  v.addEventListener("ended", () => Object.assign(window.result, {
    ended: true, frames: v.getVideoPlaybackQuality().totalVideoFrames,
    audioBytes: v.webkitAudioDecodedByteCount, videoBytes: v.webkitVideoDecodedByteCount}));
  v.playbackRate = 4;
  v.play().catch((e) => { window.result.error = String(e); });
</script>
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on a free loopback port serving ``tmp_path``: (its URL, the folder)."""
    (tmp_path / "index.html").write_text(PAGE)
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def export_call(dsn: str, path: Path, layout: str) -> None:
    async def go() -> None:
        async with open_pool(dsn, 2) as db:
            rid = await store_recording(db, [A, B], DURATION_MS, call_frames()[0])
            store = RecordingStore(db, 0)
            rec = await job.find(store, rid, None)
            assert rec is not None
            await job.export(store, rec, path, ExportOptions(layout=layout))

    trio.run(go)


@pytest.mark.parametrize("layout", ["grid", "speaker"])
def test_an_export_plays_to_the_end_in_chromium(browser: Browser, db_dsn: str,
                                                site: tuple[str, Path], layout: str) -> None:
    url, folder = site
    export_call(db_dsn, folder / "call.mp4", layout)
    page = browser.new_page()
    try:
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.result.ended || window.result.error", timeout=30_000)
        result = page.evaluate("window.result")
    finally:
        page.close()
    print(result)
    assert "error" not in result, result
    assert result["ended"] is True
    assert abs(result["duration"] - DURATION_MS / 1000) <= 0.1
    assert (result["width"], result["height"]) == (1280, 720)
    assert result["frames"] > 0 and result["videoBytes"] > 0 and result["audioBytes"] > 0
