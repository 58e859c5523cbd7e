"""Reuse of a story's previous prompt: keys and values of finished sequences, matched by prefix.

In a relay the next prompt is usually the previous prompt plus the model's
turn plus a human turn, so most of its tokens were already run through the
model. When a sequence finishes, its cached keys/values (prompt + generated)
are kept here (least recently used first out); a new prompt that shares at
least `min_tokens` leading tokens with an entry starts from a copy of them
and only the rest is prefilled. A prompt whose window was trimmed from the
front shares no prefix and is prefilled in full, as before.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

KV = torch.Tensor  # (L, 2, H, T, D): keys and values (KVCache.save)


class PrefixCache:
    """At most `entries` finished contexts, each (ids, keys/values)."""

    def __init__(self, entries: int = 8, min_tokens: int = 32) -> None:
        self.entries = entries
        self.min_tokens = min_tokens
        self._items: OrderedDict[int, tuple[torch.Tensor, KV]] = OrderedDict()
        self._next = 0
        self.hits = 0
        self.reused_tokens = 0

    def put(self, ids: torch.Tensor, kv: KV) -> None:
        """Keep a finished context (ids (T,) whose keys/values are kv); drop what it extends."""
        if self.entries <= 0 or ids.shape[0] < self.min_tokens:
            return
        for key, (old, _) in list(self._items.items()):
            n = old.shape[0]
            if n <= ids.shape[0] and torch.equal(old, ids[:n]):
                del self._items[key]  # the new entry covers it
        self._items[self._next] = (ids.clone(), kv)
        self._next += 1
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def match(self, prompt: torch.Tensor) -> tuple[int, KV | None]:
        """(reusable length, keys/values) of the entry sharing the longest prefix with prompt."""
        best, best_key = 0, None
        for key, (ids, _) in self._items.items():
            n = min(ids.shape[0], prompt.shape[0])
            differ = (ids[:n] != prompt[:n]).nonzero()
            common = int(differ[0]) if differ.numel() else n
            if common > best:
                best, best_key = common, key
        if best_key is None or best < self.min_tokens:
            return 0, None
        self._items.move_to_end(best_key)
        self.hits += 1
        return best, self._items[best_key][1]
