"""Browser forms for stories and turns (Flask-WTF, CSRF-protected).

Field rules (lengths, choices, bounds) live in app.stories.validation and are
applied by the relay functions; these forms collect fields, carry the CSRF
token and display the relay's messages next to the field they concern.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional

from app.stories.validation import PRESETS

LANGUAGE_CHOICES = [("en", "English"), ("ko", "Korean · 한국어")]
POLICY_CHOICES = [
    ("open", "Open — anyone signed in; never the same writer twice in a row"),
    ("round_robin", "Round robin — participants take turns in the order they joined"),
]
PRESET_LABELS = {
    "careful": "Careful — steady and plain",
    "balanced": "Balanced — the default",
    "wild": "Wild — surprising, sometimes strange",
}


class StoryForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired()])
    language = SelectField("Language", choices=LANGUAGE_CHOICES, default="en")
    model = SelectField(
        "Model",
        choices=[],
        default="",
        description="The language's default model, or any model this server has configured.",
    )
    opening = TextAreaField("Opening passage", validators=[InputRequired()])
    policy = RadioField("Turn policy", choices=POLICY_CHOICES, default="open")
    preset = RadioField(
        "Sampling", choices=[(p, PRESET_LABELS[p]) for p in PRESETS], default="balanced"
    )
    max_new_tokens = IntegerField(
        "Length of the model's turns (tokens)", validators=[Optional()], default=80
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = current_app.config
        self.model.choices = [("", "Default for the language")] + [
            (key, key) for key in sorted(cfg["RELAY_MODELS"])
        ]
        self.title.render_kw = {"maxlength": cfg["TITLE_MAX_CHARS"]}
        self.opening.render_kw = {"maxlength": cfg["OPENING_MAX_CHARS"], "rows": 8}
        low, high = cfg["AI_TOKENS_MIN"], cfg["AI_TOKENS_MAX"]
        self.max_new_tokens.render_kw = {"min": low, "max": high, "step": 1}
        self.max_new_tokens.description = f"Between {low} and {high}."
        if self.max_new_tokens.data is None and not self.is_submitted():
            self.max_new_tokens.data = min(80, high)

    def relay_data(self) -> dict[str, Any]:
        """The fields as app.stories.relay.create_story takes them."""
        return {
            "title": self.title.data,
            "language": self.language.data,
            "model": self.model.data or None,
            "opening": self.opening.data,
            "policy": self.policy.data,
            "preset": self.preset.data,
            "max_new_tokens": self.max_new_tokens.data,
        }


class TurnForm(FlaskForm):
    text = TextAreaField("Your paragraph")
    expected_position = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text.render_kw = {"maxlength": current_app.config["PARAGRAPH_MAX_CHARS"], "rows": 5}
