"""A model turn's length in a writer's words, and the models a story may pick by name.

The API and the relay count the model's turn in tokens (max_new_tokens); a page
speaks of words. One token stands for the characters per token that
`flask model eval` measured on the model's held-out text (eval.json), and a
word for the characters per word of that language's fiction (measured on the
shipped corpora: en 5.39, ko 4.03 counting the space, a Korean word being an
eojeol). Unmeasured models use a typical figure for their language.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from app.generation.model_info import model_info

# Characters per whitespace-separated word, the space included (shared/corpora en/, ko/).
CHARS_PER_WORD = {"en": 5.39, "ko": 4.03}
# For a model never evaluated: GPT-2's BPE on English prose, KoGPT2's on Korean.
TYPICAL_CHARS_PER_TOKEN = {"en": 4.0, "ko": 1.8}
DEFAULT_TOKENS = 80


@dataclass(frozen=True)
class ModelChoice:
    """A model as the new-story form shows it."""

    key: str
    name: str  # the card's name, else the registry's display name, else the key
    chars_per_token: float | None


def model_choices() -> list[ModelChoice]:
    """Every configured model, named by its card (or the registry's name, or its key)."""
    from app.generation.registry import is_local_source

    choices = []
    for key, source in sorted(current_app.config["RELAY_MODELS"].items()):
        info = model_info(source)
        # The registry's display name: the folder's name, or the hub id (as GET /models).
        listed = Path(source).name if is_local_source(source) else source
        choices.append(ModelChoice(key, info.card_name or listed or key, info.chars_per_token))
    return choices


def words_per_token(language: str, model_key: str | None = None) -> float:
    """How many of the language's words one of the model's tokens makes, on average."""
    key = model_key or language
    source = current_app.config["RELAY_MODELS"].get(key)
    measured = model_info(source).chars_per_token if source else None
    chars = measured or TYPICAL_CHARS_PER_TOKEN.get(language, 4.0)
    return chars / CHARS_PER_WORD.get(language, 5.39)


def tokens_for_words(words: int, language: str, model_key: str | None = None) -> int:
    """The max_new_tokens that gives about `words` words."""
    return max(1, round(words / words_per_token(language, model_key)))


def words_for_tokens(tokens: int, language: str, model_key: str | None = None) -> int:
    """About how many words `tokens` tokens make."""
    return max(1, round(tokens * words_per_token(language, model_key)))


def word_bounds(language: str, model_key: str | None = None) -> tuple[int, int, int]:
    """(fewest, default, most) words a model turn may ask for, from the token limits."""
    cfg = current_app.config
    low, high = cfg["AI_TOKENS_MIN"], cfg["AI_TOKENS_MAX"]
    per = words_per_token(language, model_key)
    # Rounded inwards, so that any number of words in the range converts to allowed tokens.
    fewest = max(1, -(-round(low * per * 100) // 100))
    most = max(fewest, int(high * per))
    default = min(max(round(min(DEFAULT_TOKENS, high) * per), fewest), most)
    return fewest, default, most
