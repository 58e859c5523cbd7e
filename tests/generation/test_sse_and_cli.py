"""The story event stream (SSE) and `flask jobs ...`."""

from __future__ import annotations

import json
from datetime import timedelta

from app.accounts.models import User, utcnow
from app.extensions import db
from app.live.events import publish
from app.live.sse import event_stream
from app.stories.models import GenerationJob
from app.stories.relay import set_hidden
from tests.conftest import Factory
from tests.generation.test_jobs import append, job_status, wait_job


def _data(frame: str) -> dict:
    lines = dict(line.split(": ", 1) for line in frame.strip().splitlines())
    return {"id": lines.get("id"), **json.loads(lines["data"])}


def test_stream_opens_then_forwards_story_events(app, factory):
    """Does a subscriber get the opening state, then the story's events with id lines?"""
    story_id = factory.story(factory.user())
    with app.test_request_context():
        response = event_stream(story_id)
        assert not db.session().in_transaction()
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    frames = iter(response.response)
    assert next(frames).startswith("retry: ")
    opening = _data(next(frames))
    assert opening["type"] == "stream_open" and opening["last_position"] == 0
    with app.app_context():
        publish(story_id, "generation_delta", job_id=7, delta="밤", text_so_far="밤")
        publish(story_id + 1, "generation_delta", job_id=8, delta="x", text_so_far="x")
    event = _data(next(frames))
    assert event == {
        "id": "0",
        "type": "generation_delta",
        "story_id": story_id,
        "job_id": 7,
        "delta": "밤",
        "text_so_far": "밤",
    }
    bus = app.extensions["relay.events"]
    assert bus._subs[story_id]
    frames.close()  # the client went away
    assert not bus._subs[story_id]


def test_stream_sends_keepalives_and_ends_at_shutdown(app, factory):
    """Does an idle stream send keep-alive comments, and end when the app shuts down?"""
    story_id = factory.story(factory.user())
    app.config["SSE_KEEPALIVE_SECONDS"] = 0.1
    with app.test_request_context():
        frames = iter(event_stream(story_id).response)
    next(frames), next(frames)
    assert next(frames) == ": keep-alive\n\n"
    app.extensions["relay.shutdown"]()
    assert list(frames) == [] or all(f.startswith(":") for f in frames)


def test_reconnect_replays_missed_visible_turns(app, factory):
    """With Last-Event-ID, are the visible turns after it replayed, hidden ones left out?"""
    alice, bob = factory.user(), factory.user()
    moderator = factory.user(role="moderator")
    story_id = factory.story(alice, max_new_tokens=64)
    first, job1 = append(app, story_id, alice, "One.")
    wait_job(app, job1)
    _, job2 = append(app, story_id, bob, "Two.")
    wait_job(app, job2)
    with app.app_context():
        set_hidden(first, db.session.get(User, moderator), True, "spam")
    with app.test_request_context():
        frames = iter(event_stream(story_id, last_event_id="0").response)
    next(frames)
    replayed = [_data(next(frames)) for _ in range(4)]
    assert [e["type"] for e in replayed] == ["turn_created"] * 3 + ["stream_open"]
    assert [e["turn"]["position"] for e in replayed[:3]] == [2, 3, 4]
    assert replayed[-1]["last_position"] == 4 and replayed[-1]["id"] == "4"
    frames.close()


def test_jobs_list_shows_jobs_by_status(app, factory, cli_runner):
    """Does `flask jobs list --status` list the jobs in that state?"""
    alice = factory.user()
    story_id = factory.story(alice, max_new_tokens=64)
    _, job_id = append(app, story_id, alice, "Listed.")
    wait_job(app, job_id)
    result = cli_runner.invoke(args=["jobs", "list", "--status", "done"])
    assert result.exit_code == 0, result.output
    assert f"{job_id:>6}  {story_id:>6}  done" in result.output
    result = cli_runner.invoke(args=["jobs", "list", "--status", "failed"])
    assert "No jobs." in result.output


def test_requeue_stale_and_retry(app, db_url, tiny_model_dir):
    """Are stale running jobs requeued, and a failed latest job retried to completion?"""
    from tests.conftest import make_app

    quiet = make_app(db_url, tiny_model_dir, RELAY_START_RUNNER=False)
    try:
        factory = Factory(quiet)
        alice, bob = factory.user(), factory.user()
        stale_story = factory.story(alice, max_new_tokens=64)
        failed_story = factory.story(bob, max_new_tokens=64)
        _, stale = append(quiet, stale_story, alice, "Stale.")
        _, failed = append(quiet, failed_story, bob, "Failed.")
        with quiet.app_context():
            job = db.session.get(GenerationJob, stale)
            job.status, job.started_at = "running", utcnow() - timedelta(hours=1)
            job = db.session.get(GenerationJob, failed)
            job.status, job.error, job.attempts = "failed", "boom", 3
            db.session.commit()
        runner = quiet.test_cli_runner()
        result = runner.invoke(args=["jobs", "requeue-stale", "--older-than", "60"])
        assert result.exit_code == 0 and f"Requeued 1 job(s): {stale}" in result.output
        assert job_status(quiet, stale) == "queued"
        result = runner.invoke(args=["jobs", "retry", str(failed)])
        assert result.exit_code == 0, result.output
        assert job_status(quiet, failed) == "queued"
        result = runner.invoke(args=["jobs", "retry", "99999"])
        assert result.exit_code != 0 and "No job 99999" in result.output
    finally:
        quiet.extensions["relay.shutdown"]()
    # The serving app's runner picks both up.
    app.config["RELAY_RUNNER_POLL_SECONDS"] = 0.2
    app.extensions["relay.jobs"].start()
    assert wait_job(app, stale) == "done"
    assert wait_job(app, failed) == "done"
    result = app.test_cli_runner().invoke(args=["jobs", "retry", str(failed)])
    assert result.exit_code != 0 and "done" in result.output
    with quiet.app_context():
        db.session.remove()
        db.engine.dispose()
