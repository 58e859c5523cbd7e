"""Browser forms for stories and turns (Flask-WTF, CSRF-protected).

Field rules (lengths, choices, bounds) live in app.stories.validation and are
applied by the relay functions; these forms collect fields, carry the CSRF
token and display the relay's messages next to the field they concern.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional, ValidationError

from app.accounts.locale import current_locale
from app.labels import language_label
from app.stories import lengths
from app.stories.models import LANGUAGES
from app.stories.validation import (
    PRESETS,
    SKIP_LIMIT_MAX,
    TURN_SECONDS_MAX,
    clean_banned_phrases,
    clean_tags,
    model_language,
)

LANGUAGE_CHOICES = [("en", _l("English")), ("ko", _l("Korean · 한국어"))]
POLICY_CHOICES = [
    ("open", _l("Open — anyone signed in may write the next paragraph, never twice in a row")),
    ("round_robin", _l("Round robin — those who join take turns, in the order they joined")),
]
# What each preset does to the prose (app/generation/sampling.py has the numbers).
PRESET_LABELS = {
    "careful": _l("Careful — stays close to what came before: plainer, more predictable prose"),
    "balanced": _l("Balanced — some surprise, still on the story's thread (the usual choice)"),
    "wild": _l("Wild — takes risks: unexpected words and turns, sometimes nonsense"),
}


# What the content filter does in this story; the owner can be stricter than the site only.
STRICTNESS_CHOICES = [
    (
        "site",
        _l("As the site decides: some words may be allowed in fiction, others held or refused"),
    ),
    ("hold", _l("Hold for review whatever the site would allow in fiction")),
    ("reject", _l("Refuse every paragraph the filter catches")),
]


VISIBILITY_CHOICES = [
    ("public", _l("Public — listed, and anyone may read it")),
    ("unlisted", _l("Unlisted — not listed; anyone with its link may read it")),
    ("private", _l("Private — only its participants (and moderators) may read it")),
]
WRITE_ACCESS_CHOICES = [
    ("anyone", _l("Anyone signed in")),
    ("participants", _l("Only those who joined the story")),
    ("invited", _l("Only those invited")),
]


CHOICE_MODE_CHOICES = [
    ("writer", _l("The writer of the paragraph they answer")),
    ("vote", _l("The participants, by vote (a tie goes to the writer)")),
]


def candidates_field() -> RadioField:
    """Candidates per model turn (the new-story form and the owner's settings)."""
    return RadioField(
        _l("Candidates per model turn"),
        choices=[("1", "1"), ("2", "2"), ("3", "3"), ("4", "4")],
        default="1",
        description=_l(
            "More than one: the model writes them side by side and one is chosen; the "
            "others stay readable as alternates. A remote model writes one."
        ),
    )


def choice_mode_field() -> RadioField:
    return RadioField(_l("Who chooses"), choices=CHOICE_MODE_CHOICES, default="writer")


class StoryForm(FlaskForm):
    title = StringField(_l("Title"), validators=[InputRequired()])
    language = SelectField(_l("Language of the story"), choices=LANGUAGE_CHOICES, default="en")
    model = SelectField(
        _l("Model"),
        choices=[],
        default="",
        description=_l("Unless you pick another, the story's language chooses its model."),
    )
    opening = TextAreaField(
        _l("Opening passage"),
        validators=[InputRequired()],
        description=_l(
            "The story's first lines, yours alone: after them, writers add one paragraph "
            "at a time and the model answers each paragraph with one of its own."
        ),
    )
    policy = RadioField(_l("Who writes next"), choices=POLICY_CHOICES, default="open")
    preset = RadioField(
        _l("How the model writes"),
        choices=[(p, PRESET_LABELS[p]) for p in PRESETS],
        default="balanced",
    )
    length_words = IntegerField(
        _l("Length of the model's turns, in words"), validators=[Optional()]
    )
    filter_strictness = RadioField(
        _l("Strong language in this story"), choices=STRICTNESS_CHOICES, default="site"
    )
    visibility = RadioField(_l("Who reads"), choices=VISIBILITY_CHOICES, default="public")
    write_access = RadioField(_l("Who writes"), choices=WRITE_ACCESS_CHOICES, default="anyone")
    candidates = candidates_field()
    choice_mode = choice_mode_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = current_app.config
        choices = lengths.model_choices()
        # The language's own models are the default; others are offered by their names.
        others = [(c.key, c.name) for c in choices if c.key not in LANGUAGES]
        self.show_model = bool(others)
        self.model.choices = [("", _("The language's own model"))] + others
        self.title.render_kw = {"maxlength": cfg["TITLE_MAX_CHARS"]}
        self.opening.render_kw = {"maxlength": cfg["OPENING_MAX_CHARS"], "rows": 8}
        if not self.is_submitted() and current_locale() in LANGUAGES:
            self.language.data = current_locale()
        language = self.language.data if self.language.data in LANGUAGES else "en"
        low, default, high = lengths.word_bounds(language)
        self.length_words.render_kw = {"min": low, "max": high, "step": 1}
        self.length_words.description = _length_hint(language)
        # The hint for each language, for static/js/forms.js to swap in when it changes.
        hints = {code: _length_hint(code) for code in LANGUAGES}
        self.length_words.render_kw["data-hints"] = json.dumps(hints, ensure_ascii=False)
        if self.length_words.data is None and not self.is_submitted():
            self.length_words.data = default

    def validate_length_words(self, field: IntegerField) -> None:
        """Within the token limits, converted with the chosen model's measured figure."""
        if field.data is None:
            return
        low, _default, high = lengths.word_bounds(self.language.data, self.model.data or None)
        if not low <= field.data <= high:
            raise ValidationError(
                _("Between about %(low)s and %(high)s words for this model.", low=low, high=high)
            )

    def relay_data(self) -> dict[str, Any]:
        """The fields as app.stories.relay.create_story takes them (the length in tokens)."""
        tokens = None
        if self.length_words.data is not None:
            cfg = current_app.config
            asked = lengths.tokens_for_words(
                self.length_words.data, self.language.data, self.model.data or None
            )
            tokens = min(max(asked, cfg["AI_TOKENS_MIN"]), cfg["AI_TOKENS_MAX"])
        return {
            "title": self.title.data,
            "language": self.language.data,
            "model": self.model.data or None,
            "opening": self.opening.data,
            "policy": self.policy.data,
            "preset": self.preset.data,
            "max_new_tokens": tokens,
            "filter_strictness": self.filter_strictness.data,
            "visibility": self.visibility.data,
            "write_access": self.write_access.data,
            "candidates": self.candidates.data,
            "choice_mode": self.choice_mode.data,
        }


def _length_hint(language: str) -> str:
    low, default, high = lengths.word_bounds(language)
    return _(
        "About %(default)s words make a short paragraph; %(language)s stories allow about "
        "%(low)s to %(high)s.",
        default=default,
        language=language_label(language),
        low=low,
        high=high,
    )


class TurnForm(FlaskForm):
    text = TextAreaField(_l("Your paragraph"))
    expected_position = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text.render_kw = {"maxlength": current_app.config["PARAGRAPH_MAX_CHARS"], "rows": 5}


# --- a story's settings (its owner and moderators) ---------------------------------

SKIP_ACTION_CHOICES = [
    ("move", _l("Move them to the end of the round")),
    ("remove", _l("Remove them from the round")),
]


class StorySettingsForm(FlaskForm):
    """What the owner may change once a story has begun (app/stories/settings_views.py)."""

    title = StringField(_l("Title"), validators=[InputRequired()])
    opening = TextAreaField(
        _l("Opening passage"), description=_l("It can only change before the first turn.")
    )
    policy = RadioField(_l("Who writes next"), choices=POLICY_CHOICES)
    turn_minutes = IntegerField(
        _l("Turn deadline, in minutes"),
        validators=[Optional()],
        description=_l(
            "Round robin: the writer whose turn it is has this long before they are "
            "skipped. Leave it empty for no deadline."
        ),
    )
    skip_limit = IntegerField(
        _l("Skips in a row before a writer is moved or removed"), validators=[Optional()]
    )
    skip_action = RadioField(_l("Then"), choices=SKIP_ACTION_CHOICES)
    visibility = RadioField(_l("Who reads"), choices=VISIBILITY_CHOICES)
    write_access = RadioField(_l("Who writes"), choices=WRITE_ACCESS_CHOICES)
    preset = RadioField(
        _l("How the model writes"), choices=[(p, PRESET_LABELS[p]) for p in PRESETS]
    )
    model = SelectField(_l("Model"), choices=[])
    tags = StringField(_l("Tags"), description=_l("Separated by commas, at most 8."))
    banned_phrases = TextAreaField(
        _l("Banned phrases"),
        description=_l("One a line, at most 20: phrases the model must not write."),
        render_kw={"rows": 4},
    )

    candidates = candidates_field()
    choice_mode = choice_mode_field()
    choice_minutes = IntegerField(
        _l("Time to choose, in minutes"),
        validators=[Optional()],
        description=_l("Then the first candidate (or the vote's winner) is taken."),
    )

    def __init__(self, story: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, data=settings_of(story), **kwargs)
        cfg = current_app.config
        self.title.render_kw = {"maxlength": cfg["TITLE_MAX_CHARS"]}
        self.opening.render_kw = {"maxlength": cfg["OPENING_MAX_CHARS"], "rows": 6}
        if story.last_position > 0:
            self.opening.render_kw["readonly"] = True
        self.model.choices = _model_choices(story)
        self.turn_minutes.render_kw = {"min": 1, "max": TURN_SECONDS_MAX // 60}
        self.skip_limit.render_kw = {"min": 1, "max": SKIP_LIMIT_MAX}

    def validate_turn_minutes(self, field: IntegerField) -> None:
        if field.data is not None and not 1 <= field.data <= TURN_SECONDS_MAX // 60:
            raise ValidationError(
                _(
                    "Between %(low)s and %(high)s minutes, or empty for no deadline.",
                    low=1,
                    high=TURN_SECONDS_MAX // 60,
                )
            )

    def changes(self, story: Any) -> dict[str, Any]:
        """The fields that differ from the story's, as app.stories.relay.update_story
        takes them (tags cleaned, so an unchanged list counts as unchanged)."""
        minutes = self.turn_minutes.data
        wanted = {
            "title": self.title.data,
            "opening": (self.opening.data or "").replace("\r\n", "\n"),
            "policy": self.policy.data,
            "turn_seconds": minutes * 60 if minutes else None,
            "skip_limit": self.skip_limit.data,
            "skip_action": self.skip_action.data,
            "visibility": self.visibility.data,
            "write_access": self.write_access.data,
            "preset": self.preset.data,
            "model": self.model.data,
            "tags": clean_tags(self.tags.data),
            "banned_phrases": clean_banned_phrases(self.banned_phrases.data),
            "candidates": self.candidates.data,
            "choice_mode": self.choice_mode.data,
            "choice_seconds": self.choice_minutes.data * 60 if self.choice_minutes.data else None,
        }
        current = settings_of(story)
        current["candidates"] = str(story.candidates)
        current["choice_seconds"] = story.choice_seconds
        current["turn_seconds"] = story.turn_seconds
        current["tags"] = [tag.name for tag in story.tags]
        return {
            key: value for key, value in wanted.items() if _differs(key, value, current.get(key))
        }


def _differs(key: str, value: Any, current: Any) -> bool:
    if key in ("title", "opening") and isinstance(value, str):
        return value.strip() != current
    return value != current


def settings_of(story: Any) -> dict[str, Any]:
    """The settings form's fields as the story has them now."""
    return {
        "title": story.title,
        "opening": story.opening,
        "policy": story.policy,
        "turn_minutes": story.turn_seconds // 60 if story.turn_seconds else None,
        "skip_limit": story.skip_limit,
        "skip_action": story.skip_action,
        "visibility": story.visibility,
        "write_access": story.write_access,
        "preset": story.preset,
        "model": story.model_key,
        "tags": ", ".join(tag.name for tag in story.tags),
        "banned_phrases": story.banned_phrases or "",
        "candidates": str(story.candidates),
        "choice_mode": story.choice_mode,
        "choice_minutes": story.choice_seconds // 60,
    }


def _model_choices(story: Any) -> list[tuple[str, str]]:
    """The configured models that write the story's language (or any language)."""
    choices = [
        (choice.key, choice.key if choice.name == choice.key else f"{choice.key} · {choice.name}")
        for choice in lengths.model_choices()
        if model_language(choice.key) in (story.language, None)
    ]
    if story.model_key not in {key for key, _label in choices}:
        choices.insert(0, (story.model_key, story.model_key))
    return choices


class StoryStatusForm(FlaskForm):
    """Lock, finish or reopen (the button pressed names the status)."""

    status = HiddenField()


class DeleteStoryForm(FlaskForm):
    confirm = BooleanField(_l("Yes, delete this story and every turn in it, for good"))


class ForkForm(FlaskForm):
    """Start a new story from a paragraph (the button pressed names its position)."""

    position = HiddenField()
    title = StringField(_l("Title of the new story"), validators=[Optional()])
