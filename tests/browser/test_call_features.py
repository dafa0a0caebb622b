"""The call page beyond the basic call, in headless Chromium, for both frontends.

Owns: what a person coming from other video-call apps expects of the call page — notices when a
call is declined, cancelled, not answered or ends (with its duration, on both sides); the other
side's "Camera off" instead of a frozen picture; the connection-quality indicator; nicknames kept
for people who left; choosing a camera and a microphone during a call; sharing the screen (sent
at the screen's aspect ratio, the camera back afterwards, also when the browser ends the
sharing); full screen; readable contrast of every call control in each of its states.
Does not own: the server, the browser and its fake devices (conftest.py), the shared steps
(people.py), the basic call and its frame counts (test_call.py).

Chromium's fake devices (conftest.py): two cameras, three microphones, and a 1280x720 screen
that getDisplayMedia returns without a picker.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.people import (
    UI_TIMEOUT_MS,
    Person,
    meet,
    ring,
    user_entry,
    video_call,
    wait_for_more_frames,
)
from tests.conftest import run_sql

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("frontend", ["vanilla", "svelte"], indirect=True)]

ENDED = re.compile(r"Call ended · (\d\d):(\d\d)")
# The configured frame for the screen-sharing test: 4:3, so a 16:9 screen is told apart.
CAMERA_SIZE = (480, 360)
SCREEN_SIZE = (480, 270)  # the fake 1280x720 screen with its longer side within 480
MIN_CONTRAST = 4.5  # WCAG AA for text

# Contrast of an element's text (or icon, drawn in currentColor) against what is behind it: the
# element's and its ancestors' background colours blended down to the first opaque one.
CONTRAST_JS = """
(el) => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) {
      layers.push(c);
      if (c[3] >= 1) break;
    }
  }
  const over = ([r, g, b, a], under) => [r, g, b].map((v, i) => v * a + under[i] * (1 - a));
  let bg = [255, 255, 255];
  for (const layer of layers.reverse()) bg = over(layer, bg);
  const color = getComputedStyle(el).color;
  const fg = over(parse(color), bg);
  const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const background = `rgb(${bg.map(Math.round).join(',')})`;
  return { ratio: (hi + 0.05) / (lo + 0.05), color, background };
}
"""


def notice(person: Person) -> Any:
    return person.by_id("call-notice")


def test_notices_camera_off_quality_and_names(frontend: str, db_dsn: str, alice: Person,
                                              bob: Person, artifacts: Path) -> None:
    _, b_id = meet(alice, bob)
    # The header shows the saved nickname, not only the identity.
    expect(alice.by_id("my-identity")).to_contain_text("Alice", timeout=UI_TIMEOUT_MS)

    # Bob declines: Alice is told, Bob (who chose to) is not.
    ring(alice, bob, b_id)
    bob.by_id("decline-call").click()
    expect(notice(alice)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(notice(alice)).to_contain_text("Declined")
    expect(notice(alice)).to_contain_text("Bob")
    expect(notice(bob)).to_be_hidden()

    # Alice gives up while it rings: Bob missed a call; Alice, who chose to, is told nothing.
    ring(alice, bob, b_id)
    alice.by_id("cancel-call").click()
    expect(notice(bob)).to_contain_text("Missed call", timeout=UI_TIMEOUT_MS)
    expect(notice(bob)).to_contain_text("Alice")
    expect(notice(alice)).to_be_hidden()

    # Nobody answers: pgcall removes a call left ringing for 30 s. Rather than wait, the call is
    # made 40 s old; the server's own clean-up removes it within its 2 s round.
    ring(alice, bob, b_id)
    run_sql(db_dsn, "UPDATE call_sessions SET created_at = now() - interval '40 seconds'")
    expect(notice(alice)).to_contain_text("No answer", timeout=UI_TIMEOUT_MS)
    expect(notice(bob)).to_contain_text("Missed call", timeout=UI_TIMEOUT_MS)

    # Bob answers the next call; both get media and a quality verdict.
    accepted_at = time.monotonic()
    video_call(alice, bob, b_id)
    seen_at = time.monotonic()
    for person in (alice, bob):
        expect(notice(person)).to_be_hidden()  # a new call clears the old notice
        quality = person.by_id("quality")
        expect(quality).to_have_attribute("data-level", re.compile("^(good|fair|poor)$"),
                                          timeout=UI_TIMEOUT_MS)
        level, title = quality.evaluate("el => [el.dataset.level, el.title]")
        print(f"{frontend}/{person.name}: quality {level} ({title})")

    # Bob turns his camera off: Alice sees his avatar and "Camera off", not a frozen picture.
    bob.by_id("toggle-camera").click()
    placeholder = alice.by_id("remote-placeholder")
    expect(placeholder).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(placeholder).to_contain_text("Camera off")
    expect(alice.by_id("remote-video")).to_be_hidden()
    alice.page.screenshot(path=artifacts / f"{frontend}-camera-off.png")
    # ... and his picture again when he turns it back on.
    bob.by_id("toggle-camera").click()
    expect(alice.by_id("remote-video")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(placeholder).to_be_hidden()

    # Alice hangs up: both are told how long the call lasted, the same on both sides.
    hung_up_at = time.monotonic()
    alice.by_id("hangup").click()
    shown = {}
    for person in (alice, bob):
        expect(notice(person)).to_contain_text(ENDED, timeout=UI_TIMEOUT_MS)
        text = notice(person).inner_text()
        match = ENDED.search(text)
        assert match, text
        shown[person.name] = int(match[1]) * 60 + int(match[2])
        expect(notice(person)).to_contain_text("Bob" if person is alice else "Alice")
    told_at = time.monotonic()
    bob.page.screenshot(path=artifacts / f"{frontend}-call-ended.png")
    print(f"{frontend}: durations shown {shown}; the call lasted between "
          f"{hung_up_at - seen_at:.1f} and {told_at - accepted_at:.1f} s")
    for name, secs in shown.items():
        # answered_at lies between the Accept click and the call view showing; the end between
        # the hang-up click and the notice showing (the clock shows whole seconds).
        assert hung_up_at - seen_at - 1 <= secs <= told_at - accepted_at + 1, (name, secs)
    assert abs(shown["alice"] - shown["bob"]) <= 1, shown

    # Bob writes, then leaves: his message keeps his nickname at Alice's.
    bob.by_id("chat-input").fill("bye from Bob")
    bob.by_id("chat-send").click()
    message = alice.by_id("chat-message").filter(has_text="bye from Bob")
    expect(message).to_have_count(1, timeout=UI_TIMEOUT_MS)
    bob.page.context.close()
    expect(user_entry(alice, b_id)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(message.get_by_test_id("chat-author")).to_have_text("Bob")

    assert alice.errors == [], f"{frontend}/alice: errors on the page: {alice.errors}"
    assert bob.errors == [], f"{frontend}/bob: errors on the page: {bob.errors}"


def sent_and_received_size(sender: Person, receiver: Person, size: tuple[int, int]) -> None:
    """Wait until frames of `size` leave the sender and arrive, decoded, at the receiver."""
    w, h = size
    sender.page.wait_for_function(
        f"() => pgcallStats.videoSentWidth === {w} && pgcallStats.videoSentHeight === {h}",
        timeout=UI_TIMEOUT_MS)
    receiver.page.wait_for_function(
        f"() => pgcallStats.videoReceivedWidth === {w} && pgcallStats.videoReceivedHeight === {h}"
        f" && document.getElementById('remote-video').naturalWidth === {w}"
        f" && document.getElementById('remote-video').naturalHeight === {h}",
        timeout=UI_TIMEOUT_MS)


def choose_other_device(person: Person, select_id: str, kind: str) -> str:
    """Pick an entry of a device menu other than the device in use; returns its id."""
    select = person.by_id(select_id)
    values = select.locator("option").evaluate_all("opts => opts.map(o => o.value)")
    in_use = person.page.evaluate(f"pgcallMedia.deviceInUse('{kind}')")
    others = [v for v in values if v not in (in_use, "default")]
    assert others, f"{select_id}: nothing to switch to from {in_use!r} in {values}"
    select.select_option(others[-1])
    person.page.wait_for_function(
        f"() => pgcallMedia.deviceInUse('{kind}') === {json.dumps(others[-1])}",
        timeout=UI_TIMEOUT_MS)
    expect(select).to_have_value(others[-1])
    return others[-1]


def check_contrast(person: Person, testid: str, state: str, failures: list[str]) -> None:
    result = person.by_id(testid).evaluate(CONTRAST_JS)
    if result["ratio"] < MIN_CONTRAST:
        failures.append(f"{testid} {state}: {result['ratio']:.2f}:1 "
                        f"({result['color']} on {result['background']})")


def test_devices_screen_share_fullscreen_and_contrast(frontend: str, db_dsn: str, alice: Person,
                                                      bob: Person, artifacts: Path) -> None:
    w, h = CAMERA_SIZE
    run_sql(db_dsn, f"UPDATE media_settings SET video_width = {w}, video_height = {h}")
    _, b_id = meet(alice, bob)
    for person in (alice, bob):
        person.page.wait_for_function(
            f"() => pgcallClient.settings && pgcallClient.settings.video_width === {w}",
            timeout=UI_TIMEOUT_MS)
    video_call(alice, bob, b_id)
    sent_and_received_size(alice, bob, CAMERA_SIZE)

    # Devices: Chromium's fake cameras and microphones are listed; switching keeps media going,
    # and the choice is remembered.
    alice.by_id("toggle-devices").click()
    expect(alice.by_id("devices-panel")).to_be_visible()
    expect(alice.by_id("camera-select").locator("option")).to_have_count(2, timeout=UI_TIMEOUT_MS)
    expect(alice.by_id("mic-select").locator("option")).not_to_have_count(0)
    alice.page.screenshot(path=artifacts / f"{frontend}-devices.png")
    camera = choose_other_device(alice, "camera-select", "videoinput")
    wait_for_more_frames(bob, "video", 10)
    microphone = choose_other_device(alice, "mic-select", "audioinput")
    wait_for_more_frames(bob, "audio", 10)
    remembered = alice.page.evaluate(
        "[localStorage.getItem('pgcall/camera'), localStorage.getItem('pgcall/microphone')]")
    assert remembered == [camera, microphone]
    alice.by_id("toggle-devices").click()
    expect(alice.by_id("devices-panel")).to_be_hidden()

    # Screen sharing: the screen replaces the camera at the screen's aspect ratio; stopping brings
    # the camera back.
    share = alice.by_id("toggle-screen")
    share.click()
    expect(share).to_have_attribute("aria-pressed", "true", timeout=UI_TIMEOUT_MS)
    sent_and_received_size(alice, bob, SCREEN_SIZE)
    for person in (alice, bob):
        person.page.screenshot(path=artifacts / f"{frontend}-screen-share-{person.name}.png")
    contrast_failures: list[str] = []
    check_contrast(alice, "toggle-screen", "pressed, hovered", contrast_failures)
    share.click()
    expect(share).to_have_attribute("aria-pressed", "false")
    sent_and_received_size(alice, bob, CAMERA_SIZE)
    # The browser's own "Stop sharing" ends the track; the same event, raised here, must bring
    # the camera back too.
    share.click()
    sent_and_received_size(alice, bob, SCREEN_SIZE)
    alice.page.evaluate("pgcallMedia.screenTrack.dispatchEvent(new Event('ended'))")
    expect(share).to_have_attribute("aria-pressed", "false", timeout=UI_TIMEOUT_MS)
    sent_and_received_size(alice, bob, CAMERA_SIZE)

    # Full screen, and back.
    full = bob.by_id("fullscreen")
    full.click()
    bob.page.wait_for_function("() => document.fullscreenElement?.id === 'call-view'",
                               timeout=UI_TIMEOUT_MS)
    expect(full).to_have_attribute("aria-pressed", "true")
    full.click()
    bob.page.wait_for_function("() => document.fullscreenElement === null", timeout=UI_TIMEOUT_MS)
    expect(full).to_have_attribute("aria-pressed", "false")

    # Contrast of every call control, at rest, hovered, and (toggles) pressed with and without
    # the pointer on it. Transitions are switched off so the colours are the final ones.
    alice.page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    controls = ["toggle-mic", "toggle-camera", "toggle-screen", "toggle-devices", "toggle-stats",
                "fullscreen", "hangup"]
    for testid in controls:
        button = alice.by_id(testid)
        alice.page.mouse.move(0, 0)
        check_contrast(alice, testid, "at rest", contrast_failures)
        button.hover()
        check_contrast(alice, testid, "hovered", contrast_failures)
    for testid in ["toggle-mic", "toggle-camera", "toggle-devices", "toggle-stats"]:
        button = alice.by_id(testid)
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")
        check_contrast(alice, testid, "pressed, hovered", contrast_failures)
        alice.page.mouse.move(0, 0)
        check_contrast(alice, testid, "pressed", contrast_failures)
        button.click()
        expect(button).to_have_attribute("aria-pressed", "false")
    assert contrast_failures == [], (
        f"{frontend}: contrast under {MIN_CONTRAST}:1: {contrast_failures}")

    for person in (alice, bob):
        assert person.errors == [], f"{frontend}/{person.name}: errors on the page: {person.errors}"
