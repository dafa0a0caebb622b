"""Recording in headless Chromium, for both frontends (docs/recording.md).

Owns: what a person sees of recording — the Record button of a call and of a room, the
recording indicator on every participant's page the moment it starts (and the notice telling
who started it), its end; the Recordings page listing what they took part in, with names,
length, size, the download link, delete for its starter; replaying it in the page (pictures
drawn and audio played while the playhead advances, pause and resume, seeking back and
forward), a room replayed in the speaker view with the talking member large; and the server's
refusal to record someone whose client cannot show the indicator (a client of the original
protocol, played by roombots.py), shown to the person who asked.
Does not own: the server's side of recording (tests/integration/test_recording.py), the
replay's timing decisions (frontends/vanilla/tests/replay.test.mjs), the server, the browser and
its fake devices (conftest.py).

The player is `window.pgcallReplay` (the shared RecordingPlayer): its `position()` is the
playhead (ms into the recording) and `stats` counts what it fetched, drew and played.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.people import (
    MEDIA_START_TIMEOUT_MS,
    UI_TIMEOUT_MS,
    Person,
    connect,
    jpeg,
    meet,
    video_call,
    wait_for_more_frames,
)
from tests.browser.roombots import room_bots
from tests.browser.test_call_features import MIN_CONTRAST, check_contrast

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("frontend", ["vanilla", "svelte"], indirect=True)]

CONSENT = "Not every participant can show the recording indicator"
BLOB_URL = re.compile(r"^blob:")
CLOCK = re.compile(r"^\d+:\d\d / \d+:\d\d$")


def replay(person: Person) -> dict[str, Any]:
    """The player's playhead, state and counters."""
    return dict(person.page.evaluate(
        "() => ({position: pgcallReplay.position(), state: pgcallReplay.state,"
        " duration: pgcallReplay.durationMs, ...pgcallReplay.stats})"))


def wait_replay(person: Person, condition: str, arg: Any = None) -> None:
    """Wait until `condition` (a JS expression over `p`, the player, and `arg`) holds."""
    person.page.wait_for_function(
        f"(arg) => {{ const p = window.pgcallReplay; return Boolean(p) && ({condition}); }}",
        arg=arg, timeout=UI_TIMEOUT_MS)


def recordings(person: Person) -> Locator:
    return person.by_id("recordings-list").get_by_test_id("recording")


def open_recordings(person: Person) -> None:
    person.by_id("open-recordings").click()
    expect(person.by_id("recordings-panel")).to_be_visible(timeout=UI_TIMEOUT_MS)


def seek_to(person: Person, fraction: float) -> None:
    """Click the timeline at `fraction` of its width, as a person jumps there."""
    slider = person.by_id("replay-seek")
    box = slider.bounding_box()
    assert box is not None
    slider.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})


def test_record_a_call_then_replay_it(frontend: str, alice: Person, bob: Person,
                                      pgcall_url: str, artifacts: Path) -> None:
    a_id, b_id = meet(alice, bob)
    video_call(alice, bob, b_id)

    # Alice records: both pages show the indicator at once; Bob is told who started it.
    record = alice.by_id("toggle-recording")
    expect(record).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(alice.by_id("recording-indicator")).to_be_hidden()
    alice.page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    contrast: list[str] = []
    check_contrast(alice, "toggle-recording", "at rest", contrast)
    record.hover()
    check_contrast(alice, "toggle-recording", "hovered", contrast)
    record.click()
    for person in (alice, bob):
        indicator = person.by_id("recording-indicator")
        expect(indicator).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(indicator).to_contain_text("Recording")
    expect(record).to_have_attribute("aria-pressed", "true")
    check_contrast(alice, "toggle-recording", "pressed, hovered", contrast)
    alice.page.mouse.move(0, 0)
    check_contrast(alice, "toggle-recording", "pressed", contrast)
    check_contrast(alice, "recording-indicator", "shown", contrast)
    assert contrast == [], f"{frontend}: contrast under {MIN_CONTRAST}:1: {contrast}"
    notice = bob.by_id("call-notice")
    expect(notice).to_contain_text("Recording started", timeout=UI_TIMEOUT_MS)
    expect(notice).to_contain_text("Alice")
    expect(bob.by_id("toggle-recording")).to_have_attribute("aria-pressed", "true")
    bob.page.screenshot(path=artifacts / f"{frontend}-recording-call.png")

    # A few seconds of the call are recorded; then Bob stops it, and Alice is told.
    wait_for_more_frames(bob, "video", 40)
    wait_for_more_frames(alice, "audio", 40)
    bob.by_id("toggle-recording").click()
    for person in (alice, bob):
        expect(person.by_id("recording-indicator")).to_be_hidden(timeout=UI_TIMEOUT_MS)
    expect(alice.by_id("call-notice")).to_contain_text("Recording stopped", timeout=UI_TIMEOUT_MS)
    alice.by_id("hangup").click()
    expect(alice.by_id("call-view")).to_be_hidden(timeout=UI_TIMEOUT_MS)

    # Bob's list: the call, with both names, its length and size; only its starter deletes it.
    open_recordings(bob)
    expect(recordings(bob)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    row = recordings(bob).first
    expect(row.get_by_test_id("recording-kind")).to_have_text("Call")
    expect(row.get_by_test_id("recording-people")).to_have_text("Alice, you")
    expect(row.get_by_test_id("recording-duration")).to_have_text(re.compile(r"^0:0[2-9]|^0:[1-5]\d"))
    expect(row.get_by_test_id("delete-recording")).to_have_count(0)
    recording_id = row.get_attribute("data-recording-id")
    assert recording_id and re.fullmatch(r"[0-9a-f-]{36}", recording_id), recording_id
    token = bob.page.evaluate("localStorage.getItem('pgcall/token')")
    query = urllib.parse.urlencode({"token": token})
    expect(row.get_by_test_id("download-recording")).to_have_attribute(
        "href", f"{pgcall_url}/recordings/{recording_id}.mp4?{query}")

    # Alice plays it: the playhead advances while both pictures are drawn and audio plays.
    open_recordings(alice)
    row = recordings(alice).first
    expect(row.get_by_test_id("recording-people")).to_have_text("you, Bob", timeout=UI_TIMEOUT_MS)
    expect(row.get_by_test_id("delete-recording")).to_be_visible()
    row.get_by_test_id("play-recording").click()
    player = alice.by_id("replay")
    expect(player).to_be_visible()
    wait_replay(alice, "p.position() > 1200 && p.stats.videoFramesShown >= 10"
                " && p.stats.audioFramesPlayed >= 10 && p.stats.peakLevel > 0.001")
    tiles = player.get_by_test_id("replay-tile")
    expect(tiles).to_have_count(2)
    for tile in (tiles.nth(0), tiles.nth(1)):
        expect(tile).to_have_attribute("data-video", "on", timeout=UI_TIMEOUT_MS)
        expect(tile.get_by_test_id("replay-video")).to_have_attribute("src", BLOB_URL)
    # Read at once: the tiles swap places whenever the other one speaks.
    shown = tiles.evaluate_all("ts => ts.map((t) => t.dataset.identity)")
    assert sorted(shown) == sorted([a_id, b_id]), shown
    expect(alice.by_id("replay-main").get_by_test_id("replay-tile")).to_have_count(1)
    expect(alice.by_id("replay-time")).to_have_text(CLOCK)
    now = replay(alice)
    print(f"{frontend}: replay at {now['position']:.0f} of {now['duration']} ms: "
          f"{now['videoFramesShown']} pictures, {now['audioFramesPlayed']} audio frames, "
          f"peak level {now['peakLevel']:.3f}, {now['chunks']} chunks from {now['requests']}")
    # The picture on screen is the one of the playhead (15 frames/s: a new one every ~70 ms).
    assert abs(now["position"] - now["lastShownT"]) < 1000, now
    alice.page.screenshot(path=artifacts / f"{frontend}-replay.png")

    # Pause: the playhead stops, nothing more is drawn or played; resume goes on from there.
    alice.by_id("replay-play").click()
    expect(player).to_have_attribute("data-state", "paused", timeout=UI_TIMEOUT_MS)
    paused = replay(alice)
    alice.page.wait_for_timeout(600)  # a stretch in which a playing replay would move on
    still = replay(alice)
    assert still["position"] == paused["position"], (paused, still)
    assert still["videoFramesShown"] == paused["videoFramesShown"], (paused, still)
    assert still["audioFramesPlayed"] == paused["audioFramesPlayed"], (paused, still)
    alice.by_id("replay-play").click()
    alice.page.wait_for_function(
        "([pos, shown]) => pgcallReplay.position() > pos + 300"
        " && pgcallReplay.stats.videoFramesShown > shown",
        arg=[paused["position"], still["videoFramesShown"]], timeout=UI_TIMEOUT_MS)

    # Seek back to the start: the playhead jumps back and the pictures are those from there.
    before = replay(alice)
    seek_to(alice, 0.02)
    wait_replay(alice, "p.position() < arg - 500", before["position"])
    alice.page.wait_for_function(
        "([pos, shown]) => pgcallReplay.stats.videoFramesShown > shown"
        " && pgcallReplay.stats.lastShownT < pos - 500",
        arg=[before["position"], before["videoFramesShown"]], timeout=UI_TIMEOUT_MS)
    # ... and forward, to three quarters: what is shown comes from after that point.
    duration = replay(alice)["duration"]
    target = 0.75 * duration
    shown = replay(alice)["videoFramesShown"]
    seek_to(alice, 0.8)
    alice.page.wait_for_function(
        "([target, shown]) => pgcallReplay.position() >= target"
        " && pgcallReplay.stats.videoFramesShown > shown"
        " && pgcallReplay.stats.lastShownT >= target",
        arg=[target, shown], timeout=UI_TIMEOUT_MS)
    # It plays to the end and stops there.
    expect(player).to_have_attribute("data-state", "ended", timeout=UI_TIMEOUT_MS)
    assert replay(alice)["position"] == duration

    # Alice deletes it (two clicks: Delete, then confirm); it goes from her list.
    alice.by_id("replay-close").click()
    expect(player).to_be_hidden()
    delete = recordings(alice).first.get_by_test_id("delete-recording")
    delete.click()
    expect(delete).to_have_text(re.compile("delete", re.I))
    recordings(alice).first.get_by_test_id("delete-recording").click()
    expect(recordings(alice)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(alice.by_id("recordings-empty")).to_be_visible()
    bob.by_id("recordings-refresh").click()
    expect(recordings(bob)).to_have_count(0, timeout=UI_TIMEOUT_MS)

    for person in (alice, bob):
        assert person.errors == [], f"{frontend}/{person.name}: errors on the page: {person.errors}"


def test_recording_refused_when_someone_cannot_show_the_indicator(frontend: str, alice: Person,
                                                                    pgcall_url: str) -> None:
    """A member whose client never said `hello` (the original protocol's): no recording."""
    connect(alice)
    thumb, full = jpeg(alice, 160, 90, "#2a6"), jpeg(alice, 640, 360, "#36c")
    with room_bots(pgcall_url, 1, thumb, full) as bots:
        alice.page.goto(f"{pgcall_url}/?room={bots.room_id}")
        expect(alice.by_id("room-view").get_by_test_id("room-tile")).to_have_count(
            2, timeout=UI_TIMEOUT_MS)
        record = alice.by_id("room-toggle-recording")
        expect(record).to_be_enabled(timeout=UI_TIMEOUT_MS)
        record.click()
        expect(alice.by_id("toasts")).to_contain_text(CONSENT, timeout=UI_TIMEOUT_MS)
        expect(record).to_be_enabled(timeout=UI_TIMEOUT_MS)
        expect(record).to_have_attribute("aria-pressed", "false")
        expect(alice.by_id("room-recording-indicator")).to_be_hidden()
        assert bots.errors == [], bots.errors
    assert alice.errors == [], f"{frontend}/alice: errors on the page: {alice.errors}"


def test_a_recorded_room_replays_in_the_speaker_view(frontend: str, alice: Person,
                                                      pgcall_url: str, artifacts: Path) -> None:
    """Alice and two scripted members who show the indicator; the second one talks."""
    connect(alice)
    thumb, full = jpeg(alice, 160, 90, "#2a6"), jpeg(alice, 640, 360, "#36c")
    with room_bots(pgcall_url, 2, thumb, full, hello=True) as bots:
        alice.page.goto(f"{pgcall_url}/?room={bots.room_id}")
        expect(alice.by_id("room-view").get_by_test_id("room-tile")).to_have_count(
            3, timeout=UI_TIMEOUT_MS)
        alice.page.wait_for_function(
            "ids => ids.every((id) => (pgcallStats.videoFramesFrom[id] ?? 0) >= 5)",
            arg=bots.identities, timeout=MEDIA_START_TIMEOUT_MS)
        alice.by_id("room-toggle-recording").click()
        expect(alice.by_id("room-recording-indicator")).to_be_visible(timeout=UI_TIMEOUT_MS)
        start = dict(alice.page.evaluate("({...pgcallStats.videoFramesFrom})"))
        alice.page.wait_for_function(
            "([ids, start]) => ids.every((id) =>"
            " pgcallStats.videoFramesFrom[id] >= start[id] + 30)",
            arg=[bots.identities, start], timeout=MEDIA_START_TIMEOUT_MS)
        alice.by_id("room-toggle-recording").click()
        expect(alice.by_id("room-recording-indicator")).to_be_hidden(timeout=UI_TIMEOUT_MS)

        open_recordings(alice)
        row = recordings(alice).first
        expect(row.get_by_test_id("recording-kind")).to_have_text("Room", timeout=UI_TIMEOUT_MS)
        expect(row.get_by_test_id("recording-people")).to_contain_text("you")
        row.get_by_test_id("play-recording").click()
        wait_replay(alice, "p.position() > 1000 && p.stats.videoFramesShown >= 10")
        # As live: the one talking large, the others in the strip, every picture arriving.
        main = alice.by_id("replay-main").get_by_test_id("replay-tile")
        expect(main).to_have_attribute("data-identity", bots.speaker, timeout=UI_TIMEOUT_MS)
        expect(main).to_have_attribute("data-talking", "true")
        expect(main.get_by_test_id("replay-video")).to_have_attribute("data-layer", "full")
        strip = alice.by_id("replay-strip").get_by_test_id("replay-tile")
        expect(strip).to_have_count(2)
        ids = set(strip.evaluate_all("ts => ts.map((t) => t.dataset.identity)"))
        assert ids == {alice.identity(), *bots.identities} - {bots.speaker}, ids
        for i in range(2):
            expect(strip.nth(i).get_by_test_id("replay-video")).to_have_attribute(
                "src", BLOB_URL, timeout=UI_TIMEOUT_MS)
        alice.page.screenshot(path=artifacts / f"{frontend}-replay-room.png")
        assert bots.errors == [], bots.errors
    assert alice.errors == [], f"{frontend}/alice: errors on the page: {alice.errors}"
