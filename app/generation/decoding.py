"""Why a generation stopped, and the one incremental decoder every generator streams with.

Both generators (Hugging Face `generate` in app/generation/generator.py and the
batching engine in app/generation/engine/batch.py) decode the continuation as
it grows with `IncrementalDecoder` and report one `StopReason`; the job runner
(app/jobs/execute.py) reads only these.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

REPLACEMENT_CHAR = "\ufffd"


class StopReason(StrEnum):
    EOS = "eos"  # the model ended the text
    STOP = "stop"  # a stop string was reached (the text is cut before it)
    LENGTH = "length"  # the token budget ran out
    CANCELLED = "cancelled"  # withdrawn or shutting down: the job is requeued, not completed
    ERROR = "error"  # the generator failed

    @property
    def natural_end(self) -> bool:
        """The text ends where the model meant it to (the cleanup keeps its last sentence)."""
        return self in (StopReason.EOS, StopReason.STOP)


class IncrementalDecoder:
    """Decodes a growing list of token ids and hands on only new, whole characters.

    A byte-level token may end inside a multi-byte character; its decode then
    ends in U+FFFD, and that tail is held back until the next token completes
    it. With stop strings, the text is cut before the first one found, and the
    last len(longest)-1 characters are held back until they cannot start one.
    """

    def __init__(self, tokenizer: Any, stop_strings: Iterable[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.token_ids: list[int] = []
        self.sent = ""  # what has been handed on so far
        self.stopped = False  # a stop string was found

    def push(self, ids: Iterable[int]) -> str:
        """Add generated ids; the new text that may be shown now ("" if none)."""
        self.token_ids.extend(ids)
        return self._delta(final=False)

    def finish(self) -> str:
        """The rest of the text, split characters included, once generation ended."""
        return self._delta(final=True)

    @property
    def text(self) -> str:
        """The whole continuation, cut at a stop string."""
        return self._cut(self._decode())[0]

    def _decode(self) -> str:
        return self.tokenizer.decode(
            self.token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    def _cut(self, text: str) -> tuple[str, bool]:
        found = [i for s in self.stop_strings if (i := text.find(s)) >= 0]
        return (text[: min(found)], True) if found else (text, False)

    def _delta(self, final: bool) -> str:
        if self.stopped:
            return ""
        text, self.stopped = self._cut(self._decode())
        if not (final or self.stopped):
            text = text.rstrip(REPLACEMENT_CHAR)  # a character still split across tokens
            if self.stop_strings:
                hold = max(len(s) for s in self.stop_strings) - 1
                text = text[: max(len(self.sent), len(text) - hold)]
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""  # nothing new, or a tokenizer that rewrites earlier text: wait
        delta, self.sent = text[len(self.sent) :], text
        return delta
