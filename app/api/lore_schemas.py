"""The shapes of a story's memory, author's note, lorebook and context viewer over the API
(registered with the others in app/api/__init__.py). Limits are app/stories/lore.py's."""

from __future__ import annotations

from typing import Any

from flask_restx import Model, fields

from app.api.contract import NO_NUL, Bool, Int, ListOf, Obj, RequestSchema, Str, When
from app.stories.lore import (
    ENTRIES_MAX,
    ENTRY_MAX_CHARS,
    KEY_MAX_CHARS,
    KEYS_MAX,
    MEMORY_ACCESS,
    MEMORY_MAX_CHARS,
    NOTE_DEPTH_MAX,
    NOTE_MAX_CHARS,
)
from app.stories.validation import TEXT_PATTERN

_ACCESS = (
    "Who edits the memory, the note and the lore: 'owner' (the owner and moderators) or "
    "'participants' (every participant too); only the owner or a moderator changes it"
)
_KEYS = (
    "Words that bring the entry into the prompt when one appears in the latest turns (any "
    "case; whole words, a Korean key followed by any particle)"
)
# A key: something visible, no comma (the keys are stored comma-separated).
_KEY_PATTERN = TEXT_PATTERN.replace(r"[^\x00]", r"[^,\x00]").replace(r"[^\t", r"[^,\t", 1)


def _memory_fields() -> dict[str, Any]:
    return {
        "memory": {
            "type": "string",
            "maxLength": MEMORY_MAX_CHARS,
            "pattern": NO_NUL,
            "description": "Pinned at the top of every prompt, after the opening ('' for none)",
        },
        "authors_note": {
            "type": "string",
            "maxLength": NOTE_MAX_CHARS,
            "pattern": NO_NUL,
            "description": "Put in the prompt note_depth paragraphs above its end ('' for none)",
        },
        "note_depth": {
            "type": "integer",
            "minimum": 0,
            "maximum": NOTE_DEPTH_MAX,
            "description": "How many paragraphs above the end the note goes (0: at the end)",
        },
        "memory_access": {"type": "string", "enum": list(MEMORY_ACCESS), "description": _ACCESS},
    }


MemoryIn = RequestSchema(
    "MemoryIn",
    lambda cfg: {
        "type": "object",
        "additionalProperties": False,
        "properties": _memory_fields(),
        "description": "Fields left out keep their value",
    },
)


def _entry_fields() -> dict[str, Any]:
    return {
        "keys": {
            "type": "array",
            "items": {
                "type": "string",
                "maxLength": KEY_MAX_CHARS,
                "pattern": _KEY_PATTERN,
                "description": "must have visible text and no comma",
            },
            "minItems": 1,
            "maxItems": KEYS_MAX,
            "description": _KEYS,
            "example": ["Mira", "the keeper"],
        },
        "text": {
            "type": "string",
            "maxLength": ENTRY_MAX_CHARS,
            "pattern": TEXT_PATTERN,
            "description": "What the model reads about it",
            "example": "Mira keeps the lighthouse and writes letters to the sea.",
        },
    }


LoreEntryIn = RequestSchema(
    "LoreEntryIn",
    lambda cfg: {
        "type": "object",
        "additionalProperties": False,
        "properties": _entry_fields(),
        "required": ["keys", "text"],
    },
)
LoreEntryPatch = RequestSchema(
    "LoreEntryPatch",
    lambda cfg: {
        "type": "object",
        "additionalProperties": False,
        "properties": _entry_fields(),
        "description": "Fields left out keep their value",
    },
)

MemoryOut = Model(
    "Memory",
    {
        "story_id": Int(),
        "memory": Str(),
        "authors_note": Str(),
        "note_depth": Int(),
        "memory_access": Str(enum=list(MEMORY_ACCESS)),
        "can_edit": Bool(description="Whether you may change the memory, the note and the lore"),
        "can_change_access": Bool(description="Whether you may change memory_access"),
    },
)
LoreEntryOut = Model(
    "LoreEntry",
    {
        "id": Int(),
        "story_id": Int(),
        "keys": ListOf(fields.String, description="Its keys, in order"),
        "text": Str(),
        "created_by": Str(nullable=True),
        "created_at": When(),
        "updated_at": When(),
    },
)
LoreList = Model(
    "LoreList",
    {
        "story_id": Int(),
        "entries": ListOf(fields.Nested(LoreEntryOut)),
        "can_edit": Bool(),
        "limit": Int(description=f"Entries a story holds at most ({ENTRIES_MAX})"),
    },
)
ContextPart = Model(
    "ContextPart",
    {
        "kind": Str(
            enum=["opening", "memory", "lore", "note", "turn", "text"],
            description="Which part of the prompt this stretch of its text is",
        ),
        "text": Str(description="Its text as the model read it ('[…]': a turn hidden since)"),
        "position": Int(nullable=True, description="A turn's position"),
        "entry_id": Int(nullable=True, description="A lore entry's id"),
        "partial": Bool(description="A turn whose beginning was cut to fit"),
        "elided": Bool(description="A turn readers no longer see: its text is left out"),
    },
)
ContextLore = Model("ContextLore", {"id": Int(), "keys": ListOf(fields.String)})
TurnContextOut = Model(
    "TurnContext",
    {
        "story_id": Int(),
        "position": Int(),
        "job_id": Int(),
        "prompt": Str(description="The prompt the model continued, turns hidden since elided"),
        "parts": ListOf(fields.Nested(ContextPart)),
        "prompt_tokens": Int(nullable=True),
        "max_context": Int(nullable=True),
        "memory": Str(description="The memory as it went in"),
        "memory_cut": Bool(description="Its tail was cut to fit half the budget"),
        "lore": ListOf(fields.Nested(ContextLore), description="The lore entries used, in order"),
        "authors_note": Str(),
        "note_depth": Int(nullable=True),
        "note_in_prompt": Bool(),
        "cut_positions": ListOf(fields.Integer, description="Turns cut to fit, wholly or in part"),
        "model_key": Str(),
        "preset": Str(),
        "params": Obj(description="The sampling parameters"),
        "seed": Int(nullable=True, description="The sampling seed (none for remote models)"),
    },
)

ALL = [
    MemoryIn,
    LoreEntryIn,
    LoreEntryPatch,
    MemoryOut,
    LoreEntryOut,
    LoreList,
    ContextPart,
    ContextLore,
    TurnContextOut,
]
