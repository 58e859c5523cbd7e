"""The interface's language: Accept-Language, the switch's cookie, the writer's preference,
Korean pages and messages, API errors with stable codes and translated messages."""

from __future__ import annotations

import json
import re

from app.accounts.locale import COOKIE
from app.accounts.models import User
from app.extensions import db

KO = {"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}


def _html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)">', page)
    assert match, page[:200]
    return match.group(1)


def test_english_without_a_preference(client):
    """Does a browser that asks for nothing get the English interface?"""
    page = client.get("/").get_data(as_text=True)
    assert _html_lang(page) == "en"
    assert "Start a story" in page and "Write a novel together" in page


def test_accept_language_korean(client):
    """Does Accept-Language: ko-KR give <html lang="ko"> and Korean words?"""
    response = client.get("/", headers=KO)
    page = response.get_data(as_text=True)
    assert _html_lang(page) == "ko"
    assert "이야기 시작하기" in page and "한 문단씩, 함께 소설을 써요." in page
    assert "Start a story" not in page
    assert "Accept-Language" in response.headers["Vary"]


def test_unsupported_language_falls_back_to_english(client):
    """Is a language the site does not speak (French) answered in English?"""
    page = client.get("/", headers={"Accept-Language": "fr-FR,fr"}).get_data(as_text=True)
    assert _html_lang(page) == "en"


def test_switch_keeps_the_choice_in_a_cookie(client):
    """Does the switch set a cookie that wins over Accept-Language, and go back to the page?"""
    response = client.post("/language?next=/login", data={"lang": "ko"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert f"{COOKIE}=ko" in response.headers["Set-Cookie"]
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert _html_lang(page) == "ko" and "로그인" in page
    client.post("/language", data={"lang": "en"})
    assert _html_lang(client.get("/", headers=KO).get_data(as_text=True)) == "en"


def test_switch_ignores_an_unknown_language(client):
    """Is a made-up language code ignored (no cookie), without an error?"""
    response = client.post("/language", data={"lang": "xx"})
    assert response.status_code == 302 and "Set-Cookie" not in response.headers


def test_switch_refuses_an_open_redirect(client):
    """Does the switch's next= stay on this site?"""
    response = client.post("/language?next=https://evil.example/", data={"lang": "ko"})
    assert response.headers["Location"] == "/"


def test_the_switch_of_a_signed_in_writer_needs_the_csrf_token(app, client, browser):
    """Does a signed-in writer's switch (it saves their preference) refuse a request without
    the CSRF token, and accept it with the token the page carries?"""
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        page = client.get("/register").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        data = {"username": "alice", "password": "password123", "confirm": "password123"}
        client.post("/register", data={**data, "csrf_token": token})
        assert client.post("/language", data={"lang": "ko"}).status_code == 400
        page = client.get("/").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = client.post("/language", data={"lang": "ko", "csrf_token": token})
        assert response.status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        assert db.session.scalars(db.select(User)).one().locale == "ko"


def test_anonymous_pages_carry_no_csrf_token_for_the_switch(client):
    """Is an anonymous reader's switch a plain form (their pages stay the same for all)?"""
    page = client.get("/").get_data(as_text=True)
    switch = page[page.index('class="inline language-switch"') :]
    switch = switch[: switch.index("</form>")]
    assert "csrf_token" not in switch and 'lang="ko"' in switch and "한국어" in switch


def test_user_preference_wins(app, client, browser):
    """Does a signed-in writer's saved language win over the cookie and Accept-Language?"""
    browser.register("alice")
    client.set_cookie(COOKIE, "en")
    response = client.post("/account", data={"locale": "ko"}, headers={"Accept-Language": "en"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"], headers={"Accept-Language": "en"})
    text = page.get_data(as_text=True)
    assert _html_lang(text) == "ko" and "설정을 저장했습니다." in text
    with app.app_context():
        assert db.session.scalars(db.select(User)).one().locale == "ko"


def test_following_the_browser_again(app, client, browser):
    """Does "Follow my browser" clear the preference, so Accept-Language decides again?"""
    browser.register("alice")
    client.post("/account", data={"locale": "ko"})
    client.post("/account", data={"locale": ""}, headers={"Accept-Language": "en"})
    with app.app_context():
        assert db.session.scalars(db.select(User)).one().locale is None
    assert (
        _html_lang(client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True))
        == "en"
    )
    assert _html_lang(client.get("/", headers=KO).get_data(as_text=True)) == "ko"


def test_account_page_refuses_an_unknown_language(client, browser):
    """Is a language outside the list a 422 on the account form?"""
    browser.register("alice")
    response = client.post("/account", data={"locale": "fr"})
    assert response.status_code == 422 and "Not a valid choice." in response.get_data(as_text=True)


def test_account_page_needs_sign_in(client):
    """Is the account page for signed-in writers only?"""
    response = client.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_flash_and_form_messages_in_korean(client, browser):
    """Are flashed messages and form errors (ours and WTForms') Korean for a Korean browser?"""
    response = client.post(
        "/register", data={"username": "bob", "password": "password123", "confirm": "x"}, headers=KO
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "비밀번호가 서로 다릅니다." in page
    response = client.post("/register", data={"username": "", "password": ""}, headers=KO)
    assert "이 항목은 필수입니다." in response.get_data(as_text=True)  # WTForms' own catalogue
    browser.register("alice")
    client.post("/logout", headers=KO)
    assert "로그아웃했습니다." in client.get("/", headers=KO).get_data(as_text=True)


def test_story_page_in_korean(client, browser, factory):
    """Is the story page's interface Korean while the story keeps its own language, and does
    its script get its words in Korean?"""
    alice = factory.user("alice")
    story_id = factory.story(alice, title="The Lighthouse", language="en")
    page = client.get(f"/stories/{story_id}", headers=KO).get_data(as_text=True)
    assert _html_lang(page) == "ko"
    assert '<article class="story" id="story" lang="en"' in page
    assert "다음 문단을 쓰려면" in page and "도입부" in page
    strings = re.search(r'<script type="application/json" id="story-strings">(.*?)</script>', page)
    assert json.loads(strings.group(1))["modelAdded"] == "모델이 §{number}을(를) 썼습니다."


def test_state_hint_in_korean(client, factory):
    """Does state.json's hint (read by the page's script) follow the language too?"""
    story_id = factory.story(factory.user("alice"))
    hint = client.get(f"/stories/{story_id}/state.json", headers=KO).json["hint"]
    assert hint == "다음 문단을 쓰려면 로그인하세요."


def test_dates_and_numbers_follow_the_locale(client, factory):
    """Are the list's dates written the Korean way for a Korean reader?"""
    factory.story(factory.user("alice"))
    english = client.get("/").get_data(as_text=True)
    korean = client.get("/", headers=KO).get_data(as_text=True)
    assert re.search(r">\d{1,2}/\d{1,2}/\d{2}, \d{1,2}:\d{2}\s?[AP]M UTC</time>", english)
    assert re.search(r">\d{2}\. \d{1,2}\. \d{1,2}\. (오전|오후) \d{1,2}:\d{2} UTC</time>", korean)


def test_error_page_in_korean(client):
    """Is the 404 page Korean for a Korean browser?"""
    response = client.get("/stories/999999", headers=KO)
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and _html_lang(page) == "ko"
    assert "찾을 수 없음" in page and "이야기 999999이(가) 없습니다." in page


def test_api_error_message_follows_accept_language_with_the_same_code(client):
    """Does an API error keep its code while its message follows Accept-Language?"""
    english = client.get("/api/v1/stories/999999")
    korean = client.get("/api/v1/stories/999999", headers=KO)
    assert english.status_code == korean.status_code == 404
    assert english.json["error"]["code"] == korean.json["error"]["code"] == "not_found"
    assert english.json["error"]["message"] == "Story 999999 does not exist."
    assert korean.json["error"]["message"] == "이야기 999999이(가) 없습니다."


def test_api_ignores_the_cookie(client):
    """Is the API stateless: the switch's cookie does not change its messages?"""
    client.set_cookie(COOKIE, "ko")
    response = client.get("/api/v1/stories/999999", headers={"Accept-Language": "en"})
    assert response.json["error"]["message"] == "Story 999999 does not exist."


def test_api_validation_error_in_korean(client, factory):
    """Does a field error keep its code and field while its message is Korean?"""
    headers = {**KO, **factory.headers(factory.user("alice"))}
    response = client.post(
        "/api/v1/stories", json={"language": "en", "opening": "x"}, headers=headers
    )
    error = response.json["error"]
    assert response.status_code == 422 and error["code"] == "invalid"
    assert error["field"] == "title" and error["message"] == "title 항목은 필수입니다."


def test_werkzeug_errors_in_korean(client):
    """Are stock HTTP errors (405) answered in the request's language too?"""
    response = client.delete("/api/v1/models", headers=KO)
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert response.json["error"]["message"] == "이 주소는 그 메서드를 받지 않습니다."
