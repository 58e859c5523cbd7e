"""What the model saw: the record kept on each GenerationJob, and the context viewer's view of it.

The runner builds the record when it builds the prompt (app/runners/execute.py) and
stores it once the attempt that became the AI turn is known (its seed): the prompt's
text, a map of its parts (opening, memory, lore entries, author's note, turns, each a
[start, end) stretch of the text), the turns that were cut, the model, preset,
sampling parameters and seed. Readers of the story read it for each AI turn they see;
a turn hidden or held since the prompt was built shows as "[…]" to all but moderators.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select, update

from app.accounts.models import User
from app.errors import NotFound
from app.extensions import db
from app.generation.prompt_parts import AssembledPrompt, StoryParts
from app.stories.access import readable_story
from app.stories.models import GenerationJob, Turn
from app.stories.reads import sees_hidden, turn_at

ELIDED = "[…]"
CONTEXT_VERSION = 1


def context_record(
    assembled: AssembledPrompt,
    parts: StoryParts,
    *,
    model_key: str,
    preset: str,
    params: Any,
    max_context: int,
) -> dict[str, Any]:
    """The record of one prompt (the seed is added once the attempt is known)."""
    window = assembled.window
    return {
        "version": CONTEXT_VERSION,
        "prompt": window.text,
        "prompt_tokens": len(window.ids),
        "max_context": max_context,
        "sections": [asdict(section) for section in assembled.sections],
        "memory": window.memory,
        "memory_cut": window.memory != parts.memory.strip(),
        "lore": [{"id": entry.id, "keys": list(entry.keys)} for entry in assembled.lore_used],
        "authors_note": parts.authors_note,
        "note_depth": parts.note_depth,
        "note_in_prompt": bool(assembled.note),
        "cut_positions": assembled.cut_positions,
        "model_key": model_key,
        "preset": preset,
        "params": {key: _plain(value) for key, value in asdict(params).items()},
        "seed": None,
    }


def new_seed() -> int:
    """A job's sampling seed (31 bits: torch takes it, and JSON readers keep it exact)."""
    return secrets.randbits(31)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def record_context(job_id: int, context: dict[str, Any]) -> None:
    """Store the record on its job (its own short transaction; the job may be gone)."""
    db.session.execute(
        update(GenerationJob)
        .where(GenerationJob.id == job_id)
        .values(context=json.dumps(context, ensure_ascii=False))
    )
    db.session.commit()


def turn_context(story_id: int, position: int, viewer: User | None) -> dict[str, Any]:
    """What the model saw when it wrote the AI turn at `position`, as `viewer` may see it.

    404 for a story the viewer may not read, a turn they do not see, a human turn, or an
    AI turn without a record (written before records were kept)."""
    story = readable_story(story_id, viewer)
    turn = turn_at(story, position)
    moderator = sees_hidden(viewer)
    record = _record_for(turn) if turn.kind == "ai" else None
    if record is None or ((turn.hidden or turn.held) and not moderator):
        raise NotFound(
            _("Turn %(position)s of story %(id)s has no record of what the model saw.",
              position=position, id=story_id)
        )  # fmt: skip
    sections = _parts(record, story.id, moderator)
    return {
        "story_id": story.id,
        "position": turn.position,
        "job_id": record["job_id"],
        "prompt": "".join(part["text"] for part in sections),
        "parts": sections,
        "prompt_tokens": record.get("prompt_tokens"),
        "max_context": record.get("max_context"),
        "memory": record.get("memory", ""),
        "memory_cut": bool(record.get("memory_cut")),
        "lore": record.get("lore", []),
        "authors_note": record.get("authors_note", ""),
        "note_depth": record.get("note_depth"),
        "note_in_prompt": bool(record.get("note_in_prompt")),
        "cut_positions": record.get("cut_positions", []),
        "model_key": record.get("model_key") or turn.model_key or "",
        "preset": record.get("preset") or story.preset,
        "params": record.get("params", {}),
        "seed": record.get("seed"),
    }


def _record_for(turn: Turn) -> dict[str, Any] | None:
    row = db.session.execute(
        select(GenerationJob.id, GenerationJob.context).where(GenerationJob.turn_id == turn.id)
    ).first()
    if row is None or not row.context:
        return None
    try:
        record = json.loads(row.context)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        return None
    return record | {"job_id": row.id}


def _parts(record: dict[str, Any], story_id: int, moderator: bool) -> list[dict[str, Any]]:
    """The prompt cut into its parts, in order, with the text between them kept as "break"
    parts (so that joining them gives the prompt back); turns hidden or held since are
    elided for all but moderators."""
    prompt: str = record["prompt"]
    sections = sorted(
        (s for s in record.get("sections", []) if isinstance(s, dict)),
        key=lambda s: s.get("start", 0),
    )
    gone = set() if moderator else _unseen_positions(story_id, sections)
    parts: list[dict[str, Any]] = []
    offset = 0
    for section in sections:
        start, end = int(section.get("start", 0)), int(section.get("end", 0))
        if start < offset or end > len(prompt) or end < start:
            continue  # a malformed section: its text stays in the surrounding break
        if start > offset:
            parts.append(_part("break", prompt[offset:start]))
        elided = section.get("kind") == "turn" and section.get("position") in gone
        text = ELIDED if elided else prompt[start:end]
        parts.append(_part(str(section.get("kind")), text, section, elided))
        offset = end
    if offset < len(prompt):
        parts.append(_part("break", prompt[offset:]))
    return _fold_breaks(parts)


def _part(
    kind: str, text: str, section: dict[str, Any] | None = None, elided: bool = False
) -> dict[str, Any]:
    section = section or {}
    return {
        "kind": kind,
        "text": text,
        "position": section.get("position"),
        "entry_id": section.get("entry_id"),
        "partial": bool(section.get("partial")),
        "elided": elided,
    }


def _fold_breaks(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Paragraph breaks join the part before them; other text between parts stays a part."""
    out: list[dict[str, Any]] = []
    for part in parts:
        if part["kind"] == "break" and out and not part["text"].strip():
            out[-1] = out[-1] | {"text": out[-1]["text"] + part["text"]}
        elif part["kind"] == "break":
            out.append(part | {"kind": "text"})
        else:
            out.append(part)
    return out


def _unseen_positions(story_id: int, sections: list[dict[str, Any]]) -> set[int]:
    """Positions of the prompt's turns that readers no longer see (hidden or held since)."""
    positions = [s.get("position") for s in sections if s.get("kind") == "turn"]
    if not positions:
        return set()
    rows = db.session.scalars(
        select(Turn.position).where(
            Turn.story_id == story_id,
            Turn.position.in_([p for p in positions if isinstance(p, int)]),
            Turn.hidden.is_(True) | Turn.held.is_(True),
        )
    )
    return set(rows)
