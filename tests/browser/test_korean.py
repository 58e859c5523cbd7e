"""In Chromium with a Korean browser (ko-KR): the whole writing flow in the Korean interface
on a Korean story, Korean typography, the announcement of the model's turn, the switch."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

_names = itertools.count(1)


@pytest.fixture
def korean_page(chromium: Any) -> Iterator[Any]:
    """A page whose browser asks for Korean (Accept-Language: ko-KR), on a phone-sized screen."""
    context = chromium.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_writing_flow_in_korean(live_server, korean_page):
    """Can a Korean writer register, start a Korean story and write a turn, all in Korean,
    and hear that the model added its paragraph?"""
    page, base = korean_page, live_server.url
    page.goto(f"{base}/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", level=1)).to_have_text("한 문단씩, 함께 소설을 써요.")
    page.get_by_test_id("start-story").click()  # to registration, then on to the form

    username = f"writer-ko{next(_names)}"
    page.get_by_label("사용자 이름").fill(username)
    page.get_by_label("비밀번호", exact=True).fill("password123")
    page.get_by_label("비밀번호 확인").fill("password123")
    page.get_by_role("button", name="가입하기").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("이야기 시작하기")
    expect(page.get_by_label("이야기의 언어")).to_have_value("ko")

    page.get_by_label("제목", exact=True).fill("등대지기의 편지")
    page.get_by_label("도입부").fill("등대지기는 매일 밤 바다에 편지를 썼다.")
    page.get_by_label("모델 차례의 길이 (단어 수)").fill("10")
    page.get_by_role("button", name="이야기 시작하기").click()
    expect(page.locator("#story-title")).to_have_text("등대지기의 편지")
    expect(page.locator("#story")).to_have_attribute("lang", "ko")
    expect(page.locator(".flash-success")).to_contain_text("이야기가 시작되었습니다.")

    opening = page.locator(".opening .turn-text")
    styles = opening.evaluate(
        """node => ({
            text: getComputedStyle(node).fontSize,
            first: getComputedStyle(node, '::first-letter').fontSize,
            breaks: getComputedStyle(node).wordBreak,
        })"""
    )
    assert styles["first"] == styles["text"], "a drop cap on Hangul"
    assert styles["breaks"] == "keep-all"

    expect(page.locator("#story")).to_have_attribute("data-connected", "true")
    page.get_by_label("내 문단").fill("어느 날 파도가 답장을 보냈다.")
    page.get_by_role("button", name="내 문단 추가").click()
    answer = page.locator(".turn-ai:not(.turn-pending)")
    expect(answer).to_have_count(1, timeout=90_000)
    expect(page.get_by_test_id("turn-announcer")).to_have_text("모델이 §2을(를) 썼습니다.")
    expect(answer.locator(".credit-who")).to_have_text("✦ 모델")
    expect(answer.get_by_role("link", name="§2 신고 (모델)")).to_be_visible()


def test_switch_to_english_and_back(live_server, korean_page):
    """Does the header's switch turn a Korean browser's pages English, and back?"""
    page, base = korean_page, live_server.url
    page.goto(f"{base}/login")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.goto(f"{base}/")
    expect(page.get_by_test_id("start-story")).to_have_text("Start a story")
    page.get_by_role("button", name="한국어").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")


def test_phone_header_keeps_its_links_together(live_server, korean_page):
    """At 390 px, does the header put the name on its own line and every link on one line?"""
    page = korean_page
    page.goto(f"{live_server.url}/")
    shown = "nodes => nodes.filter(n => n.offsetParent)"
    tops = page.locator(".site-nav > a:not(.brand), .site-nav > form").evaluate_all(
        f"{shown}.map(n => Math.round(n.getBoundingClientRect().top))"
    )
    assert len(tops) >= 3 and max(tops) - min(tops) <= 8, tops
