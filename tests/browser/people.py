"""The people of the browser tests: one page each, and what they do on it.

Owns: opening a page in its own browser context (own localStorage, so own identity) with the
camera and microphone allowed, collecting what goes wrong on it (uncaught exceptions, console
errors), and the steps every scenario shares — connect, pick a nickname, find a user, place and
answer a video call, wait for media. Does not own the server, the browser (conftest.py) or what
a scenario checks (the test modules).

The hooks are the frontends' `data-testid` attributes, the same in both, and the page globals
`window.pgcallClient` (RelayClient), `window.pgcallStats` (MediaStats) and `window.pgcallMedia`
(the CallMedia of the active call).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect

UI_TIMEOUT_MS = 15_000  # connect, presence, chat and call signalling all go through PostgreSQL
MEDIA_START_TIMEOUT_MS = 15_000  # getUserMedia, AudioWorklet and the first frames
VIEWPORT = {"width": 1280, "height": 800}


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

    def by_id(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)


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


def connect(person: Person) -> str:
    """Wait until the page has an identity and shows it; returns it."""
    person.page.wait_for_function(
        "() => window.pgcallClient && window.pgcallClient.connected"
        " && typeof window.pgcallClient.identity === 'string'",
        timeout=UI_TIMEOUT_MS)
    identity = person.identity()
    expect(person.by_id("my-identity")).to_contain_text(identity[:8], timeout=UI_TIMEOUT_MS)
    return identity


def set_nickname(person: Person, nickname: str) -> None:
    field = person.by_id("nickname-input")
    expect(field).to_be_enabled(timeout=UI_TIMEOUT_MS)
    field.fill(nickname)
    person.by_id("nickname-save").click()


def user_entry(person: Person, identity: str) -> Locator:
    return person.page.locator(f'li[data-testid="user"][data-identity="{identity}"]')


def meet(alice: Person, bob: Person) -> tuple[str, str]:
    """Both connect, take the nicknames Alice and Bob and see each other by them."""
    a_id, b_id = connect(alice), connect(bob)
    assert a_id != b_id, "two browser contexts must get two identities"
    set_nickname(alice, "Alice")
    set_nickname(bob, "Bob")
    for me, other_id, nick in ((alice, b_id, "Bob"), (bob, a_id, "Alice")):
        expect(user_entry(me, other_id)).to_contain_text(nick, timeout=UI_TIMEOUT_MS)
    return a_id, b_id


def ring(caller: Person, callee: Person, callee_id: str) -> None:
    """The caller places a video call; it rings on the callee's side."""
    button = user_entry(caller, callee_id).get_by_test_id("call-video")
    expect(button).to_be_enabled(timeout=UI_TIMEOUT_MS)
    button.click()
    expect(caller.by_id("outgoing-banner")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(callee.by_id("incoming-dialog")).to_be_visible(timeout=UI_TIMEOUT_MS)


def video_call(caller: Person, callee: Person, callee_id: str) -> None:
    """A video call placed and accepted, with video and audio arriving on both sides."""
    ring(caller, callee, callee_id)
    callee.by_id("accept-call").click()
    for person in (caller, callee):
        expect(person.by_id("call-view")).to_be_visible(timeout=UI_TIMEOUT_MS)
    for person in (caller, callee):
        wait_for_media(person)


def wait_for_media(person: Person) -> None:
    person.page.wait_for_function(
        "() => window.pgcallStats && window.pgcallStats.videoFramesReceived > 0"
        " && window.pgcallStats.audioFramesReceived > 0",
        timeout=MEDIA_START_TIMEOUT_MS)


def wait_for_more_frames(person: Person, kind: str, more: int) -> None:
    """Wait until `person` has received `more` further frames of `kind` ('video' or 'audio')."""
    key = f"{kind}FramesReceived"
    start = person.stats()[key]
    person.page.wait_for_function(f"() => window.pgcallStats.{key} >= {start + more}",
                                  timeout=MEDIA_START_TIMEOUT_MS)


def jpeg(person: Person, width: int, height: int, colour: str) -> bytes:
    """A real JPEG of width x height, made by the page's canvas."""
    data = person.page.evaluate(
        """async ([w, h, colour]) => {
          const c = document.createElement('canvas');
          c.width = w;
          c.height = h;
          const g = c.getContext('2d');
          g.fillStyle = colour;
          g.fillRect(0, 0, w, h);
          g.fillStyle = '#fff';
          g.fillRect(w / 4, h / 4, w / 2, h / 2);
          const blob = await new Promise((done) => c.toBlob(done, 'image/jpeg', 0.8));
          return Array.from(new Uint8Array(await blob.arrayBuffer()));
        }""", [width, height, colour])
    return bytes(data)
