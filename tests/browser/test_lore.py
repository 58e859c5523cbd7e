"""In Chromium: the owner writes the story's memory, the model answers a turn, and
"What the model saw" on that turn shows the memory in the prompt."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_writing import register, start_story, wait_connected, write_turn


def test_what_the_model_saw_shows_the_memory(live_server, new_page):
    """Does an AI turn's "What the model saw" page show the memory the owner wrote?"""
    base = live_server.url
    page = new_page()
    register(page, base, "keeper")
    story_url = start_story(page, base, "The Keeper's Memory", "The keeper wrote to the sea.")
    page.get_by_test_id("story-memory").locator("summary").click()
    page.get_by_test_id("memory-link").click()
    page.get_by_label("Memory", exact=True).fill("Mira keeps the light and fears the dark.")
    page.get_by_role("button", name="Save the memory and note").click()
    expect(page.get_by_label("Memory", exact=True)).to_have_value(
        "Mira keeps the light and fears the dark."
    )

    page.goto(story_url)
    expect(page.get_by_test_id("story-memory")).to_contain_text("Mira keeps the light")
    wait_connected(page)
    write_turn(page, "Every evening she climbed the stairs and lit the lamp.")
    answer = page.locator(".turn-ai:not(.turn-pending)")
    expect(answer).to_have_count(1, timeout=90_000)
    answer.get_by_test_id("context-link").click()

    expect(page.get_by_test_id("context-page")).to_be_visible()
    memory = page.locator(".context-part[data-kind='memory']")
    expect(memory).to_contain_text("Mira keeps the light and fears the dark.")
    expect(page.locator(".context-part[data-kind='turn']").last).to_contain_text(
        "Every evening she climbed the stairs and lit the lamp."
    )
    assert page.dialogs == []
