"""What a caller of the batching engine holds: a Request, its RequestHandle and the result.

`Engine.submit(Request)` returns a RequestHandle; the engine thread resolves it
with an EngineResult (its StopReason from app/generation/decoding.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.generation.decoding import StopReason
from app.generation.sampling import SamplingParams

if TYPE_CHECKING:
    from app.generation.engine.batch import Engine

_IDS = itertools.count(1)


@dataclass
class Request:
    """One continuation to write: prompt ids, sampling settings, stop rules and budget."""

    prompt_ids: Sequence[int]
    params: SamplingParams
    seed: int | None = None  # None: a fresh random seed
    stop_strings: tuple[str, ...] = ()  # the text is cut before the first one found
    stop_on_eos: bool = True
    bad_words_ids: Sequence[Sequence[int]] = ()
    on_delta: Callable[[str], None] | None = None  # called on the engine thread


@dataclass(frozen=True)
class EngineResult:
    text: str  # the continuation, special tokens dropped, cut at a stop string
    token_ids: list[int]  # generated ids (eos not included)
    stop_reason: StopReason
    ttft_s: float  # submit -> first token
    latency_s: float  # submit -> finished
    error: str = ""


class RequestHandle:
    """The caller's side of a submitted request: wait for it, or cancel it."""

    def __init__(self, request: Request, engine: Engine) -> None:
        self.id = next(_IDS)
        self.request = request
        self.submitted = time.perf_counter()
        self.first_token_at: float | None = None
        self.result: EngineResult | None = None
        self._engine = engine
        self._done = threading.Event()
        self.cancelled = False

    def cancel(self) -> None:
        """Withdraw the request; its slot is freed at the next step."""
        self.cancelled = True
        self._engine._wake()

    def wait(self, timeout: float | None = None) -> EngineResult | None:
        self._done.wait(timeout)
        return self.result

    @property
    def done(self) -> bool:
        return self._done.is_set()
