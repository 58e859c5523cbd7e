"""Jobs end to end through the embedded runner thread, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.generation.decoding import StopReason
from app.stories.jobs import MESSAGES
from app.stories.models import FinishReason, GenerationJob, Turn
from app.stories.relay import append_human_turn, regenerate, set_hidden
from tests.conftest import Factory, make_app


def wait_for(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def job_status(app, job_id: int) -> str | None:
    with app.app_context():
        job = db.session.get(GenerationJob, job_id)
        status = job.status if job else None
        db.session.remove()
        return status


def wait_job(app, job_id: int, *states: str) -> str:
    states = states or ("done", "failed")
    return wait_for(lambda: (s := job_status(app, job_id)) in states and s)


def append(app, story_id: int, user_id: int, text: str) -> tuple[int, int]:
    with app.app_context():
        story_turns = db.session.scalar(
            select(db.func.max(Turn.position)).where(Turn.story_id == story_id)
        )
        user = db.session.get(User, user_id)
        turn, job = append_human_turn(story_id, user, text, story_turns or 0)
        return turn.id, job.id


def ai_turns(app, story_id: int) -> list[Turn]:
    with app.app_context():
        turns = list(
            db.session.scalars(
                select(Turn).where(Turn.story_id == story_id, Turn.kind == "ai").order_by(Turn.id)
            )
        )
        for turn in turns:
            db.session.expunge(turn)
        return turns


def drain(subscription) -> list[dict]:
    events = []
    while (event := subscription.get(timeout=0.2)) is not None:
        events.append(event)
    return events


@pytest.fixture
def own_app(app, db_url: str, tiny_model_dir: Path) -> Iterator[Callable[..., Any]]:
    """Build extra apps on the test database (schema from `app`); shut them all down after."""
    built = []

    def build(**overrides: Any):
        application = make_app(db_url, tiny_model_dir, **overrides)
        built.append(application)
        return application

    yield build
    for application in built:
        application.extensions["relay.shutdown"]()
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def test_job_streams_deltas_and_appends_one_ai_turn(app, factory):
    """Does a writer's paragraph get exactly one AI turn, streamed to a subscriber as it grows?"""
    writer = factory.user()
    story_id = factory.story(writer, max_new_tokens=64)
    subscription = app.extensions["relay.events"].subscribe(story_id)
    turn_id, job_id = append(app, story_id, writer, "He opened the door to the sea.")
    assert wait_job(app, job_id) == "done"
    events = drain(subscription)
    deltas = [e for e in events if e["type"] == "generation_delta"]
    assert deltas and all(e["job_id"] == job_id for e in deltas)
    last_attempt = [e for e in deltas if e["attempt"] == deltas[-1]["attempt"]]
    assert "".join(e["delta"] for e in last_attempt) == last_attempt[-1]["text_so_far"]
    types = [e["type"] for e in events]
    assert types.index("generation_started") < types.index("generation_delta")
    assert "generation_done" in types
    (ai,) = ai_turns(app, story_id)
    assert ai.reply_to_id == turn_id and ai.position == 2 and ai.text.strip()
    with app.app_context():
        job = db.session.get(GenerationJob, job_id)
        assert job.turn_id == ai.id and job.attempts == 1


def test_hidden_turns_never_reach_the_prompt(app, factory):
    """Is a hidden paragraph left out of the prompt of the next job?"""
    from app.generation.generator import Generator

    prompts: list[str] = []

    class RecordingGenerator(Generator):
        def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
            tokenizer = self.registry.get(model_key).tokenizer
            prompts.append(tokenizer.decode(prompt))
            return super().run(model_key, prompt, params, on_delta, should_stop)

    app.extensions["relay.generator"] = RecordingGenerator(app.extensions["relay.registry"])
    alice, bob = factory.user(), factory.user()
    moderator = factory.user(role="moderator")
    story_id = factory.story(alice, max_new_tokens=16, opening="Night.")
    secret_turn, job1 = append(app, story_id, alice, "The secret word is PLUGH.")
    wait_job(app, job1)  # done or failed: the story moves on either way
    with app.app_context():
        set_hidden(secret_turn, db.session.get(User, moderator), True, "spoiler")
    _, job2 = append(app, story_id, bob, "A visible paragraph.")
    wait_job(app, job2)
    assert len(prompts) >= 2
    assert "PLUGH" in prompts[0]
    assert prompts[-1].startswith("Night.")
    assert "PLUGH" not in prompts[-1]
    assert prompts[-1].endswith("A visible paragraph.\n\n")
    for earlier in ai_turns(app, story_id):
        if earlier.reply_to_id == secret_turn:  # job 1 may have failed: random tiny model
            assert earlier.text in prompts[-1]  # the window kept everything else


def test_failing_model_fails_the_job_and_frees_the_story(app, own_app, tiny_model_dir, tmp_path):
    """When the model cannot load, is the job failed with a message and the story still open?"""
    (tmp_path / "config.json").write_text("{broken", encoding="utf-8")
    models = {"en": str(tiny_model_dir), "ko": str(tiny_model_dir), "broken": str(tmp_path)}
    application = own_app(RELAY_MODELS=models)
    factory = Factory(application)
    alice, bob = factory.user(), factory.user()
    broken_story = factory.story(alice, model="broken")
    subscription = application.extensions["relay.events"].subscribe(broken_story)
    human_id, job_id = append(application, broken_story, alice, "Hello there.")
    assert wait_job(application, job_id) == "failed"
    with application.app_context():
        job = db.session.get(GenerationJob, job_id)
        assert "Regenerate" in job.error and job.turn_id is None
    failed = [e for e in drain(subscription) if e["type"] == "generation_failed"]
    assert failed and failed[0]["job"]["error"]
    # The story is not stuck: someone else can write, and the runner thread still works.
    _, next_job = append(application, broken_story, bob, "Carrying on.")
    assert wait_job(application, next_job) == "failed"
    good_story = factory.story(alice)
    _, good_job = append(application, good_story, alice, "A fine start.")
    assert wait_job(application, good_job) == "done"


def test_empty_output_is_retried_once_then_fails(app, factory):
    """Is an empty generation retried once, and a second empty one a failed job with a message?"""
    from app.generation.generator import Generation, Generator

    calls: list[int] = []

    class EmptyFirst(Generator):
        def __init__(self, registry, empties: int) -> None:
            super().__init__(registry)
            self.empties = empties

        def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
            calls.append(1)
            if len(calls) <= self.empties:
                return Generation(text="  \n ", token_ids=[], stop_reason=StopReason.EOS)
            return super().run(model_key, prompt, params, on_delta, should_stop)

    registry = app.extensions["relay.registry"]
    alice, bob = factory.user(), factory.user()
    story_id = factory.story(alice)
    app.extensions["relay.generator"] = EmptyFirst(registry, empties=1)
    _, job_id = append(app, story_id, alice, "First.")
    assert wait_job(app, job_id) == "done" and len(calls) == 2
    calls.clear()
    app.extensions["relay.generator"] = EmptyFirst(registry, empties=2)
    _, job_id = append(app, story_id, bob, "Second.")
    assert wait_job(app, job_id) == "failed" and len(calls) == 2
    with app.app_context():
        assert db.session.get(GenerationJob, job_id).error == MESSAGES[FinishReason.EMPTY]
        # The writer can ask again: the failed paragraph is still the latest turn.
        app.extensions["relay.generator"] = None
        retry = regenerate(story_id, 3, db.session.get(User, bob))
        retry_id = retry.id
    assert wait_job(app, retry_id) == "done"
    assert len(ai_turns(app, story_id)) == 2


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_restart_resumes_a_job_left_running_exactly_once(app, own_app):
    """After a crash mid-generation, does the restarted app finish the job with one AI turn?"""
    import socket

    crashed = own_app(RELAY_START_RUNNER=False)
    factory = Factory(crashed)
    alice = factory.user()
    story_id = factory.story(alice, max_new_tokens=64)
    human_id, job_id = append(crashed, story_id, alice, "The storm began.")
    with crashed.app_context():
        from app.stories.jobs import claim_job

        # The old process claimed the job, started generating, and died.
        claim_job(job_id, f"{socket.gethostname()}:{_dead_pid()}:relay-runner-0")
        assert db.session.get(GenerationJob, job_id).status == "running"
    crashed.extensions["relay.shutdown"]()

    restarted = own_app()
    assert ai_turns(restarted, story_id) == []
    restarted.extensions["relay.jobs"].start()
    assert wait_job(restarted, job_id) == "done"
    (ai,) = ai_turns(restarted, story_id)
    assert ai.reply_to_id == human_id
    # Starting again (another restart) resumes nothing and duplicates nothing.
    restarted.extensions["relay.jobs"].stop()
    again = own_app()
    again.extensions["relay.jobs"].start()
    time.sleep(0.5)
    assert len(ai_turns(again, story_id)) == 1
    with again.app_context():
        job = db.session.get(GenerationJob, job_id)
        assert job.attempts == 2 and job.turn_id == ai.id


def test_restart_leaves_a_live_workers_job_alone(app, own_app):
    """Is a running job owned by another live process on this host left to that process?"""
    import os
    import socket

    from app.runners.embedded import worker_alive_elsewhere

    parent = os.getppid()
    assert worker_alive_elsewhere(f"{socket.gethostname()}:{parent}:t")
    assert not worker_alive_elsewhere(f"{socket.gethostname()}:{_dead_pid()}:t")
    assert not worker_alive_elsewhere(f"{socket.gethostname()}:{os.getpid()}:t")
    assert not worker_alive_elsewhere(None)


def test_resume_leaves_a_sibling_threads_job_alone():
    """Is a job claimed by a live runner thread of this very process left to that thread?"""
    import os
    import socket
    import threading

    from app.runners.embedded import worker_alive_elsewhere

    release = threading.Event()
    sibling = threading.Thread(target=release.wait, name="relay-runner-7", daemon=True)
    sibling.start()
    try:
        assert worker_alive_elsewhere(f"{socket.gethostname()}:{os.getpid()}:relay-runner-7")
    finally:
        release.set()
        sibling.join()
    assert not worker_alive_elsewhere(f"{socket.gethostname()}:{os.getpid()}:relay-runner-7")


def test_queued_job_without_submit_is_found_by_polling(app, own_app):
    """Is a job queued only in the database (a lost submit) picked up by the running runner?"""
    quiet = own_app(RELAY_START_RUNNER=False)
    factory = Factory(quiet)
    alice = factory.user()
    story_id = factory.story(alice, max_new_tokens=64)
    _, job_id = append(quiet, story_id, alice, "Waiting.")
    assert job_status(quiet, job_id) == "queued"
    polling = own_app(RELAY_RUNNER_POLL_SECONDS=0.2)
    runner = polling.extensions["relay.jobs"]
    runner.start()
    assert wait_job(polling, job_id) == "done"
    assert len(ai_turns(polling, story_id)) == 1


def test_shutdown_mid_generation_requeues_the_job(app, own_app):
    """Does stopping the runner mid-generation put the job back in the queue, turn-less?"""
    from app.generation.generator import Generator

    started = []

    class Slow(Generator):
        def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
            def slow_delta(delta: str) -> None:
                started.append(delta)
                time.sleep(0.05)
                on_delta(delta)

            return super().run(model_key, prompt, params, slow_delta, should_stop)

    application = own_app()
    application.extensions["relay.generator"] = Slow(application.extensions["relay.registry"])
    factory = Factory(application)
    alice = factory.user()
    story_id = factory.story(alice, max_new_tokens=60)
    _, job_id = append(application, story_id, alice, "Slowly now.")
    wait_for(lambda: started)
    application.extensions["relay.shutdown"]()
    assert job_status(application, job_id) == "queued"
    assert ai_turns(application, story_id) == []


def test_first_request_starts_the_runner(app, client):
    """Does the serving process start its runner on the first request, not at import?"""
    runner = app.extensions["relay.jobs"]
    assert not runner.running
    client.get("/")
    assert runner.running


@pytest.mark.parametrize(("action", "runs"), [("regenerate", 3), ("hold", 1)])
def test_filtered_output_is_regenerated_then_held_unseen(app, own_app, action, runs):
    """Is model output the content filter catches regenerated, then stored held, never streamed?"""
    from app.generation.generator import Generator
    from app.moderation.models import FilterRule

    calls: list[int] = []

    class Counting(Generator):
        def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
            calls.append(1)
            return super().run(model_key, prompt, params, on_delta, should_stop)

    quiet = own_app(RELAY_START_RUNNER=False)  # the writer's paragraph goes in unfiltered
    factory = Factory(quiet)
    alice = factory.user()
    story_id = factory.story(alice)
    _, job_id = append(quiet, story_id, alice, "Say something rude.")
    application = own_app(FILTER_MODEL_ACTION=action, FILTER_MODEL_RETRIES=2)
    application.extensions["relay.generator"] = Counting(application.extensions["relay.registry"])
    with application.app_context():
        db.session.add(FilterRule(language="*", kind="pattern", value=r"\S"))  # catches anything
        db.session.commit()
    subscription = application.extensions["relay.events"].subscribe(story_id)
    application.extensions["relay.jobs"].start()
    assert wait_job(application, job_id) == "done"
    assert len(calls) == runs
    (ai,) = ai_turns(application, story_id)
    assert ai.held and ai.held_reason == r"filter: \S"
    events = drain(subscription)
    streamed = [e["text_so_far"] for e in events if e["type"] == "generation_delta"]
    assert all(not text.strip() for text in streamed)  # only what the filter let through
    assert "turn_held" in [e["type"] for e in events]


def test_runner_threads_answer_several_stories_in_one_engine_batch(app, own_app):
    """With the default runner threads, do jobs of different stories share the engine's batch,
    each still getting exactly one AI turn of its own?"""
    from app.generation.engine import adapter

    quiet = own_app(RELAY_START_RUNNER=False)
    factory = Factory(quiet)
    alice = factory.user()
    stories = [factory.story(alice, max_new_tokens=96) for _ in range(4)]
    jobs = [
        append(quiet, story_id, alice, f"Chapter {i} began.")[1]
        for i, story_id in enumerate(stories)
    ]
    for engine in adapter._ENGINES.values():
        if engine is not None:
            engine.peak_batch = 0
    runner_app = own_app()
    runner = runner_app.extensions["relay.jobs"]
    assert runner.workers == 4
    runner.start()  # resumes the four queued jobs at once
    for job_id in jobs:
        assert wait_job(runner_app, job_id) == "done"
    assert max(e.peak_batch for e in adapter._ENGINES.values() if e is not None) >= 2
    for story_id in stories:
        assert len(ai_turns(runner_app, story_id)) == 1


def test_a_story_deleted_while_its_answer_is_written_drops_the_job_quietly(quiet_app, caplog):
    """Is the answer of a story deleted mid-generation dropped ("skipped", no turn) with no
    error logged for it?"""
    import logging

    from app.generation.generator import Generator
    from app.runners.execute import run_job
    from app.stories.models import Story
    from app.stories.relay import delete_story

    app, factory = quiet_app, Factory(quiet_app)
    alice = factory.user()
    story_id = factory.story(alice)
    _, job_id = append(app, story_id, alice, "Soon gone.")

    class DeletesFirst(Generator):
        def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
            with app.app_context():
                delete_story(story_id, db.session.get(User, alice))
            return super().run(model_key, prompt, params, on_delta, should_stop)

    app.extensions["relay.generator"] = DeletesFirst(app.extensions["relay.registry"])
    with caplog.at_level(logging.INFO, logger="app.runners.execute"), app.app_context():
        assert run_job(job_id) == "skipped"
        assert db.session.get(Story, story_id) is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
