"""Fixtures for the API tests: the app with its runner off, DB counts, playing the runner.

The runner thread is off here (RELAY_START_RUNNER=False) so that a job stays
pending until the test answers it with claim_job / complete_job, the same
functions the runner calls. The race test starts its own app with the runner on.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select


@pytest.fixture
def app(quiet_app: Any) -> Any:
    """The runner is off: tests answer jobs themselves with claim_job / complete_job."""
    return quiet_app


def counts(app) -> dict[str, int]:
    """Rows per table: bad input must leave every one of them unchanged."""
    from app.accounts.models import ApiToken, User
    from app.extensions import db
    from app.stories.models import GenerationJob, Participant, Story, Turn

    with app.app_context():
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (User, ApiToken, Story, Participant, Turn, GenerationJob)
        }


def answer(app, job_id: int, text: str = "The sea answered.") -> int:
    """Play the runner: claim the job and append its AI turn; the turn's position."""
    from app.stories.jobs import claim_job, complete_job

    with app.app_context():
        assert claim_job(job_id, "test") is not None
        return complete_job(job_id, text).position


def fail(app, job_id: int) -> None:
    """Run the job as a runner whose model wrote nothing usable."""
    from app.stories.jobs import claim_job, fail_job
    from app.stories.models import FinishReason

    with app.app_context():
        claim_job(job_id, "test")
        fail_job(job_id, FinishReason.EMPTY)


def first_paragraph(client, factory, text: str = "A paragraph.") -> tuple[int, int, dict]:
    """A new writer's new story with its first paragraph posted: (story id, writer id, job)."""
    owner = factory.user()
    sid = factory.story(owner)
    job = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": text, "expected_position": 0},
        headers=factory.headers(owner),
    ).get_json()["job"]
    return sid, owner, job
