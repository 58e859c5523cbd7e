"""The content filter: word and pattern lists per language, checked on human and model text.

Words match case-insensitively; in English on word boundaries, in Korean as
substrings (particles attach to words: 병신아, 병신이). Patterns are regular
expressions, run by the `regex` package (re's syntax) with a time limit per
search: an admin's pattern that backtracks catastrophically (e.g. "(a|aa)+$")
is skipped and logged when it runs out of time, instead of stalling writers.
Rules live in the filter_rules table, editable by admins; the defaults below
are seeded by the first migration (and by seed_default_rules).

What happens to a writer's paragraph that a rule catches is the rule's action,
chosen by an admin: reject it (422), hold it for a moderator's review, or,
for words only, allow it in fiction (a character may swear). A story's owner
may make their story stricter, never looser (human_verdict). The model's
output is checked against every rule whatever its action (load_checker).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

import regex as re
from flask_babel import gettext as _
from sqlalchemy import select

from app.errors import Conflict, Invalid
from app.extensions import db
from app.moderation.models import FilterRule

# A small, deliberately conservative default: strong profanity and obvious spam.
DEFAULT_RULES: list[tuple[str, str, str]] = [
    ("en", "word", "fuck"),
    ("en", "word", "fucking"),
    ("en", "word", "motherfucker"),
    ("en", "word", "cunt"),
    ("en", "word", "shithead"),
    ("ko", "word", "씨발"),
    ("ko", "word", "시발놈"),
    ("ko", "word", "개새끼"),
    ("ko", "word", "병신"),
    ("ko", "word", "좆"),
    ("*", "pattern", r"(?:https?://|www\.)\S+\.(?:ru|xyz|top)\b"),
    ("*", "pattern", r"\b(?:buy|cheap)\s+(?:viagra|cialis)\b"),
]
LANGUAGES = ("en", "ko", "*")
KINDS = ("word", "pattern")
# What a rule does to a writer's paragraph, loosest first.
ACTIONS = ("allow_in_fiction", "hold", "reject")
# A story's own setting: the site's actions, or no looser than "hold" or "reject".
STORY_STRICTNESS = ("site", "hold", "reject")
RULE_MAX_CHARS = 200
SEARCH_SECONDS = 0.05  # per rule and text; the default rules take microseconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilterHit:
    rule_id: int | None
    kind: str
    value: str
    matched: str
    action: str = "reject"


def compile_rule(language: str, kind: str, value: str) -> re.Pattern:
    if kind == "pattern":
        return re.compile(value, re.IGNORECASE)
    escaped = re.escape(value)
    if language == "ko":
        return re.compile(escaped, re.IGNORECASE)
    return re.compile(rf"(?<!\w){escaped}(?!\w)", re.IGNORECASE)


Checker = Callable[[str], "FilterHit | None"]


def _compiled_rules(language: str) -> list[tuple[FilterHit, re.Pattern]]:
    """`language`'s rules and every-language rules, compiled, as hits waiting for a match."""
    compiled = []
    rules = db.session.scalars(
        select(FilterRule).where(FilterRule.language.in_((language, "*"))).order_by(FilterRule.id)
    )
    for rule in rules:
        try:
            pattern = compile_rule(rule.language, rule.kind, rule.value)
        except (re.error, OverflowError, RecursionError):
            continue  # validated on entry; a broken legacy rule must not break writing
        compiled.append((FilterHit(rule.id, rule.kind, rule.value, "", rule.action), pattern))
    return compiled


def _hits(
    compiled: list[tuple[FilterHit, re.Pattern]], text: str, first_only: bool
) -> list[FilterHit]:
    text = unicodedata.normalize("NFC", text)  # the model's text arrives as decoded
    hits = []
    for rule, pattern in compiled:
        try:
            found = first_match(pattern, text)
        except TimeoutError:
            log.warning("filter rule %s (%r) ran out of time; skipped", rule.rule_id, rule.value)
            continue
        if found is not None:
            hits.append(replace(rule, matched=found))
            if first_only:
                break
    return hits


def load_checker(language: str) -> Checker:
    """Compile `language`'s rules (and every-language rules) once; the checker needs no DB.

    Generation builds one per job so it can check the streamed text at every
    delta without a query per token. Every rule counts here, whatever its action.
    """
    compiled = _compiled_rules(language)

    def check(text: str) -> FilterHit | None:
        hits = _hits(compiled, text, first_only=True)
        return hits[0] if hits else None

    return check


def stricter(action: str, strictness: str) -> str:
    """A rule's action under a story's strictness: never looser than the rule's own."""
    floor = strictness if strictness in ACTIONS else ACTIONS[0]
    return max(action, floor, key=ACTIONS.index)


def human_verdict(text: str, language: str, strictness: str = "site") -> FilterHit | None:
    """What the filter does to a writer's paragraph: the strictest of the rules it breaks
    (their actions made stricter by the story's `strictness`), else None."""
    hits = _hits(_compiled_rules(language), text, first_only=False)
    judged = [replace(hit, action=stricter(hit.action, strictness)) for hit in hits]
    return max(judged, key=lambda hit: ACTIONS.index(hit.action), default=None)


def first_match(pattern: re.Pattern, text: str) -> str | None:
    """The first non-empty text `pattern` matches: a pattern that can match nothing
    ("a*") refuses only the text it actually finds, never every paragraph."""
    for found in pattern.finditer(text, timeout=SEARCH_SECONDS):
        if found.group(0):
            return found.group(0)
    return None


def check_text(text: str, language: str) -> FilterHit | None:
    """The first rule `text` breaks for `language` (or every-language rules), else None."""
    return load_checker(language)(text)


def validate_rule(language: object, kind: object, value: object) -> tuple[str, str, str]:
    """422 for an unknown language or kind, an empty or overlong value, or a bad regex."""
    if language not in LANGUAGES:
        raise Invalid(
            _(
                "%(field)s must be one of: %(choices)s.",
                field="language",
                choices=", ".join(LANGUAGES),
            ),
            field="language",
        )
    if kind not in KINDS:
        raise Invalid(_("kind must be 'word' or 'pattern'."), field="kind")
    if not isinstance(value, str) or not value.strip() or len(value) > RULE_MAX_CHARS:
        raise Invalid(_("value must be 1-%(max)s characters.", max=RULE_MAX_CHARS), field="value")
    value = unicodedata.normalize("NFC", value.strip())  # as paragraphs are stored
    try:
        rule = compile_rule(language, kind, value)
    except (re.error, OverflowError, RecursionError) as exc:  # a{99999999999}: OverflowError
        raise Invalid(
            _("Not a valid regular expression: %(error)s.", error=exc), field="value"
        ) from None
    del rule  # compiled only to refuse a bad expression; only non-empty matches count
    return language, kind, value


def validate_action(kind: str, action: object) -> str:
    """422 for an unknown action; 409 for "allow in fiction" on a pattern (spam is not fiction)."""
    if action not in ACTIONS:
        raise Invalid(
            _(
                "%(field)s must be one of: %(choices)s.",
                field="action",
                choices=", ".join(ACTIONS),
            ),
            field="action",
        )
    if action == "allow_in_fiction" and kind != "word":  # a valid choice, not for this rule
        raise Conflict(
            _("Only words can be allowed in fiction, not patterns."),
            code="fiction_words_only",
            field="action",
        )
    return action


def seed_default_rules() -> int:
    """Insert the default rules that are missing; returns how many were added."""
    existing = {(r.language, r.kind, r.value) for r in db.session.scalars(select(FilterRule))}
    added = [FilterRule(language=la, kind=k, value=v) for la, k, v in DEFAULT_RULES]
    added = [r for r in added if (r.language, r.kind, r.value) not in existing]
    db.session.add_all(added)
    db.session.commit()
    return len(added)
