"""axe-core on every page of ours (Swagger UI aside), in both languages and both themes:
0 violations of the WCAG 2.0 / 2.1 A and AA rules, none disabled.

axe-core comes from the npm registry (`make test` installs the pinned version into
build/node); Playwright injects it into each page of one browser context per theme and
language, against one seeded server whose runner is off, so every page holds still.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import ROOT
from tests.browser.conftest import start_live_server

AXE = ROOT / "build" / "node" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PASSWORD = "password123"


def seed(app: Any) -> dict[str, int]:
    """An English and a Korean story with answered turns, a report, a held paragraph, an admin."""
    from app.accounts.service import register_user
    from app.extensions import db
    from app.moderation import reports
    from app.moderation.filter import seed_default_rules
    from app.stories import reads, relay
    from app.stories.jobs import claim_job, complete_job

    with app.app_context():
        seed_default_rules()
        admin = register_user("adele", PASSWORD)
        admin.role = "admin"
        writer = register_user("mara", PASSWORD)
        db.session.commit()
        ids = {}
        for language, opening, paragraph, answer in [
            ("en", "The lamp went out at midnight.", "She lit a candle.", "The sea listened."),
            ("ko", "자정에 등불이 꺼졌다.", "그녀는 초를 켰다.", "바다가 귀를 기울였다."),
        ]:
            story = relay.create_story(
                writer, {"title": f"Story {language}", "language": language, "opening": opening}
            )
            turn, job = relay.append_human_turn(story.id, writer, paragraph, 0)
            claim_job(job.id, "axe")
            complete_job(job.id, answer)
            reports.report_turn(turn.id, admin, "Please look")
            ids[language], ids[f"turn-{language}"] = story.id, turn.id
        last = reads.get_story(ids["en"])
        held, _ = relay.append_human_turn(ids["en"], admin, "A second candle.", last.last_position)
        relay.set_hidden(held.id, admin, True, "axe: a hidden turn on the page")
        db.session.remove()
    return ids


@pytest.fixture(scope="module")
def axe_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Any]:
    if not AXE.exists():
        pytest.skip("axe-core is not installed (make build/node/.axe-core-*; make test does it)")
    server = start_live_server(
        tmp_path_factory.mktemp("axe") / "relay.sqlite3", tiny_model_dir, RELAY_START_RUNNER=False
    )
    server.ids = seed(server.app)
    yield server
    server.stop()


def pages(ids: dict[str, int]) -> tuple[list[str], list[str]]:
    """Our pages: those a visitor sees signed out, and those an admin sees signed in."""
    signed_out = ["/", "/login", "/register", f"/stories/{ids['en']}", "/stories/999999"]
    signed_in = [
        "/",
        f"/stories/{ids['en']}",
        f"/stories/{ids['ko']}",
        "/stories/new",
        "/account",
        f"/turns/{ids['turn-en']}/report",
        "/admin/",
        "/admin/stories",
        "/admin/users",
        "/admin/stats",
        "/admin/audit",
        "/admin/filters",
        "/admin/turns/999999/nothing",  # the 404 page, signed in
    ]
    return signed_out, signed_in


def violations(page: Any) -> list[str]:
    """axe-core's WCAG A/AA violations on the page, one line per failing element."""
    result = page.evaluate(
        "options => axe.run(document, options)",
        {"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]},
    )
    return [
        f"{rule['id']} ({rule['impact']}): {node['target']} {node['failureSummary']!r}"
        for rule in result["violations"]
        for node in rule["nodes"]
    ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_every_page_passes_axe(chromium, axe_server, theme, locale):
    """Does every page of ours, signed out and as an admin, have 0 WCAG 2.1 A/AA violations
    in this language and theme?"""
    context = chromium.new_context(
        locale=locale,
        color_scheme=theme,
        bypass_csp=True,  # the pages' CSP refuses injected scripts such as axe's
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(20_000)
    context.add_init_script(path=str(AXE))  # in every page, before its own scripts
    page, base = context.new_page(), axe_server.url
    signed_out, signed_in = pages(axe_server.ids)
    found: dict[str, list[str]] = {}
    try:
        for path in signed_out:
            page.goto(base + path, wait_until="load")
            found[path] = violations(page)
        page.goto(f"{base}/login")
        page.locator("input[name=username]").fill("adele")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("form button[type=submit]").last.click()
        page.wait_for_url(f"{base}/")
        for path in signed_in:
            page.goto(base + path, wait_until="load")
            assert page.locator("html").get_attribute("lang") == locale[:2], path
            found[f"{path} (admin)"] = violations(page)
    finally:
        context.close()
    failures = {path: lines for path, lines in found.items() if lines}
    report = "\n".join(f"{path}:\n  " + "\n  ".join(lines) for path, lines in failures.items())
    assert not failures, f"{theme}, {locale}:\n{report}"
    assert len(found) == len(signed_out) + len(signed_in)
