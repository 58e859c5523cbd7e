"""The model registry: model key -> local directory or hub id, loaded once per process.

Loading is lazy (first generation), thread-safe (one lock per source) and
process-wide: two apps in one process (tests) share a loaded model. torch and
transformers are imported inside functions only, so importing this module at
web start-up costs nothing and a forking server master never loads a model.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.generation.remote_config import RemoteModel

log = logging.getLogger(__name__)

_LOAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOADED: dict[tuple[str, str], LoadedModel] = {}
_GUARD = threading.Lock()
_THREADS_SET = False


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to generate: eval mode, on its device."""

    key: str
    source: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    device: str
    max_context: int  # positions the model can attend to (prompt + generated)


def is_local_source(source: str) -> bool:
    """A path (existing, absolute or explicitly relative) rather than a hub id like "gpt2"."""
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().exists()


def pick_device(configured: str = "") -> str:
    """RELAY_DEVICE when set, else cuda when present, else cpu."""
    if configured:
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelRegistry:
    """Maps the configured keys (app.config["RELAY_MODELS"]) to loaded models."""

    def __init__(
        self,
        sources: dict[str, str],
        device: str = "",
        torch_threads: int = 0,
        remotes: dict[str, RemoteModel] | None = None,
    ) -> None:
        self.remotes = dict(remotes or {})  # keys served by an OpenAI-compatible server
        self.sources = dict(sources) | {key: spec.source for key, spec in self.remotes.items()}
        self.configured_device = device
        self.torch_threads = torch_threads

    @classmethod
    def from_config(cls, config: Any) -> ModelRegistry:
        return cls(
            config.get("RELAY_MODELS", {}),
            device=config.get("RELAY_DEVICE", ""),
            torch_threads=int(config.get("RELAY_TORCH_THREADS", 0) or 0),
            remotes=config.get("RELAY_REMOTE_MODELS") or {},
        )

    def remote(self, key: str) -> RemoteModel | None:
        """The remote spec when `key` is served by a remote server, else None."""
        return self.remotes.get(key)

    def keys(self) -> list[str]:
        return sorted(self.sources)

    def get(self, key: str) -> LoadedModel:
        """The loaded model for `key`, loading it on first use; KeyError if not configured."""
        source = self.sources[key]
        device = pick_device(self.configured_device)
        cache_key = (source, device)
        loaded = _LOADED.get(cache_key)
        if loaded is not None:
            return loaded if loaded.key == key else _rekey(loaded, key)
        with _GUARD:
            lock = _LOAD_LOCKS.setdefault(cache_key, threading.Lock())
        with lock:
            loaded = _LOADED.get(cache_key)
            if loaded is None:
                loaded = _load(key, source, device, self.torch_threads)
                _LOADED[cache_key] = loaded
        return loaded if loaded.key == key else _rekey(loaded, key)

    def is_loaded(self, key: str) -> bool:
        if key in self.remotes:
            return False  # nothing of it lives in this process
        source = self.sources.get(key)
        return any(src == source for src, _device in _LOADED)

    def check(self) -> dict[str, str | None]:
        """Per key: None when the model looks loadable, else what is wrong (no loading)."""
        return {
            key: _remote_problem(self.remotes[key]) if key in self.remotes else _problem(source)
            for key, source in sorted(self.sources.items())
        }

    def ready(self) -> bool:
        """True when every configured model looks loadable (for /api/v1/ready)."""
        return bool(self.sources) and all(p is None for p in self.check().values())

    def _display_name(self, key: str, source: str) -> str:
        if key in self.remotes:
            return self.remotes[key].display_name
        return Path(source).name if is_local_source(source) else source

    def describe(self) -> list[dict[str, Any]]:
        """One dict per model for listings such as GET /api/v1/models."""
        problems = self.check()
        return [
            {
                "key": key,
                "source": _source_kind(source, key in self.remotes),
                "name": self._display_name(key, source),
                "language": self.remotes[key].language if key in self.remotes else None,
                "loaded": self.is_loaded(key),
                "ready": problems[key] is None,
                "problem": problems[key],
            }
            for key, source in sorted(self.sources.items())
        ]


def _source_kind(source: str, remote: bool) -> str:
    if remote:
        return "remote"
    return "local" if is_local_source(source) else "hub"


def _remote_problem(spec: RemoteModel) -> str | None:
    """Is the server answering? (httpx is imported only when a remote model is configured.)"""
    from app.generation.remote import client_for

    return client_for(spec).probe()


def _rekey(loaded: LoadedModel, key: str) -> LoadedModel:
    return LoadedModel(
        key, loaded.source, loaded.model, loaded.tokenizer, loaded.device, loaded.max_context
    )


def _problem(source: str) -> str | None:
    if is_local_source(source):
        path = Path(source).expanduser()
        if not path.is_dir():
            return f"model directory {path} does not exist"
        try:
            json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"config.json in {path} is not readable: {exc}"
        return None
    if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True") and not _hub_cached(source):
        return f"hub model {source} is not cached and HF_HUB_OFFLINE is set"
    return None  # downloaded on first use by an online operator


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers always brings it
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _load(key: str, source: str, device: str, torch_threads: int) -> LoadedModel:
    """Load tokenizer and model; float32 on CPU (fp16 checkpoints are slow or unsupported there)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a server log is not a terminal
    global _THREADS_SET
    if torch_threads > 0 and not _THREADS_SET:
        torch.set_num_threads(torch_threads)
        _THREADS_SET = True
    local = is_local_source(source)
    target = str(Path(source).expanduser()) if local else source
    log.info("loading model %s from %s on %s", key, target, device)
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=local)
    model = AutoModelForCausalLM.from_pretrained(target, local_files_only=local)
    if device == "cpu" and model.dtype in (torch.float16, torch.bfloat16):
        model = model.float()
    model.to(device)
    model.eval()
    return LoadedModel(key, source, model, tokenizer, device, _max_context(model, tokenizer))


def _max_context(model: Any, tokenizer: Any) -> int:
    config = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    length = getattr(tokenizer, "model_max_length", 0)
    return length if 0 < length < 1_000_000 else 1024
