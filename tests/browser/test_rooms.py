"""In Chromium: an owner makes a story private and invited-only, invites a writer, who
joins through the link and writes; the owner's bell counts each of it live."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_writing import register, start_story, wait_connected, write_turn


def test_invite_join_write_and_the_bell_updates_live(live_server, new_page):
    """Can an invited writer join a private story through its link and write in it,
    while an outsider gets a 404, and does the owner's bell count it without a reload?"""
    base = live_server.url
    owner = new_page()
    register(owner, base, "owner")
    story_url = start_story(owner, base, "The Closed Room", "Nobody had opened the door in years.")
    owner.get_by_role("link", name="Settings").click()
    owner.get_by_label("Private — only its participants (and moderators) may read it").check()
    owner.get_by_label("Only those invited").check()
    owner.get_by_role("button", name="Save the settings").click()
    expect(owner.locator(".flash-success")).to_contain_text("Settings saved")

    owner.goto(story_url)
    owner.get_by_role("link", name="Invitations and participants").click()
    owner.get_by_label("How many people may use it (empty: any number)").fill("1")
    owner.get_by_role("button", name="Make an invitation link").click()
    link = owner.locator(".invite-link").first.input_value()
    assert "/invite/" in link

    outsider = new_page()
    register(outsider, base, "outsider")
    assert outsider.goto(story_url).status == 404

    owner.goto(story_url)  # the owner waits on the story page, bell at zero
    wait_connected(owner)
    bell = owner.get_by_test_id("bell-count")
    expect(bell).to_be_hidden()

    guest = new_page()
    register(guest, base, "guest")
    guest.goto(link)
    expect(guest.get_by_role("heading", level=1)).to_contain_text("The Closed Room")
    guest.get_by_role("button", name="Join this story").click()
    expect(guest.locator("#story-title")).to_have_text("The Closed Room")
    expect(owner.get_by_test_id("bell-count")).to_have_text("1")  # "your invitation was used"

    wait_connected(guest)
    write_turn(guest, "The guest turned the handle slowly.")
    expect(guest.locator(".turn-human").last).to_contain_text("turned the handle")
    expect(owner.get_by_test_id("bell-count")).to_have_text("2")  # "continued your story"
    expect(owner.locator(".turn-human").last).to_contain_text("turned the handle")

    outsider.goto(link)  # single use: taken
    expect(outsider.locator(".flash-error")).to_contain_text("used up")
    expect(outsider.get_by_role("button", name="Join this story")).to_have_count(0)
