"""Field validation for stories and turns: lengths, choices, text clean-up.

Raises app.errors.Invalid (422) with the offending field named; nothing is
stored when validation fails because it runs before any write.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from app.errors import Conflict, Invalid
from app.labels import language_label
from app.moderation.filter import STORY_STRICTNESS
from app.stories.models import LANGUAGES, POLICIES, SKIP_ACTIONS, VISIBILITIES, WRITE_ACCESS

PRESETS = ("careful", "balanced", "wild")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What a text must contain to be kept (it is trimmed and its control characters dropped),
# and what a title must contain to be seen. The API's schemas publish these patterns, so
# they spell whitespace out (str.isspace's set) instead of \s, whose meaning differs
# between Python and the ECMA-262 dialect JSON Schema uses.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_TEXT_CHAR = rf"[^{_SPACE}\x00-\x08\x0e-\x1f\x7f]"
_VISIBLE_CHAR = rf"[^{_SPACE}\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2060-\u206f\ufeff]"
TEXT_PATTERN = rf"^[^\x00]*{_TEXT_CHAR}[^\x00]*$"
TITLE_PATTERN = rf"^[^\x00]*{_VISIBLE_CHAR}[^\x00]*$"
_VISIBLE = re.compile(_VISIBLE_CHAR)
TAGS_MAX = 8
TAG_MAX_CHARS = 32
TURN_SECONDS_MAX = 30 * 24 * 3600
SKIP_LIMIT_MAX = 10
BANNED_PHRASES_MAX = 20
BANNED_PHRASE_MAX_CHARS = 80
_BLANK_RUNS = re.compile(r"\n{3,}")
_SPACE_RUNS = re.compile(r"[ \t]+\n")


def clean_text(value: Any, field: str, max_chars: int, required: bool = True) -> str:
    """NFC-normalise, drop control characters, trim; enforce length."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Invalid(_("%(field)s must be a string.", field=field), field=field)
    text = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", _SPACE_RUNS.sub("\n", text)).strip()
    if required and not text:
        raise Invalid(_("%(field)s must not be empty.", field=field), field=field)
    if len(text) > max_chars:
        raise Invalid(
            _(
                "%(field)s is %(length)s characters; the limit is %(limit)s.",
                field=field,
                length=len(text),
                limit=max_chars,
            ),
            field=field,
            limit=max_chars,
        )
    return text


def clean_title(value: Any, max_chars: int) -> str:
    """A title is one line with something visible in it (not only zero-width characters)."""
    title = " ".join(clean_text(value, "title", max_chars).split())
    if not _VISIBLE.search(title):
        raise Invalid(_("title must have visible characters."), field="title")
    return title


def choice(value: Any, field: str, options: tuple[str, ...], default: str | None = None) -> str:
    if value in (None, "") and default is not None:
        return default
    if not isinstance(value, str) or value not in options:
        raise Invalid(
            _("%(field)s must be one of: %(choices)s.", field=field, choices=", ".join(options)),
            field=field,
        )
    return value


def bounded_int(value: Any, field: str, low: int, high: int, default: int) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        raise Invalid(_("%(field)s must be an integer.", field=field), field=field)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity, 1e400
        raise Invalid(_("%(field)s must be an integer.", field=field), field=field) from None
    if isinstance(value, float) and value != number:
        raise Invalid(_("%(field)s must be an integer.", field=field), field=field)
    if not low <= number <= high:
        raise Invalid(
            _("%(field)s must be between %(low)s and %(high)s.", field=field, low=low, high=high),
            field=field,
        )
    return number


def model_for(language: str, model_key: Any) -> str:
    """The model key for a story: the one asked for, or the language's default."""
    registry = current_app.config["RELAY_MODELS"]
    if model_key in (None, ""):
        if language not in registry:
            raise Conflict(
                _(
                    "No default model is configured for %(language)r; pick one of GET /models.",
                    language=language,
                ),
                code="no_default_model",
                field="model",
            )
        return language
    if not isinstance(model_key, str) or model_key not in registry:
        raise Invalid(
            _("Unknown model; configured: %(models)s.", models=", ".join(sorted(registry))),
            field="model",
        )
    writes = model_language(model_key)
    if writes is not None and writes != language:  # the registry's setting, not a typo: 409
        raise Conflict(
            _(
                "The model %(model)r writes %(writes)s; pick a model for %(language)s stories.",
                model=model_key,
                writes=language_label(writes),
                language=language_label(language),
            ),
            code="model_language",
            field="model",
        )
    return model_key


def model_language(model_key: str) -> str | None:
    """The language a model key writes: the key itself ("en", "ko") or its prefix
    ("ko-poetry", "en_gpt2"); None for other keys, which any story may use."""
    for language in LANGUAGES:
        if model_key == language or model_key.startswith((f"{language}-", f"{language}_")):
            return language
    return None


def story_fields(data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Validate the user-settable fields of a story. partial=True for PATCH."""
    cfg = current_app.config
    out: dict[str, Any] = {}
    if not partial or "title" in data:
        out["title"] = clean_title(data.get("title"), cfg["TITLE_MAX_CHARS"])
    if not partial or "language" in data:
        out["language"] = choice(data.get("language"), "language", LANGUAGES)
    if not partial or "opening" in data:
        out["opening"] = clean_text(data.get("opening"), "opening", cfg["OPENING_MAX_CHARS"])
    if not partial or "policy" in data:
        out["policy"] = choice(data.get("policy"), "policy", POLICIES, default="open")
    if not partial or "preset" in data:
        out["preset"] = choice(data.get("preset"), "preset", PRESETS, default="balanced")
    if not partial or "filter_strictness" in data:
        out["filter_strictness"] = choice(
            data.get("filter_strictness"), "filter_strictness", STORY_STRICTNESS, default="site"
        )
    if not partial or "max_new_tokens" in data:
        out["max_new_tokens"] = bounded_int(
            data.get("max_new_tokens"),
            "max_new_tokens",
            cfg["AI_TOKENS_MIN"],
            cfg["AI_TOKENS_MAX"],
            default=min(80, cfg["AI_TOKENS_MAX"]),
        )
    out.update(_room_fields(data, partial))
    out.update(_candidate_fields(data, partial))
    if not partial or "banned_phrases" in data:
        out["banned_phrases"] = clean_banned_phrases(data.get("banned_phrases"))
    if not partial:
        out["model_key"] = model_for(out["language"], data.get("model"))
    elif "model" in data:  # app/stories/relay.py checks it against the story's language
        out["model_key"] = data.get("model")
    return out


def _room_fields(data: dict[str, Any], partial: bool) -> dict[str, Any]:
    """Who reads and writes, the round's deadline, the tags."""
    out: dict[str, Any] = {}
    if not partial or "visibility" in data:
        out["visibility"] = choice(data.get("visibility"), "visibility", VISIBILITIES, "public")
    if not partial or "write_access" in data:
        out["write_access"] = choice(
            data.get("write_access"), "write_access", WRITE_ACCESS, default="anyone"
        )
    if not partial or "turn_seconds" in data:
        out["turn_seconds"] = whole_minutes(
            data.get("turn_seconds"), "turn_seconds", TURN_SECONDS_MAX
        )
    if not partial or "skip_limit" in data:
        out["skip_limit"] = bounded_int(data.get("skip_limit"), "skip_limit", 1, SKIP_LIMIT_MAX, 3)
    if not partial or "skip_action" in data:
        out["skip_action"] = choice(data.get("skip_action"), "skip_action", SKIP_ACTIONS, "move")
    if not partial or "tags" in data:
        out["tags"] = clean_tags(data.get("tags"))
    return out


CANDIDATES_MAX = 4
CHOICE_MODES = ("writer", "vote")
CHOICE_SECONDS_MIN, CHOICE_SECONDS_MAX = 60, 24 * 3600


def _candidate_fields(data: dict[str, Any], partial: bool) -> dict[str, Any]:
    """Candidates per model turn, who chooses, and how long (app/stories/candidates.py)."""
    out: dict[str, Any] = {}
    if not partial or "candidates" in data:
        out["candidates"] = bounded_int(data.get("candidates"), "candidates", 1, CANDIDATES_MAX, 1)
    if not partial or "choice_mode" in data:
        out["choice_mode"] = choice(data.get("choice_mode"), "choice_mode", CHOICE_MODES, "writer")
    if not partial or "choice_seconds" in data:
        seconds = bounded_int(
            data.get("choice_seconds"), "choice_seconds", CHOICE_SECONDS_MIN,
            CHOICE_SECONDS_MAX, 600,
        )  # fmt: skip
        out["choice_seconds"] = whole_minutes(seconds, "choice_seconds", CHOICE_SECONDS_MAX)
    return out


def whole_minutes(value: Any, field: str, high: int) -> int | None:
    """A duration in seconds, a whole number of minutes up to `high`; 0 or empty: none."""
    seconds = bounded_int(value, field, 0, high, 0)
    if seconds % 60:
        raise Invalid(
            _("%(field)s must be a whole number of minutes (a multiple of 60).", field=field),
            field=field,
        )
    return seconds or None


def clean_tags(value: Any) -> list[str]:
    """Tags: a list (or a comma-separated string) of up to TAGS_MAX short lower-case names."""
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid(_("tags must be a list of strings."), field="tags")
    tags: list[str] = []
    for item in items:
        tag = " ".join(unicodedata.normalize("NFKC", _CONTROL.sub("", item)).lower().split())
        if len(tag) > TAG_MAX_CHARS:
            raise Invalid(
                _("A tag is at most %(limit)s characters.", limit=TAG_MAX_CHARS), field="tags"
            )
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise Invalid(_("A story has at most %(limit)s tags.", limit=TAGS_MAX), field="tags")
    return tags


def clean_banned_phrases(value: Any) -> str:
    """Phrases the model must not write: a list (or a string, one a line) of up to
    BANNED_PHRASES_MAX phrases of 1-BANNED_PHRASE_MAX_CHARS characters; stored one a line."""
    field = "banned_phrases"
    if value in (None, ""):
        return ""
    items = value.split("\n") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid(_("banned_phrases must be a list of strings."), field=field)
    phrases: list[str] = []
    for item in items:
        phrase = " ".join(unicodedata.normalize("NFC", _CONTROL.sub("", item)).split())
        if len(phrase) > BANNED_PHRASE_MAX_CHARS:
            raise Invalid(
                _(
                    "A banned phrase is at most %(limit)s characters.",
                    limit=BANNED_PHRASE_MAX_CHARS,
                ),
                field=field,
            )
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    if len(phrases) > BANNED_PHRASES_MAX:
        raise Invalid(
            _("A story has at most %(limit)s banned phrases.", limit=BANNED_PHRASES_MAX),
            field=field,
        )
    return "\n".join(phrases)
