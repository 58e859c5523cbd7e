"""Fixtures for the moderation edge tests: the app with its runner off and the default
filter lists seeded, four people (two writers, a moderator, an admin), and helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Factory, build_app, close_app

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def app(db_url: str, tiny_model_dir: Any) -> Iterator[Any]:
    """Runner off (pending states stay put), default filter lists seeded."""
    application = build_app(db_url, tiny_model_dir, seed_filters=True, RELAY_START_RUNNER=False)
    yield application
    close_app(application)


class People:
    """Two writers, a moderator and an admin, with an API token each."""

    def __init__(self, factory: Factory) -> None:
        self.writer = factory.user("alice")
        self.other = factory.user("bruno")
        self.mod = factory.user("mona", role="moderator")
        self.admin = factory.user("adele", role="admin")
        self.headers = {uid: factory.headers(uid) for uid in self.ids()}

    def ids(self) -> list[int]:
        return [self.writer, self.other, self.mod, self.admin]


@pytest.fixture
def people(factory: Factory) -> People:
    return People(factory)


def routes(app: Any, prefix: str) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for every rule under `prefix`, with ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule != prefix and not rule.rule.startswith(prefix + "/"):
            continue
        url = re.sub(r"<[^>]+>", "999999", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url, rule.endpoint))
    return found


def count(app: Any, model: Any, *where: Any) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audit_rows(app: Any) -> int:
    from app.moderation.models import AuditEntry

    return count(app, AuditEntry)


def add_turn(app: Any, story_id: int, user_id: int, text: str, answer: str | None = None) -> int:
    """Append a human paragraph (and the model's answer, played by the test); its turn id."""
    from app.accounts.models import User
    from app.extensions import db
    from app.stories import jobs, relay
    from app.stories.models import Story

    with app.app_context():
        story = db.session.get(Story, story_id)
        turn, job = relay.append_human_turn(
            story_id, db.session.get(User, user_id), text, story.last_position
        )
        turn_id = turn.id
        if answer is not None and job is not None:
            jobs.claim_job(job.id, "test")
            jobs.complete_job(job.id, answer)
        db.session.remove()
        return turn_id


def turn_state(app: Any, turn_id: int) -> dict[str, Any]:
    from app.extensions import db
    from app.stories.models import Turn

    with app.app_context():
        turn = db.session.get(Turn, turn_id)
        return {"hidden": turn.hidden, "held": turn.held, "reason": turn.hidden_reason}
