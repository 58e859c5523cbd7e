"""In Chromium: a story asking for three candidates per model turn. They stream side by
side, the writer picks one with "Choose this" (a reader sees them but has no button),
the chosen one becomes the model's turn, and the writer can switch to an alternate."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_writing import register, start_story, wait_connected, write_turn


def ask_for_candidates(page, story_url: str, count: int) -> None:  # noqa: ANN001
    page.goto(f"{story_url}/settings")
    page.locator(f'input[name="candidates"][value="{count}"]').check()
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator(f'input[name="candidates"][value="{count}"]')).to_be_checked()
    page.goto(story_url)


def offered_candidates(page, base: str) -> list[dict]:  # noqa: ANN001
    """The candidates the waiting job offers, read over REST with the page's session."""
    job_id = page.locator("#candidates").get_attribute("data-job-id")
    expect(page.locator("#candidates .candidates-note")).not_to_be_empty()
    response = page.request.get(f"{base}/api/v1/jobs/{job_id}")
    assert response.ok, response.status
    job = response.json()
    assert job["status"] == "choosing", job["status"]
    return job["candidates"]


def test_the_writer_picks_one_of_three_candidates(live_server, new_page):
    """Do three candidates appear side by side, and does "Choose this" make one the turn?"""
    base = live_server.url
    writer = new_page()
    register(writer, base, "chooser")
    story_url = start_story(writer, base, "Three Ways", "The ferry left without her.")
    ask_for_candidates(writer, story_url, 3)
    reader = new_page()
    register(reader, base, "onlooker")
    reader.goto(story_url)
    for page in (writer, reader):
        wait_connected(page)

    write_turn(writer, "She waited on the pier until the lights came on.")
    for page in (writer, reader):
        expect(page.locator("#candidates .candidate")).to_have_count(3, timeout=90_000)
    # The random test model may write a candidate that the cleanup leaves empty (or the
    # filter holds): that one is never offered. Every candidate the job offers gets a
    # button, and a choice needs at least two of them.
    offered = offered_candidates(writer, base)
    assert len(offered) >= 2
    choose = writer.locator("#candidates").get_by_role("button", name="Choose this")
    expect(choose).to_have_count(len(offered))
    expect(writer.locator("#candidates .candidate")).to_have_count(len(offered))
    expect(reader.locator("#candidates button")).to_have_count(0)
    expect(writer.locator("#turn-submit")).to_be_disabled()
    second = writer.locator("#candidates .candidate").nth(1).locator(".turn-text")
    picked = second.text_content()
    assert picked.strip()

    choose.nth(1).click()
    for page in (writer, reader):
        answer = page.locator(".turn-ai:not(.turn-pending) .turn-text")
        expect(answer).to_have_count(1)
        expect(answer).to_have_text(picked.strip())
        expect(page.locator("#candidates")).to_have_count(0)
        expect(page.locator("#alternates summary")).to_contain_text(str(len(offered)))

    # The writer switches the answer to another alternate; the reader sees the new text.
    writer.locator("#alternates summary").click()
    use = writer.locator("#alternates").get_by_role("button", name="Use this one")
    expect(use).to_have_count(len(offered) - 1)
    expect(reader.locator("#alternates button")).to_have_count(0)
    other = writer.locator("#alternates li:not(.current) .turn-text").first.text_content()
    use.first.click()
    for page in (writer, reader):
        expect(page.locator(".turn-ai .turn-text")).to_have_text(other.strip())
    assert writer.dialogs == [] and reader.dialogs == []
