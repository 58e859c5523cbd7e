"""Counting a remote model's tokens for the prompt window (app/generation/window.py).

The window code needs `encode` / `decode`; a remote model's tokenizer is one of:

- "server": the server's own `/tokenize` and `/detokenize` (llama.cpp, vLLM): exact;
- a local tokenizer folder or hub id (the model's Hugging Face tokenizer): exact, no
  round trips;
- "estimate": no tokenizer at all (Ollama, TGI): text is cut into pieces of
  `chars_per_token` characters (3 by default, below English's ~4 per token, so the
  prompt errs on the short side); a language with denser tokens wants a lower value.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from app.generation.remote import client_for
from app.generation.remote_config import RemoteModel


class ServerTokenizer:
    """encode/decode through the server (each call is one HTTP round trip)."""

    def __init__(self, spec: RemoteModel) -> None:
        self.client = client_for(spec)

    def encode(self, text: str, **_: Any) -> list[int]:
        return self.client.tokenize(text) if text else []

    def decode(self, ids: Sequence[int], **_: Any) -> str:
        return self.client.detokenize(ids) if ids else ""


class EstimateTokenizer:
    """Fixed-width character pieces standing in for tokens; ids index this instance's table."""

    def __init__(self, chars_per_token: float) -> None:
        self.width = max(1, int(chars_per_token))
        self.pieces: list[str] = []
        self.ids: dict[str, int] = {}

    def encode(self, text: str, **_: Any) -> list[int]:
        out = []
        for start in range(0, len(text), self.width):
            piece = text[start : start + self.width]
            if piece not in self.ids:
                self.ids[piece] = len(self.pieces)
                self.pieces.append(piece)
            out.append(self.ids[piece])
        return out

    def decode(self, ids: Sequence[int], **_: Any) -> str:
        return "".join(self.pieces[i] for i in ids)


def remote_tokenizer(spec: RemoteModel) -> Any:
    """The tokenizer the spec names (a local one is loaded with transformers)."""
    if spec.tokenizer == "server":
        return ServerTokenizer(spec)
    if spec.tokenizer == "estimate":
        return EstimateTokenizer(spec.chars_per_token)
    return _local_tokenizer(spec.tokenizer)


@functools.lru_cache(maxsize=8)
def _local_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    from app.generation.registry import is_local_source

    return AutoTokenizer.from_pretrained(source, local_files_only=is_local_source(source))
