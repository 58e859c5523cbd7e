"""The one deadline scheduler (app/stories/deadlines.py): every sweep runs, a broken one
does not stop the others, and the CLI, the embedded runner and Celery beat all reach it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.accounts.models import utcnow
from app.stories import deadlines

SEEN: list[datetime] = []


def counting_sweep(now: datetime) -> int:
    SEEN.append(now)
    return 2


def broken_sweep(now: datetime) -> int:
    raise RuntimeError("boom")


@pytest.fixture
def sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    SEEN.clear()
    here = __name__
    monkeypatch.setattr(
        deadlines,
        "SWEEPS",
        (f"{here}:broken_sweep", f"{here}:counting_sweep", f"{here}:counting_sweep"),
    )


def test_every_sweep_runs_with_the_given_clock(app, sweeps) -> None:
    later = utcnow() + timedelta(hours=3)
    with app.app_context():
        assert deadlines.run_deadlines(now=later) == 4  # the broken one counted nothing
    assert all(seen == later for seen in SEEN) and len(SEEN) == 2


def test_cli_runs_the_sweeps(app, cli_runner, sweeps) -> None:
    result = cli_runner.invoke(args=["jobs", "deadlines"])
    assert result.exit_code == 0, result.output
    assert "settled 4 deadline(s)" in result.output
    assert len(SEEN) == 2


def test_embedded_runner_has_a_deadline_thread(db_url, tiny_model_dir, sweeps) -> None:
    import time

    from tests.conftest import build_app, close_app

    application = build_app(db_url, tiny_model_dir, RELAY_DEADLINE_SECONDS=0.05)
    try:
        runner = application.extensions["relay.jobs"]
        runner.enabled = True
        runner.start()
        deadline = time.monotonic() + 10
        while len(SEEN) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(SEEN) >= 2
    finally:
        close_app(application)


def test_celery_beat_schedules_the_deadline_task(app) -> None:
    from app.runners.celery_queue import DEADLINES_TASK, make_celery

    celery = make_celery(app)
    entry = celery.conf.beat_schedule["relay-deadlines"]
    assert entry["task"] == DEADLINES_TASK
    assert DEADLINES_TASK in celery.tasks
