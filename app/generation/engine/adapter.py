"""The engine behind the runner's generator interface, and one engine per model per process.

`EngineGenerator` has the same `generate` / `run` as
app.generation.generator.Generator, so the job code does not change: each
runner thread submits its job's request and waits; requests from several
threads share the engine's batch. Deltas are produced on the engine thread
and handed to the caller's `on_delta` on the caller's own thread (which has
the app context the event bus needs). `should_stop()` is polled while
waiting; when it says stop, the request is cancelled and its slot freed.

A model the engine cannot run (not a plain GPT-2) falls back to the Hugging
Face generator.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from app.generation.decoding import StopReason
from app.generation.engine.batch import Engine
from app.generation.engine.model import UnsupportedModel
from app.generation.engine.quant import KV_CACHES, PRECISIONS
from app.generation.engine.requests import EngineResult, Request
from app.generation.generator import (
    DeltaCallback,
    Generation,
    Generator,
    StopCheck,
    _input_ids,
    bad_words_ids,
)
from app.generation.registry import LoadedModel, ModelRegistry
from app.generation.sampling import SamplingParams
from app.generation.story_cache import settings_for

log = logging.getLogger(__name__)

_ENGINES: dict[tuple[str, str, str, str], Engine | None] = {}
_GUARD = threading.Lock()
POLL_SECONDS = 0.02


def engine_for(
    loaded: LoadedModel, precision: str = "fp32", max_batch: int = 16, kv_cache: str = "auto"
) -> Engine | None:
    """The process's engine for this model and precision (built once); None if unsupported."""
    precision = effective_precision(precision, loaded.device)
    key = (loaded.source, loaded.device, precision, kv_cache)
    if key in _ENGINES:
        return _ENGINES[key]
    with _GUARD:
        if key not in _ENGINES:
            try:
                _ENGINES[key] = Engine(
                    loaded.model,
                    loaded.tokenizer,
                    precision,
                    max_batch,
                    kv_cache=kv_cache,
                    story_cache=settings_for(loaded.source),  # the folder's switch
                )
                log.info("batched engine for %s (%s, %s)", loaded.key, precision, loaded.device)
            except UnsupportedModel as exc:
                log.warning("model %s: batched engine unavailable (%s); using HF", loaded.key, exc)
                _ENGINES[key] = None
    return _ENGINES[key]


def effective_precision(precision: str, device: str) -> str:
    """int8 (dynamic quantisation) is CPU-only: on a GPU it becomes fp16."""
    if precision == "int8" and not str(device).startswith("cpu"):
        return "fp16"
    return precision


class EngineGenerator(Generator):
    """Generator interface backed by the continuous-batching engine (HF for other models)."""

    def __init__(
        self,
        registry: ModelRegistry,
        precision: str = "fp32",
        max_batch: int = 16,
        kv_cache: str = "auto",
    ) -> None:
        super().__init__(registry)
        self.precision = precision
        self.max_batch = max_batch
        self.kv_cache = kv_cache

    def run(
        self,
        model_key: str,
        prompt: str | Sequence[int],
        params: SamplingParams,
        on_delta: DeltaCallback | None = None,
        should_stop: StopCheck | None = None,
        seed: int | None = None,
    ) -> Generation:
        """Like generate(), with the generated ids and why it stopped (eos|length|stopped)."""
        loaded = self.registry.get(model_key)
        engine = engine_for(loaded, self.precision, self.max_batch, self.kv_cache)
        if engine is None:
            return super().run(model_key, prompt, params, on_delta, should_stop, seed)
        ids = _input_ids(loaded, prompt)[0].tolist()
        if len(ids) >= engine.n_positions:  # the window module trims; this is a last resort
            ids = ids[-(engine.n_positions - 1) :]
        deltas: queue.SimpleQueue[str] = queue.SimpleQueue()
        request = Request(
            ids,
            params,
            seed=seed,
            bad_words_ids=bad_words_ids(loaded.tokenizer, params.bad_words) or (),
            on_delta=deltas.put,
        )
        result = _wait(engine.submit(request), deltas, on_delta, should_stop)
        if result.stop_reason == StopReason.ERROR:
            raise RuntimeError(f"generation engine failed: {result.error}")
        return Generation(result.text, result.token_ids, result.stop_reason)

    def run_many(
        self,
        model_key: str,
        prompt: str | Sequence[int],
        params: SamplingParams,
        n: int,
        on_delta: Callable[[int, str], None] | None = None,
        should_stop: StopCheck | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        """`n` continuations of one prompt as `n` rows of the batch: submitted together,
        they are admitted in one step and prefilled once (Engine._prefill copies the
        first row's keys/values to its twins). on_delta(row, delta) streams each row."""
        loaded = self.registry.get(model_key)
        engine = engine_for(loaded, self.precision, self.max_batch, self.kv_cache)
        if engine is None:
            return [
                super(EngineGenerator, self).run(
                    model_key, prompt, params,
                    None if on_delta is None else (lambda d, i=i: on_delta(i, d)), should_stop,
                )
                for i in range(n)
            ]  # fmt: skip
        ids = tuple(_input_ids(loaded, prompt)[0].tolist())
        if len(ids) >= engine.n_positions:
            ids = ids[-(engine.n_positions - 1) :]
        deltas: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        bad = bad_words_ids(loaded.tokenizer, params.bad_words) or ()
        handles = engine.submit_many(
            [
                Request(ids, params, seed=None if seed is None else seed + i, bad_words_ids=bad,
                        on_delta=lambda d, i=i: deltas.put((i, d)))
                for i in range(n)
            ]
        )  # fmt: skip
        results = _wait_all(handles, deltas, on_delta, should_stop)
        for result in results:
            if result.stop_reason == StopReason.ERROR:
                raise RuntimeError(f"generation engine failed: {result.error}")
        return [Generation(r.text, r.token_ids, r.stop_reason) for r in results]


def _wait_all(
    handles: list[Any],
    deltas: queue.SimpleQueue[tuple[int, str]],
    on_delta: Callable[[int, str], None] | None,
    should_stop: StopCheck | None,
) -> list[EngineResult]:
    """Relay every row's deltas on this thread until all end; cancel them all on stop."""

    def drain() -> None:
        while True:
            try:
                row, delta = deltas.get_nowait()
            except queue.Empty:
                return
            if on_delta is not None:
                on_delta(row, delta)

    while pending := [h for h in handles if not h.done]:
        pending[0]._done.wait(POLL_SECONDS)
        drain()
        if should_stop is not None and should_stop():
            for handle in handles:
                handle.cancel()
            results = [h.wait() for h in handles]
            drain()
            return results
    drain()
    return [h.result for h in handles]


def _wait(
    handle: Any,
    deltas: queue.SimpleQueue[str],
    on_delta: DeltaCallback | None,
    should_stop: StopCheck | None,
) -> EngineResult:
    """Relay deltas on this thread until the request ends; cancel it when told to stop."""
    while True:
        finished = handle._done.wait(POLL_SECONDS)
        _drain(deltas, on_delta)
        if finished:
            return handle.result
        if should_stop is not None and should_stop():
            handle.cancel()
            result = handle.wait()
            _drain(deltas, on_delta)
            return result


def _drain(deltas: queue.SimpleQueue[str], on_delta: DeltaCallback | None) -> None:
    while True:
        try:
            delta = deltas.get_nowait()
        except queue.Empty:
            return
        if on_delta is not None:
            on_delta(delta)


def build_generator(config: Any, registry: ModelRegistry) -> Any:
    """The generator the config asks for: RELAY_ENGINE=batched|hf, RELAY_PRECISION=fp32|int8|..."""
    engine = str(config.get("RELAY_ENGINE") or "batched").lower()
    if engine == "hf":
        return Generator(registry)
    if engine != "batched":
        raise ValueError(f"RELAY_ENGINE must be batched or hf, not {engine!r}")
    precision = str(config.get("RELAY_PRECISION") or "int8").lower()  # within 1% ppl
    if precision not in PRECISIONS:
        raise ValueError(
            f"RELAY_PRECISION must be one of {', '.join(PRECISIONS)}, not {precision!r}"
        )
    kv_cache = str(config.get("RELAY_KV_CACHE") or "auto").lower()
    if kv_cache not in KV_CACHES:
        raise ValueError(f"RELAY_KV_CACHE must be one of {', '.join(KV_CACHES)}, not {kv_cache!r}")
    max_batch = int(config.get("RELAY_MAX_BATCH") or 16)
    return EngineGenerator(registry, precision, max_batch, kv_cache)
