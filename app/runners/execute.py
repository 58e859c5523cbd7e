"""Executing one GenerationJob: claim, build the prompt, generate, clean, complete.

`run_job(job_id)` is the one entry point every runner uses: the embedded
runner thread today, a Celery task in the scaled mode. It needs an app
context, never raises (a failure becomes a failed job with a message the
writer sees) and holds no database transaction while the model runs.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app

from app.errors import NotFound
from app.extensions import db
from app.generation.decoding import StopReason
from app.generation.remote import RemoteRefused, RemoteUnavailable, backoff_seconds
from app.live.events import publish
from app.runners.stopping import JobStop, stopped
from app.stories.jobs import MAX_JOB_ATTEMPTS, claim_job, complete_job, fail_job
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
    prompt_text: str | None = None  # a remote model's prompt (servers take text)
    retry_backoff: float = 1.0  # seconds before a remote model's second try, doubling
    earlier: tuple[str, ...] = ()  # the story's text before the answer (the loop guard's)
    loop_overlap: float = 0.0  # LOOP_GUARD_OVERLAP: above this share, regenerate once; 0 off
    seed: int | None = None  # the first attempt's; attempt n uses seed + n - 1
    context: dict[str, Any] | None = None  # what the model saw (app/stories/context.py)

    @property
    def prompt(self) -> str | list[int]:
        return self.prompt_text if self.prompt_text is not None else self.prompt_ids


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
    """Run one job to its end; returns "done", "held", "failed", "skipped", "interrupted"
    or (its candidates written, awaiting a choice) "choosing".

    Every state change goes through app/stories/jobs.py."""
    try:
        job = claim_job(job_id, worker or worker_name(), reclaim_running=reclaim_running)
    except Exception:
        log.exception("could not claim job %s", job_id)
        db.session.rollback()
        return "skipped"
    if job is None:
        return "skipped"
    should_stop = JobStop(job_id, should_stop)  # also true once the job is withdrawn
    try:
        candidates = job.candidates
        request = build_prompt(job)  # closes the session: nothing stays open while generating
        if candidates > 1:  # N rows of one batched pass, then a choice
            from app.runners.candidates import generate_candidates

            return generate_candidates(request, candidates, should_stop)
        return _generate_and_complete(request, should_stop)
    except NotFound as exc:  # the story was deleted while its answer was being written
        log.info("job %s dropped: %s", job_id, exc.message)
        db.session.rollback()
        return "skipped"
    except (RemoteUnavailable, RemoteRefused) as exc:
        log.warning("job %s failed on its remote model: %s", job_id, exc)
        return _fail(job_id, FinishReason.MODEL_ERROR, detail=str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        return _fail(job_id, FinishReason.MODEL_ERROR, detail=_reason(exc))


def build_prompt(job: GenerationJob) -> JobPrompt:
    """The story's opening and visible turns up to the answered paragraph, windowed.

    The database is read first and the session closed before the model is
    loaded (the first load can take a while; no transaction waits on it).
    """
    from app.generation.banned import parse_phrases
    from app.generation.prompt_parts import assemble
    from app.generation.sampling import params_for
    from app.stories.context import context_record, new_seed, record_context
    from app.stories.lore import story_parts

    cfg = current_app.config
    story = db.session.get(Story, job.story_id)
    answered = db.session.get(Turn, job.reply_to_id)
    last = answered.position if answered is not None else story.last_position
    turns = [(t.position, t.text) for t in visible_turns(story) if t.position <= last]
    texts = [text for _, text in turns]
    parts, preset = story_parts(story, turns, cfg.get("LORE_SCAN_TURNS")), story.preset
    params = params_for(
        story.preset,
        story.max_new_tokens,
        min_tokens=cfg["AI_TOKENS_MIN"],
        max_tokens=cfg["AI_TOKENS_MAX"],
        bad_words=parse_phrases(story.banned_phrases),
    )
    job_id, story_id, model_key, opening = job.id, story.id, story.model_key, story.opening
    checker, filter_retries = _output_filter(story.language)
    db.session.close()
    remote = get_registry().remote(model_key)
    if remote is not None:
        tokenizer, context = _remote_window_tokenizer(remote, job_id), remote.context
    else:
        loaded = get_registry().get(model_key)
        tokenizer, context = loaded.tokenizer, loaded.max_context
    # A model with a short context keeps at least half of it for the prompt.
    params = replace(params, max_new_tokens=min(params.max_new_tokens, context // 2))
    assembled = assemble(tokenizer, parts, context, params.max_new_tokens)
    window, seed = assembled.window, new_seed() if remote is None else None
    record = context_record(
        assembled, parts, model_key=model_key, preset=preset, params=params, max_context=context
    ) | {"seed": seed}
    record_context(job_id, record)
    return JobPrompt(
        job_id, story_id, model_key, window.ids, params, checker, filter_retries,
        prompt_text=window.text if remote is not None else None,
        retry_backoff=remote.retry_backoff if remote is not None else 1.0,
        earlier=(opening, *texts), loop_overlap=float(cfg.get("LOOP_GUARD_OVERLAP", 0.0)),
        seed=seed, context=record,
    )  # fmt: skip


def _remote_window_tokenizer(remote: Any, job_id: int) -> Any:
    """The remote model's tokenizer, once its server answers (tried as generation is)."""
    from app.generation.remote_tokens import remote_tokenizer

    tokenizer = remote_tokenizer(remote)
    if remote.tokenizer == "server":
        _with_retries(job_id, remote.retry_backoff, lambda: tokenizer.encode("."))
    return tokenizer


def _output_filter(language: str) -> tuple[Any, int]:
    """The content filter for model output: its checker and how many regenerations it allows."""
    from app.moderation.filter import load_checker

    cfg = current_app.config
    retries = cfg.get("FILTER_MODEL_RETRIES", 2) if cfg.get("FILTER_MODEL_ACTION") != "hold" else 0
    return load_checker(language), max(0, int(retries))


def _generate_and_complete(request: JobPrompt, should_stop: Any) -> str:
    """Generate until the text is usable: an empty result is retried once; output the
    content filter catches is regenerated (FILTER_MODEL_RETRIES), then stored held; a
    turn repeating the story (the loop guard) is regenerated once, then stored flagged."""
    from app.generation.banned import cut_before_banned
    from app.generation.cleanup import clean_generation

    generator = _generator_for(request.model_key)
    empty_left, filter_left, loop_left = 1, request.filter_retries, 1
    attempts = _Attempts(request)
    while True:
        result = _with_retries(
            request.job_id,
            request.retry_backoff,
            lambda: attempts.run(generator, should_stop),
            on_failure=attempts.abandon,
        )
        if result.stop_reason == StopReason.CANCELLED:  # shutting down, or withdrawn
            return stopped(request.job_id, should_stop)
        text = clean_generation(result.text, finished=result.stop_reason.natural_end)
        text = cut_before_banned(text, request.params.bad_words)  # other tokenizations
        hit = request.checker(text) if text and request.checker else None
        flag = _loop_flag(request, text) if text and hit is None else None
        if flag and loop_left:
            loop_left -= 1
            log.info("job %s: attempt %s repeats the story", request.job_id, attempts.number)
            continue
        if text and hit is None:  # None: the job is gone (story deleted) or was withdrawn
            attempts.record_seed()
            done = complete_job(request.job_id, text, flag=flag)
            return "done" if done is not None else "skipped"
        if not text and empty_left:
            empty_left -= 1
        elif hit is not None and filter_left:
            filter_left -= 1
        elif hit is not None:
            attempts.record_seed()
            held = complete_job(request.job_id, text, held_reason=f"filter: {hit.value}")
            return "held" if held is not None else "skipped"
        else:
            return _fail(request.job_id, FinishReason.EMPTY)
        log.info(
            "job %s: attempt %s unusable (%s)", request.job_id, attempts.number, hit or "empty"
        )


def _loop_flag(request: JobPrompt, text: str) -> str | None:
    """The loop flag when the turn largely repeats the story's earlier text, else None."""
    from app.generation.loops import LOOP_FLAG, repeats_earlier

    return LOOP_FLAG if repeats_earlier(text, request.earlier, request.loop_overlap) else None


class _Attempts:
    """Numbers a job's tries; before a new one, readers holding text of the last are told
    to drop it (generation_reset), so no reader keeps an abandoned attempt's text."""

    def __init__(self, request: JobPrompt) -> None:
        self.request, self.number, self.streamed = request, 0, False

    def run(self, generator: Any, should_stop: Any) -> Any:
        self.abandon()
        self.number += 1
        return generator.run(
            self.request.model_key,
            self.request.prompt,
            self.request.params,
            on_delta=_delta_publisher(self.request, self.number, self._sent),
            should_stop=should_stop,
            **self._seed(generator),
        )

    def _seed(self, generator: Any) -> dict[str, int]:
        """This attempt's seed, for a generator that takes one (a retry must differ)."""
        if self.request.seed is None or not _takes_seed(generator):
            return {}
        return {"seed": self.request.seed + self.number - 1}

    def record_seed(self) -> None:
        """A later attempt became the turn: its seed is the one the record keeps."""
        from app.stories.context import record_context

        if self.number > 1 and self.request.seed is not None and self.request.context:
            seed = self.request.seed + self.number - 1
            record_context(self.request.job_id, self.request.context | {"seed": seed})

    def _sent(self) -> None:
        self.streamed = True

    def abandon(self) -> None:
        if self.streamed:
            publish(
                self.request.story_id,
                "generation_reset",
                job_id=self.request.job_id,
                attempt=self.number,
            )
            self.streamed = False


def _with_retries(job_id: int, backoff: float, call: Any, on_failure: Any = None) -> Any:
    """call(), tried again after a back-off while a remote server is unavailable (the
    server's Retry-After, else doubling): MAX_JOB_ATTEMPTS tries, then the failure stands."""
    for tries in range(1, MAX_JOB_ATTEMPTS + 1):
        try:
            return call()
        except RemoteUnavailable as exc:
            if on_failure is not None:
                on_failure()
            if tries == MAX_JOB_ATTEMPTS:
                raise
            wait = backoff_seconds(tries, exc.retry_after, backoff)
            log.warning("job %s: %s; try %s in %.1f s", job_id, exc.detail, tries + 1, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _takes_seed(generator: Any) -> bool:
    params = inspect.signature(generator.run).parameters.values()
    return any(p.name == "seed" or p.kind is p.VAR_KEYWORD for p in params)


def _generator_for(model_key: str) -> Any:
    """The remote generator for a remote key, else the app's local generator."""
    registry = get_registry()
    if registry.remote(model_key) is None:
        return get_generator()
    from app.generation.remote import RemoteGenerator

    return RemoteGenerator(registry.remotes)


def _delta_publisher(request: JobPrompt, attempt: int, on_sent: Any = None) -> Any:
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
        if on_sent is not None:
            on_sent()

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
