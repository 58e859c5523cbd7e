"""Changing turns already written, over the API: edit or withdraw your latest paragraph,
undo the last pair (owner), mark chapters (owner). Every rule is in app/stories/rules.py,
every write in app/stories/edits.py."""

from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource

from app.accounts.auth import require_user
from app.api import edit_schemas, schemas
from app.api.contract import body, returns
from app.stories import edits
from app.stories.access import readable_story
from app.stories.serialize import job_dict, turn_dict, turn_dicts

ns = Namespace("edits", path="/stories", description="Edit, withdraw, undo, chapters")

EDIT_CONFLICTS = (
    "Conflict; error.code says why: answer_final (the model's answer is in), "
    "awaiting_review, stale_position, story_locked, story_finished, story_full"
)


@ns.route("/<int:story_id>/turns/<int:position>")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not your paragraph", schemas.Error)
@ns.response(404, "No such story (or not one you may read) or turn", schemas.Error)
@ns.response(409, EDIT_CONFLICTS, schemas.Error)
class TurnItem(Resource):
    @ns.expect(edit_schemas.TurnEditIn)
    @returns(
        ns,
        schemas.TurnAccepted,
        code=202,
        description="Accepted: the old paragraph is hidden (kept in the history), the new "
        "one appended, the model's answer to it queued",
    )
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(422, "Invalid text or expected_position", schemas.Error)
    @ns.response(503, "Generation queue full; see Retry-After", schemas.Error)
    def patch(self, story_id: int, position: int):
        """Edit your latest paragraph until the model's answer to it is final."""
        user = require_user()
        readable_story(story_id, user)  # a 404 before any field is a 422
        data = body(edit_schemas.TurnEditIn)
        turn, job = edits.edit_paragraph(
            story_id, position, user, data["text"], data.get("expected_position")
        )
        if job is None:  # the new text is held by the content filter
            return {"turn": turn_dict(turn), "job": None}, 202
        location = f"{request.host_url.rstrip('/')}/api/v1/jobs/{job.id}"
        return {"turn": turn_dict(turn), "job": job_dict(job)}, 202, {"Location": location}

    @returns(ns, edit_schemas.TurnWithdrawn, description="Withdrawn: hidden, kept in the history")
    def delete(self, story_id: int, position: int):
        """Withdraw your latest paragraph before the model's answer to it is final."""
        turn = edits.withdraw_paragraph(story_id, position, require_user())
        return {"turn": turn_dict(turn)}


@ns.route("/<int:story_id>/undo")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not the owner or a moderator", schemas.Error)
@ns.response(404, "No such story (or not one you may read)", schemas.Error)
@ns.response(409, "nothing_to_undo, story_locked or story_finished", schemas.Error)
class StoryUndo(Resource):
    @ns.expect(schemas.Reason)
    @returns(ns, edit_schemas.Undone, description="The last paragraph and its answer, hidden")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(422, "Bad reason", schemas.Error)
    def post(self, story_id: int):
        """Withdraw the last human–AI pair (the owner, or a moderator with a reason)."""
        user = require_user()
        readable_story(story_id, user)
        reason = body(schemas.Reason).get("reason") or None
        turns = edits.withdraw_last_pair(story_id, user, reason)
        return {"turns": turn_dicts(turns)}


@ns.route("/<int:story_id>/turns/<int:position>/chapter")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not the owner or a moderator", schemas.Error)
@ns.response(404, "No such story (or not one you may read) or turn", schemas.Error)
@ns.response(409, "no_visible_turn: readers do not see that turn", schemas.Error)
class TurnChapter(Resource):
    @ns.expect(edit_schemas.ChapterIn)
    @returns(ns, edit_schemas.ChapterOut, description="A chapter starts at this turn")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(422, "Invalid title", schemas.Error)
    def put(self, story_id: int, position: int):
        """Mark a chapter starting at this turn (the EPUB export's chapters)."""
        user = require_user()
        readable_story(story_id, user)
        data = body(edit_schemas.ChapterIn)
        return {"turn": turn_dict(edits.set_chapter(story_id, position, user, data["title"]))}

    @returns(ns, edit_schemas.ChapterOut, description="No chapter starts here any more")
    def delete(self, story_id: int, position: int):
        """Clear the chapter mark at this turn."""
        return {"turn": turn_dict(edits.set_chapter(story_id, position, require_user(), None))}
