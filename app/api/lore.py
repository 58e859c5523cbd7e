"""A story's memory, author's note and lorebook, and what the model saw for each AI turn.
Every rule is in app/stories/lore.py and app/stories/context.py."""

from __future__ import annotations

from typing import Any

from flask_restx import Namespace, Resource

from app.accounts.auth import current_user_or_none, require_user
from app.accounts.models import User
from app.api import lore_schemas, schemas
from app.api.contract import body, returns
from app.extensions import db
from app.stories import lore
from app.stories.access import readable_story
from app.stories.context import turn_context
from app.stories.models import Story
from app.stories.rules import can_manage
from app.stories.serialize import iso
from app.stories.tool_models import LoreEntry

ns = Namespace("lore", path="/stories", description="Memory, author's note, lore, context")


def memory_out(story: Story, viewer: User | None) -> dict[str, Any]:
    return {
        "story_id": story.id,
        "memory": story.memory or "",
        "authors_note": story.authors_note or "",
        "note_depth": story.note_depth,
        "memory_access": story.memory_access,
        "can_edit": lore.can_edit_memory(story, viewer),
        "can_change_access": can_manage(story, viewer) and lore.can_edit_memory(story, viewer),
    }


def entry_out(entry: LoreEntry) -> dict[str, Any]:
    creator = db.session.get(User, entry.created_by_id) if entry.created_by_id else None
    return {
        "id": entry.id,
        "story_id": entry.story_id,
        "keys": lore.split_keys(entry.keys),
        "text": entry.text,
        "created_by": creator.username if creator else None,
        "created_at": iso(entry.created_at),
        "updated_at": iso(entry.updated_at),
    }


@ns.route("/<int:story_id>/memory")
@ns.response(404, "No such story (or not one you may read)", schemas.Error)
class MemoryItem(Resource):
    @ns.doc(security=[])
    @returns(ns, lore_schemas.MemoryOut, description="The memory, the note and who edits them")
    def get(self, story_id: int):
        """The story's memory and author's note (anyone who may read the story)."""
        viewer = current_user_or_none()
        return memory_out(readable_story(story_id, viewer), viewer)

    @ns.expect(lore_schemas.MemoryIn)
    @returns(ns, lore_schemas.MemoryOut, description="Saved")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Not allowed to edit them, or to change memory_access", schemas.Error)
    @ns.response(422, "Too long, or a bad note_depth or memory_access", schemas.Error)
    def put(self, story_id: int):
        """Change the memory, the note, its depth and (owner or moderator) who edits them."""
        user = require_user()
        story = lore.set_memory(story_id, user, body(lore_schemas.MemoryIn))
        return memory_out(story, user)


@ns.route("/<int:story_id>/lore")
@ns.response(404, "No such story (or not one you may read)", schemas.Error)
class LoreCollection(Resource):
    @ns.doc(security=[])
    @returns(ns, lore_schemas.LoreList, description="The story's lore entries, oldest first")
    def get(self, story_id: int):
        """The story's lorebook (anyone who may read the story)."""
        viewer = current_user_or_none()
        story = readable_story(story_id, viewer)
        return {
            "story_id": story.id,
            "entries": [entry_out(entry) for entry in lore.lore_entries(story)],
            "can_edit": lore.can_edit_memory(story, viewer),
            "limit": lore.ENTRIES_MAX,
        }

    @ns.expect(lore_schemas.LoreEntryIn)
    @returns(ns, lore_schemas.LoreEntryOut, code=201, description="The new entry")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Not allowed to edit the lore", schemas.Error)
    @ns.response(409, "The lorebook is full (lore_full)", schemas.Error)
    @ns.response(422, "Bad keys or text", schemas.Error)
    def post(self, story_id: int):
        """Add a lore entry."""
        user = require_user()
        data = body(lore_schemas.LoreEntryIn)
        return entry_out(lore.add_entry(story_id, user, data["keys"], data["text"])), 201


@ns.route("/<int:story_id>/lore/<int:entry_id>")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not allowed to edit the lore", schemas.Error)
@ns.response(404, "No such story or entry", schemas.Error)
class LoreItem(Resource):
    @ns.expect(lore_schemas.LoreEntryPatch)
    @returns(ns, lore_schemas.LoreEntryOut, description="Saved")
    @ns.response(422, "Bad keys or text", schemas.Error)
    def patch(self, story_id: int, entry_id: int):
        """Change an entry's keys or text."""
        user = require_user()
        data = body(lore_schemas.LoreEntryPatch)
        return entry_out(lore.update_entry(story_id, entry_id, user, data))

    @ns.response(204, "Deleted")
    def delete(self, story_id: int, entry_id: int):
        """Delete an entry."""
        lore.delete_entry(story_id, entry_id, require_user())
        return "", 204


@ns.route("/<int:story_id>/turns/<int:position>/context")
@ns.response(404, "No such story or AI turn, or no record of its prompt", schemas.Error)
class TurnContext(Resource):
    @ns.doc(security=[])
    @returns(ns, lore_schemas.TurnContextOut, description="What the model saw")
    def get(self, story_id: int, position: int):
        """The prompt the model continued when it wrote this turn, its parts, the model,
        preset, parameters and seed; turns hidden or held since are "[…]" to readers."""
        return turn_context(story_id, position, current_user_or_none())
