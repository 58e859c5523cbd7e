"""The shapes of editing a story's turns over the API: an edited paragraph, a chapter
mark, and the turns a withdrawal or an undo hid (registered in app/api/__init__.py)."""

from __future__ import annotations

from typing import Any

from flask_restx import Model, fields

from app.api.contract import ListOf, Nested, RequestSchema
from app.api.schemas import TurnOut
from app.stories.validation import TEXT_PATTERN, TITLE_PATTERN

CHAPTER_TITLE_MAX = 200  # Turn.chapter_title's length (app/stories/edits.py)


def _object(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(required),
    }


TurnEditIn = RequestSchema(
    "TurnEditIn",
    lambda cfg: _object(
        {
            "text": {
                "type": "string",
                "maxLength": cfg["PARAGRAPH_MAX_CHARS"],
                "pattern": TEXT_PATTERN,
                "example": "She lit a candle instead.",
            },
            "expected_position": {
                "type": "integer",
                "minimum": 0,
                "description": "The story's last_position as you saw it (optional: if given "
                "and the story moved on, 409 stale_position)",
            },
        },
        ("text",),
    ),
)
ChapterIn = RequestSchema(
    "ChapterIn",
    lambda cfg: _object(
        {
            "title": {
                "type": "string",
                "maxLength": CHAPTER_TITLE_MAX,
                "pattern": TITLE_PATTERN,
                "example": "The Lighthouse Keeper",
                "description": "The chapter that starts at this turn (DELETE clears it)",
            }
        },
        ("title",),
    ),
)
TurnWithdrawn = Model("TurnWithdrawn", {"turn": Nested(TurnOut)})
Undone = Model(
    "Undone",
    {"turns": ListOf(fields.Nested(TurnOut), description="Hidden: the paragraph, its answers")},
)
ChapterOut = Model("Chapter", {"turn": Nested(TurnOut)})

ALL = [TurnEditIn, ChapterIn, TurnWithdrawn, Undone, ChapterOut]
