"""Executing one GenerationJob: claim, build the prompt, generate, clean, complete.

`run_job(job_id)` is the one entry point every runner uses: the embedded
runner thread today, a Celery task in the scaled mode. It needs an app
context, never raises (a failure becomes a failed job with a message the
writer sees) and holds no database transaction while the model runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app

from app.errors import NotFound
from app.extensions import db
from app.generation.decoding import StopReason
from app.live.events import publish
from app.stories.jobs import claim_job, complete_job, fail_job, requeue_job
from app.stories.models import FinishReason, GenerationJob, Story, Turn
from app.stories.reads import visible_turns

log = logging.getLogger(__name__)

_GENERATOR_LOCK = threading.Lock()


@dataclass(frozen=True)
class JobPrompt:
    """Everything generation needs, read from the database before the model runs."""

    job_id: int
    story_id: int
    model_key: str
    prompt_ids: list[int]
    params: Any  # SamplingParams
    checker: Any = None  # app.moderation.filter Checker for the story's language
    filter_retries: int = 0  # regenerations allowed when the filter catches the output


def worker_name() -> str:
    """host:pid:thread, so a restart can tell a dead worker's job from a live one's."""
    name = f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
    return name[:120]


def run_job(
    job_id: int,
    worker: str | None = None,
    reclaim_running: bool = False,
    should_stop: Any = None,
) -> str:
    """Run one job to its end; returns "done", "held", "failed", "skipped" or "interrupted".

    Every state change goes through app/stories/jobs.py."""
    try:
        job = claim_job(job_id, worker or worker_name(), reclaim_running=reclaim_running)
    except Exception:
        log.exception("could not claim job %s", job_id)
        db.session.rollback()
        return "skipped"
    if job is None:
        return "skipped"
    try:
        request = build_prompt(job)  # closes the session: nothing stays open while generating
        return _generate_and_complete(request, should_stop)
    except NotFound as exc:  # the story was deleted while its answer was being written
        log.info("job %s dropped: %s", job_id, exc.message)
        db.session.rollback()
        return "skipped"
    except Exception as exc:
        log.exception("job %s failed", job_id)
        return _fail(job_id, FinishReason.MODEL_ERROR, detail=_reason(exc))


def build_prompt(job: GenerationJob) -> JobPrompt:
    """The story's opening and visible turns up to the answered paragraph, windowed.

    The database is read first and the session closed before the model is
    loaded (the first load can take a while; no transaction waits on it).
    """
    from app.generation.sampling import params_for
    from app.generation.window import trim_to_window

    cfg = current_app.config
    story = db.session.get(Story, job.story_id)
    answered = db.session.get(Turn, job.reply_to_id)
    last = answered.position if answered is not None else story.last_position
    texts = [t.text for t in visible_turns(story) if t.position <= last]
    params = params_for(
        story.preset,
        story.max_new_tokens,
        min_tokens=cfg["AI_TOKENS_MIN"],
        max_tokens=cfg["AI_TOKENS_MAX"],
    )
    job_id, story_id, model_key, opening = job.id, story.id, story.model_key, story.opening
    checker, filter_retries = _output_filter(story.language)
    db.session.close()
    loaded = get_registry().get(model_key)
    # A model with a short context keeps at least half of it for the prompt.
    params = replace(params, max_new_tokens=min(params.max_new_tokens, loaded.max_context // 2))
    window = trim_to_window(
        loaded.tokenizer, opening, texts, loaded.max_context, params.max_new_tokens
    )
    return JobPrompt(job_id, story_id, model_key, window.ids, params, checker, filter_retries)


def _output_filter(language: str) -> tuple[Any, int]:
    """The content filter for model output: its checker and how many regenerations it allows."""
    from app.moderation.filter import load_checker

    cfg = current_app.config
    retries = cfg.get("FILTER_MODEL_RETRIES", 2) if cfg.get("FILTER_MODEL_ACTION") != "hold" else 0
    return load_checker(language), max(0, int(retries))


def _generate_and_complete(request: JobPrompt, should_stop: Any) -> str:
    """Generate until the text is usable: an empty result is retried once; output the
    content filter catches is regenerated (FILTER_MODEL_RETRIES), then stored held."""
    from app.generation.cleanup import clean_generation

    generator = get_generator()
    empty_left, filter_left, attempt = 1, request.filter_retries, 0
    while True:
        attempt += 1
        result = generator.run(
            request.model_key,
            request.prompt_ids,
            request.params,
            on_delta=_delta_publisher(request, attempt),
            should_stop=should_stop,
        )
        if result.stop_reason == StopReason.CANCELLED:
            requeue_job(request.job_id)  # shutting down: the next start resumes it
            return "interrupted"
        text = clean_generation(result.text, finished=result.stop_reason.natural_end)
        hit = request.checker(text) if text and request.checker else None
        if text and hit is None:  # None: the job is gone (story deleted) or was withdrawn
            return "done" if complete_job(request.job_id, text) is not None else "skipped"
        if not text and empty_left:
            empty_left -= 1
        elif hit is not None and filter_left:
            filter_left -= 1
        elif hit is not None:
            held = complete_job(request.job_id, text, held_reason=f"filter: {hit.value}")
            return "held" if held is not None else "skipped"
        else:
            return _fail(request.job_id, FinishReason.EMPTY)
        log.info("job %s: attempt %s unusable (%s)", request.job_id, attempt, hit or "empty")


def _delta_publisher(request: JobPrompt, attempt: int) -> Any:
    """Publish each delta with the text so far; once the streamed text trips the content
    filter, readers get no more of this attempt (a new attempt restarts text_so_far)."""
    so_far: list[str] = []
    tripped: list[bool] = []

    def on_delta(delta: str) -> None:
        if tripped:
            return
        so_far.append(delta)
        text = "".join(so_far)
        if request.checker is not None and request.checker(text) is not None:
            tripped.append(True)
            return
        publish(
            request.story_id,
            "generation_delta",
            job_id=request.job_id,
            delta=delta,
            text_so_far=text,
            attempt=attempt,
        )

    return on_delta


def _fail(job_id: int, reason: FinishReason, **detail: str) -> str:
    try:
        db.session.rollback()
        fail_job(job_id, reason, **detail)
    except Exception:
        log.exception("could not mark job %s failed", job_id)
        db.session.rollback()
    return "failed"


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"model {exc.args[0]!r} is not configured on this server"
    if isinstance(exc, OSError):
        return "the model could not be loaded"
    return type(exc).__name__


def get_registry() -> Any:
    return current_app.extensions["relay.registry"]


def get_generator() -> Any:
    """The app's generator, built on first use (importing it imports torch)."""
    generator = current_app.extensions.get("relay.generator")
    if generator is not None:
        return generator
    with _GENERATOR_LOCK:
        generator = current_app.extensions.get("relay.generator")
        if generator is None:
            from app.generation.engine.adapter import build_generator

            generator = build_generator(current_app.config, get_registry())  # RELAY_ENGINE
            current_app.extensions["relay.generator"] = generator
    return generator
