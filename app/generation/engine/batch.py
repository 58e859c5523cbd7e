"""The continuous-batching engine: requests, handles, and the step loop.

One step: (1) drop cancelled sequences, (2) one decode forward for every
running sequence, (3) prefill the waiting requests that fit (free slots and a
prompt-token budget per step, so a burst of long prompts does not stall the
running ones for long), (4) sample the next token of all of them in one
batched call, (5) append, check each sequence's stop rules and budget, stream
its delta, and let finished sequences leave (their slot is compacted away).

A background thread runs steps while there is work and sleeps otherwise; with
`start=False` a caller (a test) drives `step()` itself. Callbacks (`on_delta`)
run on the engine thread and must be quick; the runner-facing adapter hands
deltas over through a queue instead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from app.generation.decoding import IncrementalDecoder, StopReason
from app.generation.engine.model import GPT2Engine, KVCache
from app.generation.engine.prefix import PrefixCache
from app.generation.engine.quant import convert
from app.generation.engine.requests import EngineResult, Request, RequestHandle
from app.generation.engine.sampler import BatchContext, RowSettings, sample
from app.generation.story_cache import StoryCache, mix_rows

log = logging.getLogger(__name__)


@dataclass
class _Sequence:
    handle: RequestHandle
    rows: RowSettings
    budget: int  # max new tokens (clamped to the context)
    prompt_len: int
    pos: int = 0  # tokens in the cache
    generated: list[int] = field(default_factory=list)
    decoder: IncrementalDecoder | None = None  # the text handed to on_delta so far
    finish: StopReason | None = None  # set when the sequence must leave


class Engine:
    """Continuous batching for one GPT-2 model in one precision on one device."""

    def __init__(
        self,
        hf_model: Any,
        tokenizer: Any,
        precision: str = "fp32",
        max_batch: int = 16,
        prefill_tokens: int = 1024,
        start: bool = True,
        prefix_entries: int = 8,
        kv_cache: str = "auto",
        story_cache: StoryCache | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.story_cache = story_cache  # mixes every row's next-token distribution
        self.precision = precision
        self.kv_cache = kv_cache
        self.max_batch = max_batch
        self.prefill_tokens = prefill_tokens
        eos = getattr(hf_model.generation_config, "eos_token_id", None)
        eos = tokenizer.eos_token_id if eos is None else eos
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.prefix = PrefixCache(prefix_entries)
        self._memo: dict[str, Any] = {}  # the sampler's per-batch settings
        self.active: list[_Sequence] = []  # active[i] lives in slot i
        self._waiting: deque[RequestHandle] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.steps = 0
        self.peak_batch = 0  # the most sequences one step has run (several jobs batched)
        self.twin_prefills = 0  # rows started from another row's prefill (candidates)
        self.share_prefill = True  # False: every row prefills on its own (bench/generation.py)
        self._prefilled: dict[tuple[int, ...], tuple[int, torch.Tensor]] = {}
        self._thread: threading.Thread | None = None
        if start:
            self._start_thread(hf_model)
        else:
            self._build(hf_model)

    def _build(self, hf_model: Any) -> None:
        """The weights in this precision, the KV cache and the id history."""
        self.net = convert(GPT2Engine(hf_model), self.precision, kv_cache=self.kv_cache)
        self.n_positions = self.net.n_positions
        with torch.inference_mode():
            self.cache: KVCache = self.net.new_cache(self.max_batch)
            self.history = torch.zeros(
                (self.max_batch, self.n_positions), dtype=torch.long, device=self.net.device
            )
            self.hidden = None  # (S, T_max, C) unit final hidden states: the story cache's keys
            if self.story_cache is not None:
                shape = (self.max_batch, self.n_positions, self.net.n_embd)
                self.hidden = torch.zeros(shape, device=self.net.device)

    def _start_thread(self, hf_model: Any) -> None:
        """Build and run on one thread of its own. All of the engine's torch work then runs
        on a single OpenMP team: measured here, a step loop on another thread than the one
        that had built the weights ran 1.5-2x slower (libgomp throttles its spin-waiting
        once it manages more threads than there are cores; bench/results-generation.txt)."""
        built, failed = threading.Event(), []

        def run() -> None:
            try:
                self._build(hf_model)
            except BaseException as exc:  # re-raised in the constructor's thread
                failed.append(exc)
                return
            finally:
                built.set()
            self._loop()

        self._thread = threading.Thread(target=run, name="relay-engine", daemon=True)
        self._thread.start()
        built.wait()
        if failed:
            raise failed[0]

    # --- public ---------------------------------------------------------------

    def submit(self, request: Request) -> RequestHandle:
        """Queue a request; it joins the running batch at the next step."""
        n = len(request.prompt_ids)
        if n == 0:
            raise ValueError("empty prompt")
        if n >= self.n_positions:
            raise ValueError(
                f"prompt of {n} tokens does not fit a {self.n_positions}-token context"
            )
        handle = RequestHandle(request, self)
        with self._cond:
            if self._closed:
                raise RuntimeError("engine is closed")
            self._waiting.append(handle)
            self._cond.notify()
        return handle

    def submit_many(self, requests: list[Request]) -> list[RequestHandle]:
        """Queue requests together, so they join the batch in the same step (rows of one
        prompt then share its prefill: see _prefill)."""
        for request in requests:
            if not 0 < len(request.prompt_ids) < self.n_positions:
                raise ValueError(f"a prompt of {len(request.prompt_ids)} tokens does not fit")
        handles = [RequestHandle(request, self) for request in requests]
        with self._cond:
            if self._closed:
                raise RuntimeError("engine is closed")
            self._waiting.extend(handles)
            self._cond.notify()
        return handles

    def generate(self, request: Request, timeout: float | None = None) -> EngineResult:
        """Submit and wait (blocking convenience)."""
        handle = self.submit(request)
        if self._thread is None:
            while not handle.done:
                self.step()
        result = handle.wait(timeout)
        if result is None:
            handle.cancel()
            raise TimeoutError("generation did not finish in time")
        return result

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._fail_all("engine closed")

    @property
    def load(self) -> int:
        """Running plus waiting requests."""
        return len(self.active) + len(self._waiting)

    # --- the loop -------------------------------------------------------------

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self.active:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                self.step()
            except Exception as exc:  # a broken step must not hang the waiters
                log.exception("engine step failed")
                self._fail_all(f"{type(exc).__name__}: {exc}")

    @torch.inference_mode()
    def step(self) -> int:
        """One decode step for the running sequences plus prefills; returns the batch size."""
        self._drop_cancelled()
        parts: list[torch.Tensor] = []
        if self.active:
            parts.append(self._decode())  # (B_old, V)
        self._prefilled: dict[tuple[int, ...], tuple[int, torch.Tensor]] = {}
        for handle in self._admit():
            parts.append(self._prefill(handle)[None])  # (1, V)
        if not parts:
            return 0
        logits = torch.cat(parts) if len(parts) > 1 else parts[0]  # (B, V)
        if self.story_cache is not None:
            logits = self._mix_story_cache(logits)
        ctx = BatchContext(self.history, self._lengths(), self._memo)
        tokens = sample(logits, [s.rows for s in self.active], ctx).tolist()  # (B,)
        self._append(tokens)
        self.steps += 1
        batch = len(self.active)
        if batch > self.peak_batch:
            self.peak_batch = batch
            if batch > 1:
                log.info("engine batch of %d sequences (a new peak)", batch)
        self._leave([s for s in self.active if s.finish])
        return batch

    # --- step parts -------------------------------------------------------------

    def _admit(self) -> list[RequestHandle]:
        admitted: list[RequestHandle] = []
        seen: set[tuple[int, ...]] = set()
        tokens = 0
        with self._cond:
            while self._waiting and len(self.active) + len(admitted) < self.max_batch:
                handle = self._waiting[0]
                if handle.cancelled:
                    self._waiting.popleft()
                    self._resolve(handle, [], StopReason.CANCELLED, "")
                    continue
                prompt = tuple(handle.request.prompt_ids)
                twin = prompt in seen and self.share_prefill
                n = 0 if twin else len(prompt)  # a twin's prefill is a copy
                if admitted and tokens + n > self.prefill_tokens:
                    break
                admitted.append(self._waiting.popleft())
                seen.add(prompt)
                tokens += n
        return admitted

    def _prefill(self, handle: RequestHandle) -> torch.Tensor:
        req = handle.request
        slot = len(self.active)
        ids = torch.tensor(list(req.prompt_ids), dtype=torch.long, device=self.net.device)  # (T,)
        n = ids.shape[0]
        twin = self._prefilled.get(tuple(req.prompt_ids)) if self.share_prefill else None
        if twin is not None:  # a row of the same prompt prefilled this step: copy its cache
            return self._copy_prefill(handle, twin, ids)
        reuse, saved = self.prefix.match(ids)
        reuse = min(reuse, n - 1)  # the last prompt token is always run: its logits are needed
        if saved is not None and reuse > 0:
            kv, hidden = saved if self.hidden is not None else (saved, None)
            self.cache.load(slot, kv, reuse)
            if hidden is not None:
                self.hidden[slot, :reuse] = hidden[:reuse]
            self.prefix.reused_tokens += reuse
        else:
            reuse = 0
        keys = self.hidden[slot] if self.hidden is not None else None
        logits = self.net.prefill(ids[reuse:], self.cache, slot, start=reuse, hidden=keys)
        self.history[slot, :n] = ids
        decoder = IncrementalDecoder(self.tokenizer, req.stop_strings)
        seq = _Sequence(handle, _row_settings(req), self._budget(req, n), n, pos=n, decoder=decoder)
        self.active.append(seq)
        self._prefilled[tuple(req.prompt_ids)] = (slot, logits)
        return logits

    def _copy_prefill(
        self, handle: RequestHandle, twin: tuple[int, torch.Tensor], ids: torch.Tensor
    ) -> torch.Tensor:
        """A new row starting from a twin's prefilled prompt: its keys/values (and story
        cache keys) copied, its last logits reused; one prefill serves N candidates."""
        req, (src, logits), n, slot = handle.request, twin, ids.shape[0], len(self.active)
        self.cache.move(src, slot, n)
        if self.hidden is not None:
            self.hidden[slot, :n] = self.hidden[src, :n]
        self.history[slot, :n] = ids
        decoder = IncrementalDecoder(self.tokenizer, req.stop_strings)
        seq = _Sequence(handle, _row_settings(req), self._budget(req, n), n, pos=n, decoder=decoder)
        self.active.append(seq)
        self.twin_prefills += 1
        return logits

    def _decode(self) -> torch.Tensor:
        dev = self.net.device
        tokens = torch.tensor([s.generated[-1] for s in self.active], device=dev)  # (B,)
        positions = torch.tensor([s.pos for s in self.active], device=dev)  # (B,)
        logits = self.net.decode(tokens, positions, self.cache, self.hidden)  # (B, V)
        for seq in self.active:
            seq.pos += 1
        return logits

    def _mix_story_cache(self, logits: torch.Tensor) -> torch.Tensor:
        """Every row mixed with its story cache (app/generation/story_cache.py)."""
        return mix_rows(logits, self.hidden, self.history, self._lengths(), self.story_cache)

    def _lengths(self) -> torch.Tensor:
        lengths = [s.prompt_len + len(s.generated) for s in self.active]
        return torch.tensor(lengths, device=self.net.device)  # (B,)

    def _append(self, tokens: list[int]) -> None:
        now = time.perf_counter()
        rows = torch.arange(len(tokens), device=self.net.device)
        ids = torch.tensor(tokens, device=self.net.device)
        self.history[rows, self._lengths()] = ids
        for seq, token in zip(self.active, tokens, strict=True):
            if seq.handle.first_token_at is None:
                seq.handle.first_token_at = now
            if token in self.eos_ids and seq.handle.request.stop_on_eos:
                seq.finish = StopReason.EOS
                continue
            seq.generated.append(token)
            self._stream(seq)
            if not seq.finish and len(seq.generated) >= seq.budget:
                seq.finish = StopReason.LENGTH

    def _stream(self, seq: _Sequence) -> None:
        """Hand on the new whole characters; a stop string ends the sequence."""
        delta = seq.decoder.push(seq.generated[len(seq.decoder.token_ids) :])
        if seq.decoder.stopped:
            seq.finish = StopReason.STOP
        on_delta = seq.handle.request.on_delta
        if delta and on_delta is not None:
            on_delta(delta)

    def _leave(self, finished: list[_Sequence]) -> None:
        """Resolve finished sequences and compact the slots (the last one fills each hole)."""
        for seq in sorted(finished, key=lambda s: self.active.index(s), reverse=True):
            slot, last = self.active.index(seq), len(self.active) - 1
            if seq.finish != StopReason.CANCELLED and self.prefix.entries > 0:
                saved = self.cache.save(slot, seq.pos)
                if self.hidden is not None:
                    saved = (saved, self.hidden[slot, : seq.pos].clone())
                self.prefix.put(self.history[slot, : seq.pos], saved)
            if slot != last:
                moved = self.active[last]
                self.cache.move(last, slot, moved.pos)
                self.history[slot] = self.history[last]
                if self.hidden is not None:
                    self.hidden[slot, : moved.pos] = self.hidden[last, : moved.pos]
                self.active[slot] = moved
            self.active.pop()
            self._finish(seq)

    def _finish(self, seq: _Sequence) -> None:
        on_delta = seq.handle.request.on_delta
        if seq.finish != StopReason.CANCELLED:
            delta = seq.decoder.finish()
            if delta and on_delta is not None:
                on_delta(delta)
        self._resolve(seq.handle, seq.generated, seq.finish, seq.decoder.text)

    def _drop_cancelled(self) -> None:
        with self._cond:
            withdrawn = [h for h in self._waiting if h.cancelled]
            for handle in withdrawn:
                self._waiting.remove(handle)
        for handle in withdrawn:
            self._resolve(handle, [], StopReason.CANCELLED, "")
        gone = [s for s in self.active if s.handle.cancelled]
        for seq in gone:
            seq.finish = StopReason.CANCELLED
        if gone:
            self._leave(gone)

    def _resolve(
        self, handle: RequestHandle, ids: list[int], reason: StopReason, text: str, error: str = ""
    ) -> None:
        now = time.perf_counter()
        first = handle.first_token_at or now
        handle.result = EngineResult(
            text, list(ids), reason, first - handle.submitted, now - handle.submitted, error
        )
        handle._done.set()

    def _fail_all(self, message: str) -> None:
        with self._cond:
            waiting, self._waiting = list(self._waiting), deque()
        for seq in self.active:
            self._resolve(seq.handle, seq.generated, StopReason.ERROR, "", message)
        self.active = []
        for handle in waiting:
            self._resolve(handle, [], StopReason.ERROR, "", message)

    # --- helpers ----------------------------------------------------------------

    def _budget(self, req: Request, prompt_len: int) -> int:
        return max(1, min(req.params.max_new_tokens, self.n_positions - prompt_len))


def _row_settings(req: Request) -> RowSettings:
    p = req.params
    seed = req.seed if req.seed is not None else random.getrandbits(63)
    return RowSettings(
        temperature=p.temperature,
        top_k=p.top_k,
        top_p=p.top_p,
        repetition_penalty=p.repetition_penalty,
        no_repeat_ngram_size=p.no_repeat_ngram_size,
        bad_words_ids=[list(s) for s in req.bad_words_ids if s],
        rng=random.Random(seed),
    )
