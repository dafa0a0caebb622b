"""Rooms in headless Chromium, for both frontends (docs/protocol-rooms.md).

Owns: three people in one private video room as they would use it — Alice creates it, Bob opens
its link, Carol is invited from the people list and accepts; each page receives video from both
others and shows it in their tiles; speaker and grid views, pinning, member state on the tiles
(muted, hand raised), room chat apart from the global chat; the layers a member sends follow
`room_layers`; a dropped connection rejoins the room of the URL by itself; the creator removes a
member; a link without the private room's key is refused with the server's error; leaving.
Does not own: the server, the browser and its fake devices (conftest.py), the steps shared with
the call tests (people.py), the room protocol itself (tests/integration/test_rooms.py).

Frame counts come from `window.pgcallStats.videoFramesFrom` / `audioFramesFrom` (per sender).
A room of more than four (thumbnails, the main's full layer) is one page among scripted members
(roombots.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.people import (
    MEDIA_START_TIMEOUT_MS,
    UI_TIMEOUT_MS,
    Person,
    connect,
    jpeg,
    set_nickname,
    user_entry,
)
from tests.browser.roombots import room_bots

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("frontend", ["vanilla", "svelte"], indirect=True)]

FRAMES = 15  # video frames from each other member that show a moving picture
WINDOW_S = 4.0
BLOB_URL = re.compile(r"^blob:")


def tiles(person: Person) -> Locator:
    return person.by_id("room-view").get_by_test_id("room-tile")


def tile_of(person: Person, identity: str) -> Locator:
    return person.page.locator(f'[data-testid="room-tile"][data-identity="{identity}"]')


def frames_from(person: Person) -> dict[str, dict[str, int]]:
    return dict(person.page.evaluate(
        "({video: {...pgcallStats.videoFramesFrom}, audio: {...pgcallStats.audioFramesFrom}})"))


def wait_for_frames_from(person: Person, senders: list[str], more: int,
                         start: dict[str, int] | None = None) -> None:
    """Wait until `person` has `more` further video frames from each of `senders` than now,
    or than `start` (counts read earlier, so that several people's waits run at once)."""
    if start is None:
        start = frames_from(person)["video"]
    want = {s: start.get(s, 0) + more for s in senders}
    person.page.wait_for_function(
        "want => Object.entries(want)"
        ".every(([s, n]) => (pgcallStats.videoFramesFrom[s] ?? 0) >= n)",
        arg=want, timeout=MEDIA_START_TIMEOUT_MS)


def tell_layers(person: Person, room_id: str, full: bool, thumb: bool) -> None:
    """Hand the page a `room_layers` message as if the server had sent it."""
    person.page.evaluate(
        "([room_id, full, thumb]) => pgcallClient.handleControl("
        "{type: 'room_layers', room_id, full, thumb})", [room_id, full, thumb])


def in_room(person: Person, count: int) -> None:
    expect(person.by_id("room-view")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tiles(person)).to_have_count(count, timeout=UI_TIMEOUT_MS)


def test_three_people_in_a_private_room(frontend: str, alice: Person, bob: Person,
                                        carol: Person, artifacts: Path) -> None:
    people = [alice, bob, carol]
    ids = {p.name: connect(p) for p in people}
    for p, nick in zip(people, ("Alice", "Bob", "Carol"), strict=True):
        set_nickname(p, nick)
    for p in people:
        for other, nick in zip(people, ("Alice", "Bob", "Carol"), strict=True):
            if other is not p:
                expect(user_entry(p, ids[other.name])).to_contain_text(nick, timeout=UI_TIMEOUT_MS)
    a_id, b_id, c_id = ids["alice"], ids["bob"], ids["carol"]

    # Alice creates a private video room; the page URL becomes its link (with the key).
    alice.by_id("new-room").click()
    expect(alice.by_id("new-room-dialog")).to_be_visible()
    alice.by_id("room-name-input").fill("Standup")
    alice.by_id("room-private-input").check()
    alice.page.screenshot(path=artifacts / f"{frontend}-room-new.png")
    alice.by_id("create-room").click()
    in_room(alice, 1)
    expect(alice.by_id("room-title")).to_have_text("Standup")
    expect(alice.by_id("copy-room-link")).to_have_attribute("data-link", re.compile(r"[?&]key="),
                                                            timeout=UI_TIMEOUT_MS)
    link = alice.by_id("copy-room-link").get_attribute("data-link")
    assert link and re.search(r"[?&]room=[0-9a-f-]{36}", link), link
    assert alice.page.url == link, "the page URL is the room's link"
    found = re.search(r"room=([0-9a-f-]{36})", link)
    assert found, link
    room_id = found[1]

    # Bob opens the link: his page connects and joins.
    bob.page.goto(link)
    in_room(bob, 2)
    in_room(alice, 2)
    assert connect(bob) == b_id, "the same identity (the token is kept)"
    set_nickname(bob, "Bob")  # a new page's users row starts with the default name
    expect(tile_of(alice, b_id)).to_contain_text("Bob", timeout=UI_TIMEOUT_MS)

    # Alice invites Carol from the people list; Carol accepts the invitation.
    invite = user_entry(alice, c_id).get_by_test_id("invite-to-room")
    expect(invite).to_be_enabled(timeout=UI_TIMEOUT_MS)
    invite.click()
    expect(user_entry(alice, c_id).get_by_test_id("invited")).to_be_visible(timeout=UI_TIMEOUT_MS)
    dialog = carol.by_id("room-invite-dialog")
    expect(dialog).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(dialog).to_contain_text("Standup")
    expect(dialog).to_contain_text("Alice")
    carol.page.screenshot(path=artifacts / f"{frontend}-room-invitation.png")
    carol.by_id("accept-room").click()
    for p in people:
        in_room(p, 3)
    # The invitation let Carol in without the key; the ack gave it to her for her link.
    carol.page.wait_for_function("() => location.search.includes('key=')", timeout=UI_TIMEOUT_MS)
    assert re.search(r"key=", carol.page.url), carol.page.url

    # Media: everyone receives video from both others and shows it in their tiles.
    others = {p.name: [ids[o.name] for o in people if o is not p] for p in people}
    counted = {p.name: frames_from(p)["video"] for p in people}
    for p in people:
        wait_for_frames_from(p, others[p.name], FRAMES, start=counted[p.name])
    start = {p.name: frames_from(p) for p in people}
    t0 = time.monotonic()
    alice.page.wait_for_timeout(WINDOW_S * 1000)  # a measurement window, printed below
    elapsed = time.monotonic() - t0
    for p in people:
        end = frames_from(p)
        for sender in others[p.name]:
            got = {k: end[k].get(sender, 0) - start[p.name][k].get(sender, 0) for k in end}
            print(f"{frontend}/{p.name} from {sender[:8]}: video {got['video'] / elapsed:.1f}/s, "
                  f"audio {got['audio'] / elapsed:.1f}/s")
            assert got["video"] > 0, (
                f"{frontend}/{p.name}: no video from {sender} in {elapsed:.1f} s")
            # Chromium's fake microphone beeps: loud enough to open the silence gate.
            assert got["audio"] > 0, (
                f"{frontend}/{p.name}: no audio from {sender} in {elapsed:.1f} s")
            expect(tile_of(p, sender).get_by_test_id("tile-video")).to_have_attribute(
                "src", BLOB_URL, timeout=UI_TIMEOUT_MS)
            expect(tile_of(p, sender)).to_have_attribute("data-video", "on")
        sent = p.stats()
        print(f"{frontend}/{p.name}: sent {sent['videoFramesSent']} full, "
              f"{sent['thumbFramesSent']} thumbnails, {sent['audioFramesSent']} audio frames, "
              f"{sent['audioFramesSuppressed']} silent frames suppressed")
        assert sent["thumbFramesSent"] == 0, "a room of three sends no thumbnails"
        # ... and is silent between beeps: those frames are not sent.
        assert sent["audioFramesSuppressed"] > 0 and sent["audioFramesSent"] > 0, sent
    alice.page.screenshot(path=artifacts / f"{frontend}-room-speaker.png")

    # Speaker view: one tile large, the others in the strip; grid view: all three tiled.
    main = alice.by_id("room-main").get_by_test_id("room-tile")
    expect(main).to_have_count(1)
    expect(alice.by_id("room-strip").get_by_test_id("room-tile")).to_have_count(2)
    alice.by_id("view-grid").click()
    expect(alice.by_id("room-grid").get_by_test_id("room-tile")).to_have_count(3)
    expect(alice.by_id("room-main").get_by_test_id("room-tile")).to_have_count(0)
    alice.page.screenshot(path=artifacts / f"{frontend}-room-grid.png")
    alice.by_id("view-speaker").click()
    expect(main).to_have_count(1)

    # Pinning: Alice pins Carol; Carol is her main tile, and the others see the pin in the row.
    tile_of(alice, c_id).hover()
    tile_of(alice, c_id).get_by_test_id("pin").click()
    expect(main).to_have_attribute("data-identity", c_id, timeout=UI_TIMEOUT_MS)
    expect(main).to_have_attribute("data-pinned", "true")
    bob.page.wait_for_function(
        f"() => pgcallClient.rooms.members.get('{a_id}')?.pinned === '{c_id}'",
        timeout=UI_TIMEOUT_MS)
    tile_of(alice, c_id).hover()
    tile_of(alice, c_id).get_by_test_id("pin").click()
    expect(main).to_have_attribute("data-pinned", "false", timeout=UI_TIMEOUT_MS)

    # Member state: Carol mutes and raises her hand; the others see it on her tile.
    carol.by_id("room-toggle-mic").click()
    carol.by_id("room-raise-hand").click()
    for p in (alice, bob):
        expect(tile_of(p, c_id)).to_have_attribute("data-mic", "off", timeout=UI_TIMEOUT_MS)
        expect(tile_of(p, c_id)).to_have_attribute("data-hand", "up", timeout=UI_TIMEOUT_MS)
    wait_for_frames_from(alice, [c_id], 3)  # audio sent before the mute has arrived by now
    muted_at = frames_from(alice)["audio"].get(c_id, 0)
    carol.by_id("room-raise-hand").click()
    expect(tile_of(alice, c_id)).to_have_attribute("data-hand", "down", timeout=UI_TIMEOUT_MS)
    wait_for_frames_from(alice, [c_id], 10)
    assert frames_from(alice)["audio"].get(c_id, 0) == muted_at, "a muted member sends no audio"
    carol.by_id("room-toggle-mic").click()
    expect(tile_of(alice, c_id)).to_have_attribute("data-mic", "on", timeout=UI_TIMEOUT_MS)

    # Carol shares her screen: it becomes her sent video and the others see the mark on her tile;
    # the camera comes back when she stops.
    carol.by_id("room-toggle-screen").click()
    expect(carol.by_id("room-toggle-screen")).to_have_attribute("aria-pressed", "true",
                                                                timeout=UI_TIMEOUT_MS)
    expect(tile_of(alice, c_id)).to_have_attribute("data-screen", "on", timeout=UI_TIMEOUT_MS)
    expect(tile_of(carol, c_id).get_by_test_id("tile-preview")).to_have_attribute(
        "data-source", "screen")
    wait_for_frames_from(alice, [c_id], 5)
    carol.by_id("room-toggle-screen").click()
    expect(tile_of(alice, c_id)).to_have_attribute("data-screen", "off", timeout=UI_TIMEOUT_MS)

    # Bob picks his other camera in the room's devices menu; his video keeps coming.
    bob.by_id("room-toggle-devices").click()
    select = bob.by_id("room-camera-select")
    expect(select.locator("option")).to_have_count(2, timeout=UI_TIMEOUT_MS)
    in_use = bob.page.evaluate("pgcallMedia.deviceInUse('videoinput')")
    values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
    others = [v for v in values if v != in_use]
    assert others, f"no other camera than {in_use!r} in {values}"
    other = others[-1]
    select.select_option(other)
    bob.page.wait_for_function(f"() => pgcallMedia.deviceInUse('videoinput') === '{other}'",
                               timeout=UI_TIMEOUT_MS)
    wait_for_frames_from(alice, [b_id], 5)
    bob.by_id("room-toggle-devices").click()

    # Room chat: only in the room's chat, seen by all three.
    bob.by_id("room-chat-input").fill("hello room")
    bob.by_id("room-chat-send").click()
    for p in people:
        expect(p.by_id("room-chat-log").get_by_test_id("room-chat-message").filter(
            has_text="hello room")).to_have_count(1, timeout=UI_TIMEOUT_MS)
        expect(p.by_id("chat-log").get_by_text("hello room")).to_have_count(0)

    # Layers: told to send only the thumbnail (as in a large room), Alice sends 160x90 pictures
    # at half the rate and no full ones; told the full layer again, she sends it again.
    tell_layers(alice, room_id, full=False, thumb=True)
    alice.page.wait_for_function("() => pgcallStats.thumbFramesSent >= 3", timeout=UI_TIMEOUT_MS)
    full_before = alice.stats()["videoFramesSent"]
    thumbs_before = alice.stats()["thumbFramesSent"]
    # A window of at least ten more thumbnails (the rate depends on how busy the machine is,
    # so the window is counted in frames rather than seconds).
    alice.page.wait_for_function(f"() => pgcallStats.thumbFramesSent >= {thumbs_before + 10}",
                                 timeout=UI_TIMEOUT_MS)
    after = alice.stats()
    print(f"{frontend}/alice thumbnails only: {after['thumbFramesSent'] - thumbs_before} "
          f"thumbnails, {after['videoFramesSent'] - full_before} full frames")
    assert after["videoFramesSent"] - full_before <= 1, "full frames sent while told full:false"
    assert (after["thumbSentWidth"], after["thumbSentHeight"]) == (160, 90)
    tell_layers(alice, room_id, full=True, thumb=False)
    wait_for_frames_from(bob, [a_id], 5)

    # A dropped connection: Bob's page reconnects and joins the room of its URL again.
    bob.page.evaluate("() => { window.joined = 0; pgcallClient.addEventListener('ack', "
                      "(e) => e.detail.req_type === 'join_room' && window.joined++); "
                      "pgcallClient._ws.close(4000); }")
    bob.page.wait_for_function("() => window.joined >= 1", timeout=UI_TIMEOUT_MS)
    in_room(bob, 3)
    wait_for_frames_from(alice, [b_id], 5)
    wait_for_frames_from(bob, [a_id, c_id], 5)

    # The creator removes Carol: her room page goes, and so does the room from her URL.
    tile_of(alice, c_id).hover()
    tile_of(alice, c_id).get_by_test_id("remove-member").click()
    expect(carol.by_id("room-view")).to_be_hidden(timeout=UI_TIMEOUT_MS)
    in_room(alice, 2)
    carol.page.wait_for_function("() => !location.search.includes('room=')", timeout=UI_TIMEOUT_MS)
    # A link without the key does not open the private room: the server's error is shown.
    carol.page.goto(link.split("&key=")[0].split("?key=")[0])
    connect(carol)
    expect(carol.by_id("toasts")).to_contain_text("Wrong room key", timeout=UI_TIMEOUT_MS)
    expect(carol.by_id("room-view")).to_be_hidden()

    # Bob leaves; Alice is alone in the room.
    bob.by_id("leave-room").click()
    expect(bob.by_id("room-view")).to_be_hidden(timeout=UI_TIMEOUT_MS)
    in_room(alice, 1)
    assert "room=" not in bob.page.url

    for p in people:
        assert p.errors == [], f"{frontend}/{p.name}: errors on the page: {p.errors}"


def test_voice_room_by_public_link(frontend: str, alice: Person, bob: Person) -> None:
    a_id, b_id = connect(alice), connect(bob)
    alice.by_id("new-room").click()
    alice.by_id("room-name-input").fill("Just voices")
    alice.by_id("room-kind-voice").check()
    alice.by_id("create-room").click()
    in_room(alice, 1)
    expect(alice.by_id("copy-room-link")).to_have_attribute("data-link", re.compile(r"room="),
                                                            timeout=UI_TIMEOUT_MS)
    link = alice.by_id("copy-room-link").get_attribute("data-link")
    assert link and "key=" not in link, f"a public room's link has no key: {link}"
    bob.page.goto(link)
    in_room(bob, 2)
    in_room(alice, 2)
    for me, other in ((alice, b_id), (bob, a_id)):
        # Voices only: avatars, no pictures; audio comes from the other one.
        expect(tile_of(me, other)).to_have_attribute("data-video", "none")
        expect(tile_of(me, other).get_by_test_id("tile-video")).to_have_count(0)
        me.page.wait_for_function(f"() => (pgcallStats.audioFramesFrom['{other}'] ?? 0) >= 10",
                                  timeout=MEDIA_START_TIMEOUT_MS)
    for p in (alice, bob):
        stats = p.stats()
        assert stats["videoFramesSent"] == 0 and stats["thumbFramesSent"] == 0, stats
        assert p.errors == [], f"{frontend}/{p.name}: errors on the page: {p.errors}"


def shown_layer(person: Person, identity: str) -> Locator:
    return tile_of(person, identity).get_by_test_id("tile-video")


def test_large_room_thumbnails_and_the_main_full_layer(frontend: str, alice: Person,
                                                       pgcall_url: str) -> None:
    """Alice's page in a room of six: five scripted members (one of them talking) and her."""
    connect(alice)
    thumb, full = jpeg(alice, 160, 90, "#2a6"), jpeg(alice, 640, 360, "#36c")
    with room_bots(pgcall_url, 5, thumb, full) as bots:
        alice.page.goto(f"{pgcall_url}/?room={bots.room_id}")
        in_room(alice, 6)
        speaker = bots.speaker
        quiet = [b for b in bots.identities if b != speaker]
        # A large room: she is told to send thumbnails, and only her main's full layer reaches
        # her. Her main is the one talking: shown large, from its full layer; the others small,
        # from their thumbnails.
        alice.page.wait_for_function("() => pgcallClient.rooms.layers?.thumb === true",
                                     timeout=UI_TIMEOUT_MS)
        main = alice.by_id("room-main").get_by_test_id("room-tile")
        expect(main).to_have_attribute("data-identity", speaker, timeout=UI_TIMEOUT_MS)
        expect(main).to_have_attribute("data-talking", "true", timeout=UI_TIMEOUT_MS)
        expect(shown_layer(alice, speaker)).to_have_attribute("data-layer", "full",
                                                              timeout=UI_TIMEOUT_MS)
        for b in quiet:
            expect(shown_layer(alice, b)).to_have_attribute("data-layer", "thumb",
                                                            timeout=UI_TIMEOUT_MS)
        wait_for_frames_from(alice, bots.identities, 5)
        # Nobody has Alice as their main: she sends 160x90 thumbnails and no full pictures.
        alice.page.wait_for_function("() => pgcallStats.thumbFramesSent >= 5",
                                     timeout=UI_TIMEOUT_MS)
        before = alice.stats()
        wait_for_frames_from(alice, [speaker], 15)
        after = alice.stats()
        thumbs = after["thumbFramesSent"] - before["thumbFramesSent"]
        fulls = after["videoFramesSent"] - before["videoFramesSent"]
        print(f"{frontend}/alice in a room of six: {thumbs} thumbnails and {fulls} full "
              f"pictures sent while 15 full frames of the speaker arrived")
        assert after["videoFramesSent"] - before["videoFramesSent"] <= 1
        assert after["thumbFramesSent"] > before["thumbFramesSent"]
        assert (after["thumbSentWidth"], after["thumbSentHeight"]) == (160, 90)
        received = frames_from(alice)["video"]
        assert all(received.get(b, 0) > 0 for b in bots.identities), received

        # Alice pins a quiet member: the server asks it for its full layer and sends it to her;
        # it is her main now, and the speaker is a thumbnail in the strip.
        pinned = quiet[2]
        tile_of(alice, pinned).hover()
        tile_of(alice, pinned).get_by_test_id("pin").click()
        expect(main).to_have_attribute("data-identity", pinned, timeout=UI_TIMEOUT_MS)
        expect(shown_layer(alice, pinned)).to_have_attribute("data-layer", "full",
                                                             timeout=UI_TIMEOUT_MS)
        expect(shown_layer(alice, speaker)).to_have_attribute("data-layer", "thumb",
                                                              timeout=UI_TIMEOUT_MS)
        # The grid: everyone tiled, the main from its full layer, the rest from thumbnails.
        alice.by_id("view-grid").click()
        expect(alice.by_id("room-grid").get_by_test_id("room-tile")).to_have_count(6)
        expect(shown_layer(alice, pinned)).to_have_attribute("data-layer", "full",
                                                             timeout=UI_TIMEOUT_MS)
        for b in bots.identities:
            if b != pinned:
                expect(shown_layer(alice, b)).to_have_attribute("data-layer", "thumb",
                                                                timeout=UI_TIMEOUT_MS)
        alice.page.screenshot(path=ARTIFACTS / f"{frontend}-room-of-six.png")
        assert bots.errors == [], bots.errors
    assert alice.errors == [], f"{frontend}/alice: errors on the page: {alice.errors}"
