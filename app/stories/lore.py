"""A story's memory, author's note and lorebook: who edits them, their limits, the writes.

- The memory is pinned at the top of every prompt (after the opening), the author's
  note `note_depth` paragraphs above its end, and a lore entry's text enters the prompt
  when one of its keys appears in the latest turns (app/generation/prompt_parts.py).
- Readers of the story read all three; the owner and moderators edit them, and so does
  every participant when the owner sets memory_access to "participants". Only the owner
  and moderators change memory_access itself.
- Limits: memory MEMORY_MAX_CHARS, note NOTE_MAX_CHARS, note depth 0-NOTE_DEPTH_MAX,
  an entry's keys at most KEYS_MAX of KEY_MAX_CHARS each (stored comma-separated, within
  KEYS_MAX_CHARS), its text ENTRY_MAX_CHARS; a value outside them is a 422 naming its
  field. A story holds ENTRIES_MAX entries: one more is a 409 (lore_full).

Every write takes the story's lock (reads.lock_story) and a moderator's change to
someone else's story is audited in the same transaction.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.accounts.models import User, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound, RelayError
from app.extensions import db
from app.generation.prompt_parts import LoreText, StoryParts, split_keys
from app.moderation.audit import record
from app.stories import rules
from app.stories.access import readable_story
from app.stories.models import Story
from app.stories.reads import lock_story, participant
from app.stories.tool_models import LoreEntry
from app.stories.validation import choice, clean_text

MEMORY_MAX_CHARS = 2000
NOTE_MAX_CHARS = 500
NOTE_DEPTH_MAX = 20
KEYS_MAX_CHARS = 300
KEYS_MAX = 10
KEY_MAX_CHARS = 29  # ten of them, comma-joined, fit the column's KEYS_MAX_CHARS
ENTRY_MAX_CHARS = 1000
ENTRIES_MAX = 50
MEMORY_ACCESS = ("owner", "participants")
MEMORY_FIELDS = ("memory", "authors_note", "note_depth", "memory_access")

# --- who may ---------------------------------------------------------------------


def can_edit_memory(story: Story, user: User | None) -> bool:
    """The owner and moderators; every participant too where memory_access allows it."""
    if user is None or not user.is_authenticated or user.is_suspended:
        return False
    if rules.can_manage(story, user):
        return True
    return story.memory_access == "participants" and participant(story, user) is not None


def require_memory_editor(story: Story, user: User) -> None:
    if not can_edit_memory(story, user):
        db.session.rollback()
        if story.memory_access == "participants":
            message = _("Only the story's participants can change its memory and lore.")
        else:
            message = _("Only the story's owner or a moderator can change its memory and lore.")
        raise Forbidden(message)


# --- reading -----------------------------------------------------------------------


def lore_entries(story: Story) -> list[LoreEntry]:
    """The story's lore entries, oldest first."""
    query = select(LoreEntry).where(LoreEntry.story_id == story.id).order_by(LoreEntry.id)
    return list(db.session.scalars(query))


def story_parts(story: Story, turns: list[tuple[int, str]], scan: int | None = None) -> StoryParts:
    """What the story puts into its prompt besides `turns` (position, text)."""
    entries = [
        LoreText(entry.id, tuple(split_keys(entry.keys)), entry.text)
        for entry in lore_entries(story)
    ]
    extra = {"lore_scan_turns": scan} if scan is not None else {}
    return StoryParts(
        opening=story.opening,
        turns=turns,
        memory=story.memory or "",
        authors_note=story.authors_note or "",
        note_depth=story.note_depth,
        lore=entries,
        **extra,
    )


# --- validation ----------------------------------------------------------------------


def clean_keys(value: Any) -> str:
    """An entry's keys, a list or one comma-separated string: 1-KEYS_MAX of them, each at
    most KEY_MAX_CHARS, trimmed and deduplicated (any case); stored as "a,b"."""
    if isinstance(value, str):
        value = value.replace("\n", ",").split(",")
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise Invalid(_("keys must be a list of words."), field="keys")
    keys = split_keys(",".join(clean_text(key, "keys", KEYS_MAX_CHARS, False) for key in value))
    if not keys:
        raise Invalid(_("keys must name at least one word."), field="keys")
    if len(keys) > KEYS_MAX:
        raise Invalid(_("keys holds at most %(limit)s keys.", limit=KEYS_MAX), field="keys")
    if any(len(key) > KEY_MAX_CHARS for key in keys):
        message = _("Each key is at most %(limit)s characters.", limit=KEY_MAX_CHARS)
        raise Invalid(message, field="keys")
    return ",".join(keys)


def note_depth(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 2.0 is the integer 2
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= NOTE_DEPTH_MAX:
        message = _("note_depth must be a whole number from 0 to %(limit)s.", limit=NOTE_DEPTH_MAX)
        raise Invalid(message, field="note_depth")
    return value


def memory_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The memory fields present in `data`, cleaned (absent ones keep their value)."""
    fields: dict[str, Any] = {}
    if "memory" in data:
        fields["memory"] = clean_text(data["memory"], "memory", MEMORY_MAX_CHARS, required=False)
    if "authors_note" in data:
        note = clean_text(data["authors_note"], "authors_note", NOTE_MAX_CHARS, required=False)
        fields["authors_note"] = note
    if "note_depth" in data:
        fields["note_depth"] = note_depth(data["note_depth"])
    if "memory_access" in data:
        fields["memory_access"] = choice(data["memory_access"], "memory_access", MEMORY_ACCESS)
    return fields


# --- writes --------------------------------------------------------------------------


def set_memory(story_id: int, actor: User, data: dict[str, Any]) -> Story:
    """Change the memory, the author's note, its depth and (owner or moderator) who edits them."""
    rules.require_writer(actor)
    fields = memory_fields(data)
    story = _locked_for(story_id, actor)
    access = fields.get("memory_access", story.memory_access)
    if access != story.memory_access and not rules.can_manage(story, actor):
        db.session.rollback()
        message = _("Only the story's owner or a moderator can choose who edits its memory.")
        raise Forbidden(message, field="memory_access")
    changed = sorted(key for key, value in fields.items() if getattr(story, key) != value)
    for key in changed:
        setattr(story, key, fields[key])
    if changed:
        story.updated_at = utcnow()
        _audit(story, actor, "story.memory", fields=changed)
    db.session.commit()
    return story


def add_entry(story_id: int, actor: User, keys: Any, text: Any) -> LoreEntry:
    """A new lore entry (at most ENTRIES_MAX per story)."""
    rules.require_writer(actor)
    keys, text = clean_keys(keys), clean_text(text, "text", ENTRY_MAX_CHARS)
    story = _locked_for(story_id, actor)
    count = db.session.scalar(
        select(func.count(LoreEntry.id)).where(LoreEntry.story_id == story.id)
    )
    if count >= ENTRIES_MAX:
        db.session.rollback()
        message = _("A story holds at most %(limit)s lore entries.", limit=ENTRIES_MAX)
        raise Conflict(message, code="lore_full")
    entry = LoreEntry(story_id=story.id, keys=keys, text=text, created_by_id=actor.id)
    db.session.add(entry)
    db.session.flush()
    _audit(story, actor, "lore.add", entry_id=entry.id, keys=keys)
    db.session.commit()
    return entry


def update_entry(story_id: int, entry_id: int, actor: User, data: dict[str, Any]) -> LoreEntry:
    """Change an entry's keys and/or text (absent ones stay)."""
    rules.require_writer(actor)
    fields: dict[str, str] = {}
    if "keys" in data:
        fields["keys"] = clean_keys(data["keys"])
    if "text" in data:
        fields["text"] = clean_text(data["text"], "text", ENTRY_MAX_CHARS)
    story = _locked_for(story_id, actor)
    entry = _entry(story, entry_id)
    changed = sorted(key for key, value in fields.items() if getattr(entry, key) != value)
    for key in changed:
        setattr(entry, key, fields[key])
    if changed:
        entry.updated_at = utcnow()
        _audit(story, actor, "lore.update", entry_id=entry.id, fields=changed)
    db.session.commit()
    return entry


def delete_entry(story_id: int, entry_id: int, actor: User) -> None:
    rules.require_writer(actor)
    story = _locked_for(story_id, actor)
    entry = _entry(story, entry_id)
    _audit(story, actor, "lore.delete", entry_id=entry.id, keys=entry.keys)
    db.session.delete(entry)
    db.session.commit()


def _locked_for(story_id: int, actor: User) -> Story:
    """The story under its lock, if `actor` may read it (else 404) and edit its memory."""
    readable_story(story_id, actor)
    story = lock_story(story_id)
    try:
        require_memory_editor(story, actor)
    except RelayError:
        db.session.rollback()
        raise
    return story


def _entry(story: Story, entry_id: int) -> LoreEntry:
    entry = db.session.get(LoreEntry, entry_id)
    if entry is None or entry.story_id != story.id:
        db.session.rollback()
        raise NotFound(_("Story %(id)s has no lore entry %(entry)s.", id=story.id, entry=entry_id))
    return entry


def _audit(story: Story, actor: User, action: str, **details: Any) -> None:
    """A moderator changing someone else's story leaves an audit row (participants the
    owner let edit are the story's own writers, not moderation)."""
    if actor.is_moderator and actor.id != story.owner_id:
        record(actor, action, "story", story.id, "via the story's own settings", **details)
