"""Writing a job's candidates: N continuations of one prompt in one batched pass.

run_job (app/runners/execute.py) hands a job asking for more than one candidate
here. On the batching engine the N rows are submitted together and share one
prefill (EngineGenerator.run_many); the Hugging Face fallback writes them one
after another. Each row streams as generation_delta events carrying its
`candidate` index, each finished text passes the content filter like any model
output (a caught one is kept held, never offered), and the texts go to
app/stories/candidates.py offer_candidates, which waits for the choice.

A remote model (an OpenAI-compatible server) writes one candidate: the job is
answered as a plain job and the log says so (candidates are local-only for now).
"""

from __future__ import annotations

import logging
from typing import Any

from app.generation.decoding import StopReason
from app.live.events import publish
from app.runners import execute
from app.runners.stopping import stopped
from app.stories.models import FinishReason

log = logging.getLogger(__name__)


def generate_candidates(request: Any, n: int, should_stop: Any) -> str:
    """Write `n` candidates for the claimed job of `request` (an execute.JobPrompt) and
    offer them; returns "choosing", "done", "held", "failed", "interrupted" or "skipped"."""
    from app.generation.cleanup import clean_generation
    from app.stories.candidates import offer_candidates

    generator = execute._generator_for(request.model_key)
    if not hasattr(generator, "run_many") and request.prompt_text is not None:
        log.warning(
            "job %s: remote model %s writes one candidate, not %s (candidates are local-only)",
            request.job_id,
            request.model_key,
            n,
        )
        return execute._generate_and_complete(request, should_stop)
    results = _run(generator, request, n, should_stop)
    if any(r.stop_reason == StopReason.CANCELLED for r in results):
        return stopped(request.job_id, should_stop)  # shutting down, or withdrawn
    outputs: list[tuple[str, str | None]] = []
    for result in results:
        text = clean_generation(result.text, finished=result.stop_reason.natural_end)
        if not text:
            continue
        hit = request.checker(text) if request.checker else None
        outputs.append((text, f"filter: {hit.value}" if hit is not None else None))
    if not outputs:
        return execute._fail(request.job_id, FinishReason.EMPTY)
    return offer_candidates(request.job_id, outputs)


def _run(generator: Any, request: Any, n: int, should_stop: Any) -> list[Any]:
    """The n generations: one batched pass where the generator has run_many."""
    on_delta = _delta_publisher(request)
    if hasattr(generator, "run_many"):
        return generator.run_many(
            request.model_key, request.prompt, request.params, n, on_delta, should_stop
        )
    return [
        generator.run(
            request.model_key,
            request.prompt,
            request.params,
            on_delta=lambda delta, i=i: on_delta(i, delta),
            should_stop=should_stop,
        )
        for i in range(n)
    ]


def _delta_publisher(request: Any) -> Any:
    """on_delta(row, delta): publish each row's delta with its text so far; a row whose
    streamed text trips the content filter sends readers no more."""
    so_far: dict[int, list[str]] = {}
    tripped: set[int] = set()

    def on_delta(row: int, delta: str) -> None:
        if row in tripped:
            return
        pieces = so_far.setdefault(row, [])
        pieces.append(delta)
        text = "".join(pieces)
        if request.checker is not None and request.checker(text) is not None:
            tripped.add(row)
            return
        publish(
            request.story_id,
            "generation_delta",
            job_id=request.job_id,
            delta=delta,
            text_so_far=text,
            attempt=1,
            candidate=row,
        )

    return on_delta
