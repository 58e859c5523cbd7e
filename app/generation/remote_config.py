"""Remote models: a model key served by an OpenAI-compatible server (vLLM, TGI, llama.cpp's
llama-server, Ollama) instead of our own processes.

RELAY_REMOTE_MODELS holds a JSON object (or names a .json file holding one), key -> entry:

    {"big-en": {"base_url": "http://gpu1:8000", "model": "meta-llama/Llama-3.1-8B",
                "api_key_env": "VLLM_API_KEY", "name": "Llama 3.1 8B", "language": "en",
                "context": 8192, "max_concurrent": 8, "tokenizer": "server",
                "connect_timeout": 5, "read_timeout": 60, "stop": []}}

Only base_url is required. The key itself is never written anywhere: api_key_env names
the variable holding it, read when a request is made. No Flask, no torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REMOTE_PREFIX = "remote:"  # RELAY_MODELS' source for a remote key
TOKENIZERS = ("server", "estimate")  # or a local tokenizer folder / hub id
_FIELDS = {
    "base_url", "model", "api_key_env", "name", "language", "context", "max_concurrent",
    "tokenizer", "connect_timeout", "read_timeout", "stop", "min_p", "chars_per_token",
    "retry_backoff",
}  # fmt: skip


@dataclass(frozen=True)
class RemoteModel:
    """One remote model key; `tokenizer` is "server" (/tokenize), "estimate"
    (chars_per_token characters per token) or a local tokenizer's folder or hub id."""

    key: str
    base_url: str
    model: str = ""  # the server's name for it ("" = the server's only model)
    api_key_env: str = ""  # the environment variable holding the API key ("" = none)
    name: str = ""
    language: str | None = None
    context: int = 2048
    max_concurrent: int = 4  # requests in flight from one worker process
    tokenizer: str = "server"
    connect_timeout: float = 5.0
    read_timeout: float = 60.0  # the longest wait for the next streamed piece
    stop: tuple[str, ...] = field(default_factory=tuple)
    min_p: float | None = None
    chars_per_token: float = 3.0  # "estimate": low, so the prompt rather fits than not
    retry_backoff: float = 1.0  # seconds before the second try of a failed request, doubling

    @property
    def source(self) -> str:
        return REMOTE_PREFIX + self.key

    @property
    def display_name(self) -> str:
        return self.name or self.model or self.key

    def api_key(self) -> str | None:
        """The key from its variable at call time (rotated keys need no restart)."""
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None

    def headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}


def is_remote_source(source: str) -> bool:
    return source.startswith(REMOTE_PREFIX)


def parse_remote_models(value: str | dict[str, Any] | None) -> dict[str, RemoteModel]:
    """RELAY_REMOTE_MODELS (inline JSON, a .json file's path, or an already parsed dict)."""
    if isinstance(value, dict):
        raw: Any = value
    elif not (value or "").strip():
        return {}
    elif value.strip().startswith("{"):
        raw = json.loads(value)
    else:
        raw = json.loads(Path(value.strip()).expanduser().read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("RELAY_REMOTE_MODELS must be a JSON object: key -> {base_url, ...}")
    return {str(key): _entry(str(key), entry) for key, entry in raw.items()}


def _entry(key: str, entry: Any) -> RemoteModel:
    if isinstance(entry, RemoteModel):
        return entry
    if not isinstance(entry, dict) or not str(entry.get("base_url", "")).startswith("http"):
        raise ValueError(f"remote model {key!r} needs a base_url starting with http")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"remote model {key!r}: unknown fields {', '.join(sorted(unknown))}")
    values = dict(entry)
    values["base_url"] = str(values["base_url"]).rstrip("/").removesuffix("/v1")
    values["stop"] = tuple(str(s) for s in values.get("stop") or ())
    for name in ("context", "max_concurrent"):
        if name in values and (not isinstance(values[name], int) or values[name] < 1):
            raise ValueError(f"remote model {key!r}: {name} must be a positive integer")
    return RemoteModel(key=key, **values)
