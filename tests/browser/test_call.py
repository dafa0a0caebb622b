"""End to end in headless Chromium: two people meet, chat and hold a video call through pgcall.

Owns: the acceptance scenario of a frontend as a person uses it — connect, pick nicknames,
see each other, chat, place and accept a video call, receive at least 12 video frames per
second and some audio both ways, hang up — for each frontend pgcall serves.
Does not own: the server process, the browser or the fake devices (conftest.py).

Both pages live in separate browser contexts, so each has its own localStorage and therefore
its own identity. Chromium's fake camera sends a moving test pattern and its fake microphone a
beep, so both video and audio frames flow without hardware.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect

pytestmark = pytest.mark.browser

UI_TIMEOUT_MS = 15_000  # connect, presence, chat and call signalling all go through PostgreSQL
MEDIA_START_TIMEOUT_MS = 15_000  # getUserMedia, AudioWorklet and the first frames
WINDOW_S = 5.0
MIN_VIDEO_FRAMES = 60  # 12 fps over the window: the acceptance number
VIEWPORT = {"width": 1280, "height": 800}
BLOB_URL = re.compile(r"^blob:")


@attrs.frozen
class Person:
    """One page and what went wrong on it (uncaught exceptions, console errors)."""

    name: str
    page: Page
    errors: list[str] = attrs.field(factory=list)

    def identity(self) -> str:
        return str(self.page.evaluate("window.pgcallClient.identity"))

    def stats(self) -> dict[str, float]:
        return dict(self.page.evaluate("({...window.pgcallStats})"))


def open_person(browser: Browser, url: str, name: str) -> Iterator[Person]:
    context = browser.new_context(viewport=VIEWPORT,
                                  permissions=["camera", "microphone"])
    try:
        page = context.new_page()
        person = Person(name, page)
        page.on("pageerror", lambda exc: person.errors.append(f"uncaught: {exc}"))

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                person.errors.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.goto(url + "/")
        yield person
    finally:
        context.close()


@pytest.fixture
def alice(browser: Browser, pgcall_url: str) -> Iterator[Person]:
    yield from open_person(browser, pgcall_url, "alice")


@pytest.fixture
def bob(browser: Browser, pgcall_url: str) -> Iterator[Person]:
    yield from open_person(browser, pgcall_url, "bob")


def connect(person: Person) -> str:
    """Wait until the page has an identity and shows it; returns it."""
    person.page.wait_for_function(
        "() => window.pgcallClient && window.pgcallClient.connected"
        " && typeof window.pgcallClient.identity === 'string'",
        timeout=UI_TIMEOUT_MS)
    identity = person.identity()
    expect(person.page.get_by_test_id("my-identity")).to_contain_text(identity[:8],
                                                                      timeout=UI_TIMEOUT_MS)
    return identity


def set_nickname(person: Person, nickname: str) -> None:
    page = person.page
    field = page.get_by_test_id("nickname-input")
    expect(field).to_be_enabled(timeout=UI_TIMEOUT_MS)
    field.fill(nickname)
    page.get_by_test_id("nickname-save").click()


def user_entry(person: Person, identity: str) -> Locator:
    return person.page.locator(f'li[data-testid="user"][data-identity="{identity}"]')


def wait_for_media(person: Person) -> None:
    person.page.wait_for_function(
        "() => window.pgcallStats && window.pgcallStats.videoFramesReceived > 0"
        " && window.pgcallStats.audioFramesReceived > 0",
        timeout=MEDIA_START_TIMEOUT_MS)


def measure_window(people: list[Person]) -> dict[str, tuple[float, dict, dict]]:
    """Elapsed seconds and the counters of every page at the start and end of a WINDOW_S window.

    This wait is the measurement itself (a rate over a fixed time), not a synchronisation.
    """
    start = {p.name: p.stats() for p in people}
    t0 = time.monotonic()
    # Let WINDOW_S pass in the browser, not with a bare sleep, so the event loop keeps running.
    people[0].page.wait_for_timeout(WINDOW_S * 1000)
    end = {p.name: p.stats() for p in people}
    elapsed = time.monotonic() - t0
    return {p.name: (elapsed, start[p.name], end[p.name]) for p in people}


def test_two_people_chat_and_video_call(frontend: str, alice: Person, bob: Person,
                                        artifacts: Path) -> None:
    a_id, b_id = connect(alice), connect(bob)
    assert a_id != b_id, "two browser contexts must get two identities"

    set_nickname(alice, "Alice")
    set_nickname(bob, "Bob")
    for me, other_id, nick in ((alice, b_id, "Bob"), (bob, a_id, "Alice")):
        expect(user_entry(me, other_id)).to_contain_text(nick, timeout=UI_TIMEOUT_MS)

    # Chat: A writes, both see it.
    text = f"hello from Alice {uuid.uuid4().hex[:8]}"
    alice.page.get_by_test_id("chat-input").fill(text)
    alice.page.get_by_test_id("chat-send").click()
    for person in (alice, bob):
        expect(person.page.get_by_test_id("chat-message").filter(has_text=text)).to_have_count(
            1, timeout=UI_TIMEOUT_MS)

    # A places a video call; B accepts it.
    call_button = user_entry(alice, b_id).get_by_test_id("call-video")
    expect(call_button).to_be_enabled(timeout=UI_TIMEOUT_MS)
    call_button.click()
    expect(alice.page.get_by_test_id("outgoing-banner")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(bob.page.get_by_test_id("incoming-dialog")).to_be_visible(timeout=UI_TIMEOUT_MS)
    bob.page.get_by_test_id("accept-call").click()
    for person in (alice, bob):
        expect(person.page.get_by_test_id("call-view")).to_be_visible(timeout=UI_TIMEOUT_MS)

    # Media: once frames arrive at all, both directions must sustain the acceptance rate.
    for person in (alice, bob):
        wait_for_media(person)
    results = measure_window([alice, bob])
    for person, peer in ((alice, bob), (bob, alice)):
        elapsed, start, end = results[person.name]
        _, peer_start, peer_end = results[peer.name]
        video = end["videoFramesReceived"] - start["videoFramesReceived"]
        audio = end["audioFramesReceived"] - start["audioFramesReceived"]
        peer_sent = peer_end["videoFramesSent"] - peer_start["videoFramesSent"]
        print(f"{frontend}/{person.name}: {video} video, {audio} audio frames received in "
              f"{elapsed:.2f} s; the peer sent {peer_sent} video frames")
        assert video >= MIN_VIDEO_FRAMES, (
            f"{frontend}/{person.name}: {video} video frames received in {elapsed:.1f} s, "
            f"want >= {MIN_VIDEO_FRAMES}; the peer sent {peer_sent} (stats {end}, peer {peer_end})")
        assert audio > 0, f"{frontend}/{person.name}: no audio frames in {elapsed:.1f} s: {end}"
    for person in (alice, bob):
        # The newest received JPEG is on screen.
        expect(person.page.locator("#remote-video")).to_have_attribute("src", BLOB_URL)

    alice.page.screenshot(path=artifacts / f"{frontend}-call-a.png")
    bob.page.screenshot(path=artifacts / f"{frontend}-call-b.png")

    # A hangs up; both leave the call view.
    alice.page.get_by_test_id("hangup").click()
    for person in (alice, bob):
        expect(person.page.get_by_test_id("call-view")).to_be_hidden(timeout=UI_TIMEOUT_MS)
    frames_after = bob.stats()["videoFramesReceived"]
    expect(user_entry(alice, b_id).get_by_test_id("call-video")).to_be_enabled(
        timeout=UI_TIMEOUT_MS)
    assert bob.stats()["videoFramesReceived"] == frames_after, "video kept arriving after hangup"

    for person in (alice, bob):
        assert person.errors == [], f"{frontend}/{person.name}: errors on the page: {person.errors}"

