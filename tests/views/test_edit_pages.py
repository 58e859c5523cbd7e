"""Edit, withdraw, undo and chapters in the browser (app/stories/edit_views.py), on both
databases: the buttons appear exactly when the action is allowed, and each form does
what the API does."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import answer


def _paragraph(app: Any, factory: Any, browser: Any) -> tuple[int, int]:
    """alice, signed in, her story and her first paragraph (answer pending): (sid, job)."""
    alice = factory.user("alice")
    browser.login("alice")
    sid = factory.story(alice)
    response = browser.client.post(
        f"/stories/{sid}/turns",
        data={"text": "The lamp went out.", "expected_position": "0"},
        headers={"Accept": "application/json"},
    )
    return sid, response.get_json()["job"]["id"]


def test_edit_and_withdraw_buttons_follow_the_rules(app, factory, browser):
    """Are Edit and Withdraw on my paragraph while the answer is pending, and gone after?"""
    sid, job = _paragraph(app, factory, browser)
    page = browser.client.get(f"/stories/{sid}").get_data(True)
    assert 'data-testid="edit-turn"' in page and 'data-testid="withdraw-turn"' in page
    state = browser.client.get(f"/stories/{sid}/state.json").get_json()
    assert state["editable_position"] == 1
    answer(app, job)
    page = browser.client.get(f"/stories/{sid}").get_data(True)
    assert 'data-testid="edit-turn"' not in page
    assert browser.client.get(f"/stories/{sid}/state.json").get_json()["editable_position"] is None


def test_edit_form_replaces_the_paragraph(app, factory, browser):
    """Does the edit form show my text and, posted, replace the paragraph?"""
    sid, _ = _paragraph(app, factory, browser)
    form = browser.client.get(f"/stories/{sid}/turns/1/edit")
    assert form.status_code == 200 and "The lamp went out." in form.get_data(True)
    response = browser.client.post(
        f"/stories/{sid}/turns/1/edit",
        data={"text": "The lamp flickered.", "expected_position": "1"},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("#turn-2")
    page = browser.client.get(f"/stories/{sid}").get_data(True)
    assert "The lamp flickered." in page and "The lamp went out." not in page


def test_bad_edit_stays_on_the_form(app, factory, browser):
    """Is an empty edit a 422 on the form, with nothing changed?"""
    sid, _ = _paragraph(app, factory, browser)
    response = browser.client.post(f"/stories/{sid}/turns/1/edit", data={"text": "  "})
    assert response.status_code == 422 and 'id="edit-form"' in response.get_data(True)
    assert "The lamp went out." in browser.client.get(f"/stories/{sid}").get_data(True)


def test_edit_after_the_answer_is_refused_with_a_message(app, factory, browser):
    """After the answer, does the edit form send me back to the story with the reason?"""
    sid, job = _paragraph(app, factory, browser)
    answer(app, job)
    response = browser.client.get(f"/stories/{sid}/turns/1/edit", follow_redirects=True)
    assert "until the model has answered it" in response.get_data(True)


def test_withdraw_from_the_page(app, factory, browser):
    """Does Withdraw take my paragraph off the page?"""
    sid, _ = _paragraph(app, factory, browser)
    response = browser.client.post(f"/stories/{sid}/turns/1/withdraw", follow_redirects=True)
    assert response.status_code == 200
    assert "The lamp went out." not in response.get_data(True)
    assert "Your paragraph was withdrawn." in response.get_data(True)


def test_owner_undoes_and_marks_chapters_on_the_settings_page(app, factory, browser):
    """Does the settings page offer undo and chapters, and do both work?"""
    sid, job = _paragraph(app, factory, browser)
    answer(app, job)
    settings = browser.client.get(f"/stories/{sid}/settings").get_data(True)
    assert 'data-testid="undo-last"' in settings and 'id="chapter-form"' in settings
    marked = browser.client.post(
        f"/stories/{sid}/chapters", data={"number": "2", "title": "The Sea"}, follow_redirects=True
    )
    assert "Chapter marked." in marked.get_data(True) and "§2:" in marked.get_data(True)
    bad = browser.client.post(f"/stories/{sid}/chapters", data={"number": "9", "title": "X"})
    assert bad.status_code == 302
    done = browser.client.post(f"/stories/{sid}/undo", follow_redirects=True).get_data(True)
    assert "The last turn was undone (2 hidden)." in done
    assert "There is nothing to undo now." in done
    page = browser.client.get(f"/stories/{sid}").get_data(True)
    assert "The lamp went out." not in page
