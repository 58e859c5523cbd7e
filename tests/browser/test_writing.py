"""In Chromium: register, start a story, write a turn, watch the model's turn stream in,
live in a second browser; script payloads in titles and turns stay text."""

from __future__ import annotations

import itertools
from typing import Any

from playwright.sync_api import expect

XSS = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=1;alert(2)</script>'
_names = itertools.count(1)

# Counts how often the streamed (pending) model turn changes: proof it arrives piece by piece.
WATCH_STREAM = """() => {
  window.__deltas = 0;
  window.__loaded = performance.timeOrigin;
  new MutationObserver(() => {
    if (document.querySelector('.turn-pending .turn-text')?.textContent) window.__deltas += 1;
  }).observe(document.getElementById('turns'),
             {subtree: true, childList: true, characterData: true});
}"""


def register(page: Any, base: str, prefix: str = "writer") -> str:
    username = f"{prefix}{next(_names)}"
    page.goto(f"{base}/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("password123")
    page.get_by_label("Repeat the password").fill("password123")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_test_id("signed-in")).to_contain_text(username)
    return username


def start_story(page: Any, base: str, title: str, opening: str) -> str:
    page.goto(f"{base}/stories/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Opening passage").fill(opening)
    page.get_by_label("Length of the model's turns, in words").fill("18")  # ~24 tokens
    page.get_by_role("button", name="Begin the story").click()
    expect(page.locator("#story-title")).to_have_text(title)
    return page.url


def write_turn(page: Any, text: str) -> None:
    page.get_by_label("Your paragraph").fill(text)
    page.get_by_role("button", name="Add my paragraph").click()


def wait_connected(page: Any) -> None:
    expect(page.locator("#story")).to_have_attribute("data-connected", "true")


def test_write_a_turn_and_watch_the_model_stream_live(live_server, new_page):
    """Does my turn appear without a reload, and the model's turn stream in for me and a reader?"""
    base = live_server.url
    writer = new_page()
    alice = register(writer, base, "alice")
    story_url = start_story(writer, base, "The Lighthouse Letters", "The keeper wrote to the sea.")
    reader = new_page()
    register(reader, base, "reader")
    reader.goto(story_url)
    for page in (writer, reader):
        wait_connected(page)
        page.evaluate(WATCH_STREAM)

    write_turn(writer, "Every evening he climbed the stairs and lit the lamp.")
    mine = writer.locator(".turn-human").last
    expect(mine.locator(".turn-text")).to_have_text(
        "Every evening he climbed the stairs and lit the lamp."
    )
    expect(mine.locator(".credit-who")).to_have_text(alice)
    expect(writer.get_by_label("Your paragraph")).to_have_value("")

    for page in (writer, reader):
        expect(page.locator(".turn-human .turn-text")).to_have_text(
            ["Every evening he climbed the stairs and lit the lamp."]
        )
        answer = page.locator(".turn-ai:not(.turn-pending)")
        expect(answer).to_have_count(1, timeout=90_000)
        assert answer.locator(".turn-text").text_content().strip()
        expect(page.locator(".turn-pending")).to_have_count(0)
        assert page.evaluate("window.__deltas") >= 2, "the model's text did not stream"
        assert page.evaluate("window.__loaded") is not None, "the page reloaded"
    # The writer may ask for another version; the reader (not its writer) may not.
    expect(writer.locator("#regenerate-form")).to_be_visible()
    expect(reader.locator("#regenerate-form")).to_be_hidden()
    expect(reader.locator("#turn-submit")).to_be_enabled()
    assert writer.dialogs == [] and reader.dialogs == []


def test_script_in_title_and_turn_stays_text(live_server, new_page):
    """Are script payloads in a title and a turn shown as text, running nothing, live or loaded?"""
    base = live_server.url
    writer = new_page()
    register(writer, base, "mallory")
    story_url = start_story(writer, base, XSS, "An ordinary opening.")
    reader = new_page()
    reader.goto(story_url)
    wait_connected(reader)
    wait_connected(writer)

    write_turn(writer, XSS)
    for page in (writer, reader):  # rendered by story.js from the POST answer and the stream
        expect(page.locator(".turn-human .turn-text")).to_have_text([XSS])
    reader.reload()
    writer.goto(base + "/")
    expect(writer.locator(".story-title a", has_text="window.__pwned").first).to_have_text(XSS)
    expect(reader.locator("#story-title")).to_have_text(XSS)
    expect(reader.locator(".turn-human .turn-text")).to_have_text([XSS])
    for page in (writer, reader):
        assert page.evaluate("window.__pwned") is None
        assert page.dialogs == []
        assert page.locator("#turns img, #turns script, .story-title img").count() == 0


def test_stale_form_keeps_text_without_js_reload(live_server, new_page):
    """When the model is still writing, is the button disabled and my draft kept?"""
    base = live_server.url
    writer = new_page()
    register(writer, base)
    story_url = start_story(writer, base, "Two Voices", "Rain on the harbour.")
    other = new_page()
    register(other, base)
    other.goto(story_url)
    wait_connected(other)
    other.get_by_label("Your paragraph").fill("My draft, not yet sent.")
    wait_connected(writer)
    write_turn(writer, "The ferry was late again.")
    # While the model answers, nobody can post; the draft stays where it is.
    expect(other.locator(".turn-human .turn-text")).to_have_text(["The ferry was late again."])
    expect(other.get_by_label("Your paragraph")).to_have_value("My draft, not yet sent.")
    expect(other.locator(".turn-ai:not(.turn-pending)")).to_have_count(1, timeout=90_000)
    expect(other.locator("#turn-submit")).to_be_enabled()
    write_turn(other, "My draft, not yet sent.")
    expect(other.locator(".turn-human .turn-text")).to_have_text(
        ["The ferry was late again.", "My draft, not yet sent."]
    )
    expect(other.locator("#turn-error")).to_be_hidden()


def test_a_silent_stream_still_brings_the_models_turn(live_server, new_page):
    """With the live stream blocked (a proxy that never delivers), does the model's answer
    still appear, from the page's check on a stalled pending turn?"""
    base = live_server.url
    writer = new_page()
    register(writer, base)
    story_url = start_story(writer, base, "Quiet Wires", "The line went dead.")
    writer.route("**/events", lambda route: route.abort())
    writer.goto(story_url)
    expect(writer.locator("#story")).not_to_have_attribute("data-connected", "true")
    write_turn(writer, "Nobody answered the telephone.")
    expect(writer.locator(".turn-human .turn-text")).to_have_text(
        ["Nobody answered the telephone."]
    )
    expect(writer.locator(".turn-ai:not(.turn-pending)")).to_have_count(1, timeout=60_000)
    expect(writer.locator(".turn-pending")).to_have_count(0)


def test_a_lost_race_error_goes_once_the_story_moves_on(live_server, new_page):
    """Posting on a page that missed a turn (its stream blocked): is the 409 shown with the
    missed paragraph, and does the red error go once the model has answered and the
    writer may write again (it used to stay, next to an enabled button)?"""
    base = live_server.url
    writer = new_page()
    register(writer, base)
    story_url = start_story(writer, base, "Crossed Lines", "Two letters crossed in the post.")
    other = new_page()
    register(other, base)
    other.route("**/events", lambda route: route.abort())
    other.goto(story_url)
    write_turn(writer, "The first letter arrived on Tuesday.")
    other.get_by_label("Your paragraph").fill("The second letter arrived on Wednesday.")
    # Record what the error says: it may come and go quickly when the model is fast.
    other.evaluate(
        """() => { window.__errors = []; const node = document.getElementById("turn-error");
        new MutationObserver(() => { if (!node.hidden && node.textContent)
          window.__errors.push(node.textContent); }).observe(node,
          { attributes: true, childList: true, characterData: true, subtree: true }); }"""
    )
    other.locator("#turn-submit").click()
    other.wait_for_function("() => window.__errors.length > 0")
    assert other.evaluate("window.__errors")[0].startswith("The story moved on: ")
    expect(other.locator(".turn-human .turn-text")).to_have_text(
        ["The first letter arrived on Tuesday."]
    )
    expect(other.get_by_label("Your paragraph")).to_have_value(
        "The second letter arrived on Wednesday."
    )
    expect(other.locator(".turn-ai:not(.turn-pending)")).to_have_count(1, timeout=90_000)
    expect(other.locator("#turn-submit")).to_be_enabled(timeout=30_000)
    expect(other.locator("#turn-error")).to_be_hidden()
