"""Generation on a remote OpenAI-compatible server: streamed `/v1/completions` over httpx.

`RemoteGenerator.run` has the local generators' signature, so the job code treats a remote
model like a local one: every streamed piece is handed to `on_delta` as it arrives, and
the result carries one `StopReason`. A transient failure (connection refused, a timeout,
429/503, a stream cut before the server said it finished) raises `RemoteUnavailable`,
which the job runner retries with `backoff_seconds`; any other refusal raises
`RemoteRefused`. Each process holds one client per remote model, whose semaphore bounds
the requests in flight to the model's `max_concurrent`. No Flask, no torch.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from app.generation.decoding import StopReason
from app.generation.remote_config import RemoteModel
from app.generation.sampling import SamplingParams

DeltaCallback = Callable[[str], None]
StopCheck = Callable[[], bool]
RETRY_AFTER_MAX = 30.0  # the longest wait between two tries, whatever Retry-After asks
PROBE_TIMEOUT = 2.0
PROBE_TTL = 5.0  # /models and /ready ask the server at most this often per process
_CLIENTS: dict[RemoteModel, RemoteClient] = {}
_GUARD = threading.Lock()


class RemoteUnavailable(RuntimeError):
    """The server could not be reached or gave up mid-answer; worth another try later."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class RemoteRefused(RuntimeError):
    """The server answered with an error another try will not fix (400, 401, 404 ...)."""


@dataclass(frozen=True)
class RemoteGeneration:
    text: str  # the streamed pieces joined, not yet cleaned
    token_ids: list[int]  # always empty: the server's ids are not streamed back
    stop_reason: StopReason


def backoff_seconds(tries: int, retry_after: float | None, base: float) -> float:
    """The wait before try `tries + 1`: the server's Retry-After, else base * 2^(tries-1)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_AFTER_MAX)
    return min(base * 2 ** (tries - 1), RETRY_AFTER_MAX)


def completion_payload(
    spec: RemoteModel,
    prompt: str,
    params: SamplingParams,
    logit_bias: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The request body: OpenAI's fields plus the top_k / repetition extensions vLLM and
    llama.cpp accept (each ignores the other's spelling). no_repeat_ngram_size and
    multi-token bans need our own engine and are not sent (README: remote models);
    single-token bans go as OpenAI's logit_bias (`single_token_bans`)."""
    body: dict[str, Any] = {
        "prompt": prompt,
        "stream": True,
        "max_tokens": params.max_new_tokens,
        "temperature": max(params.temperature, 0.0),
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,  # -1: no top-k cut
        "repeat_penalty": params.repetition_penalty,  # llama.cpp
        "repetition_penalty": params.repetition_penalty,  # vLLM, TGI
    }
    if spec.model:
        body["model"] = spec.model
    if spec.stop:
        body["stop"] = list(spec.stop)
    if spec.min_p is not None:
        body["min_p"] = spec.min_p
    if logit_bias:
        body["logit_bias"] = logit_bias
    return body


@functools.lru_cache(maxsize=256)
def single_token_bans(spec: RemoteModel, phrases: tuple[str, ...]) -> dict[str, int]:
    """logit_bias forbidding the banned phrases' variants that are one token of the
    model's vocabulary (app/generation/banned.py); none without an exact tokenizer."""
    if not phrases or spec.tokenizer == "estimate":
        return {}
    from app.generation.banned import phrase_variants
    from app.generation.remote_tokens import remote_tokenizer

    tokenizer = remote_tokenizer(spec)
    bias: dict[str, int] = {}
    for phrase in phrases:
        for variant in phrase_variants(phrase):
            ids = tokenizer.encode(variant, add_special_tokens=False)
            if len(ids) == 1:
                bias[str(ids[0])] = -100  # OpenAI's ban: the token is never sampled
    return bias


class RemoteClient:
    """One remote model's connection pool and its per-process bound on requests in flight."""

    def __init__(self, spec: RemoteModel) -> None:
        self.spec = spec
        self.slots = threading.BoundedSemaphore(spec.max_concurrent)
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests seen at once (the bound's evidence)
        self._count = threading.Lock()
        self._probed: tuple[float, str | None] | None = None  # (when, what it said)
        timeout = httpx.Timeout(spec.read_timeout, connect=spec.connect_timeout)
        self.http = httpx.Client(base_url=spec.base_url, timeout=timeout)

    def probe(self) -> str | None:
        """None when the server answers GET /v1/models, else what is wrong (never the key);
        asked at most once per PROBE_TTL seconds."""
        now = time.monotonic()
        if self._probed is None or now - self._probed[0] > PROBE_TTL:
            self._probed = (now, self._ask())
        return self._probed[1]

    def _ask(self) -> str | None:
        try:
            response = self.http.get(
                "/v1/models", headers=self.spec.headers(), timeout=PROBE_TIMEOUT
            )
        except httpx.HTTPError as exc:
            return f"remote server {self.spec.base_url} unreachable: {type(exc).__name__}"
        if response.status_code >= 400:
            return f"remote server {self.spec.base_url} answered HTTP {response.status_code}"
        return None

    def tokenize(self, text: str) -> list[int]:
        """Token ids from the server's /tokenize (llama.cpp's "content", vLLM's "prompt")."""
        body = {"content": text, "prompt": text, "add_special": False}
        if self.spec.model:
            body["model"] = self.spec.model
        data = self._post("/tokenize", body)
        return [t if isinstance(t, int) else t["id"] for t in data["tokens"]]

    def detokenize(self, ids: Sequence[int]) -> str:
        body: dict[str, Any] = {"tokens": list(ids)}
        if self.spec.model:
            body["model"] = self.spec.model
        data = self._post("/detokenize", body)
        return str(data.get("content", data.get("prompt", "")))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.http.post(path, json=body, headers=self.spec.headers())
        except httpx.HTTPError as exc:
            raise RemoteUnavailable(_transport_detail(exc)) from exc
        _raise_for_status(response)
        return response.json()

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        on_delta: DeltaCallback | None,
        should_stop: StopCheck | None,
    ) -> RemoteGeneration:
        """One streamed completion, waiting for a free slot first."""
        with self.slots:
            with self._count:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return self._stream(prompt, params, on_delta, should_stop)
            finally:
                with self._count:
                    self.in_flight -= 1

    def _stream(
        self,
        prompt: str,
        params: SamplingParams,
        on_delta: DeltaCallback | None,
        should_stop: StopCheck | None,
    ) -> RemoteGeneration:
        bans = single_token_bans(self.spec, tuple(params.bad_words))
        body = completion_payload(self.spec, prompt, params, logit_bias=bans)
        pieces: list[str] = []
        finish: str | None = None
        try:
            with self.http.stream(
                "POST", "/v1/completions", json=body, headers=self.spec.headers()
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response)
                for piece, reason in _sse_pieces(response.iter_lines()):
                    if should_stop is not None and should_stop():
                        return RemoteGeneration("".join(pieces), [], StopReason.CANCELLED)
                    if piece:
                        pieces.append(piece)
                        if on_delta is not None:
                            on_delta(piece)
                    finish = reason or finish
        except httpx.HTTPError as exc:
            raise RemoteUnavailable(_transport_detail(exc)) from exc
        if finish is None:
            raise RemoteUnavailable("the model server ended the stream before the answer")
        reason = StopReason.LENGTH if finish == "length" else StopReason.EOS
        return RemoteGeneration("".join(pieces), [], reason)


def _sse_pieces(lines: Any) -> Any:
    """(text, finish_reason) per server-sent event until [DONE]."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alives
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            choice = json.loads(data)["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RemoteUnavailable("the model server sent an unreadable event") from exc
        yield str(choice.get("text") or ""), choice.get("finish_reason")


def _raise_for_status(response: httpx.Response) -> None:
    code = response.status_code
    if code < 400:
        return
    if code in (408, 429) or code >= 500:
        raise RemoteUnavailable(
            f"the model server answered HTTP {code}", _retry_after(response.headers)
        )
    raise RemoteRefused(f"the model server refused the request (HTTP {code})")


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after", "").strip()
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP date: wait the default back-off instead
        return None


def _transport_detail(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "the model server is not reachable"
    if isinstance(exc, httpx.TimeoutException):
        return "the model server timed out"
    return "the connection to the model server was cut"


def client_for(spec: RemoteModel) -> RemoteClient:
    """The process's client for this remote model (one semaphore per model per process)."""
    client = _CLIENTS.get(spec)
    if client is None:
        with _GUARD:
            client = _CLIENTS.setdefault(spec, RemoteClient(spec))
    return client


class RemoteGenerator:
    """The generator interface for remote keys: `run(model_key, prompt, params, ...)`."""

    def __init__(self, remotes: dict[str, RemoteModel]) -> None:
        self.remotes = remotes

    def run(
        self,
        model_key: str,
        prompt: str | Sequence[int],
        params: SamplingParams,
        on_delta: DeltaCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> RemoteGeneration:
        """Stream the continuation of `prompt` (text, as every OpenAI-compatible server takes)."""
        if not isinstance(prompt, str):
            raise TypeError("a remote model takes the prompt as text")
        return client_for(self.remotes[model_key]).stream(prompt, params, on_delta, should_stop)
