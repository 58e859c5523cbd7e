"""/stories: list, create, read, change and delete stories; join; live events; export."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Response, request, url_for
from flask_restx import Namespace, Resource
from sqlalchemy.orm import selectinload

from app.accounts.auth import current_user_or_none, require_user
from app.api import schemas
from app.api.common import PER_PAGE_DEFAULT, PER_PAGE_MAX, query_int
from app.api.contract import NO_NUL, body, returns
from app.errors import Invalid, Unavailable
from app.extensions import db
from app.inputs import PAGE_MAX
from app.stories import reads, relay
from app.stories.access import readable_story
from app.stories.fork import fork_story
from app.stories.models import LANGUAGES, STATUSES, Story
from app.stories.rules import can_manage
from app.stories.search import QUERY_MAX_CHARS, SORTS, parse_filters, story_query
from app.stories.serialize import story_dict

ns = Namespace("stories", description="Stories, participants, live events and export")
PAGE_PARAMS = {
    "page": {"description": "1 or more", "type": "integer", "minimum": 1, "maximum": PAGE_MAX},
    "per_page": {"type": "integer", "minimum": 1, "maximum": PER_PAGE_MAX},
}

LIST_PARAMS = {
    **PAGE_PARAMS,
    "q": {
        "description": "Case-insensitive text in the title, the opening or a visible turn",
        "type": "string",
        "maxLength": QUERY_MAX_CHARS,
        "pattern": NO_NUL,
    },
    "language": {"type": "string", "enum": list(LANGUAGES)},
    "status": {"type": "string", "enum": list(STATUSES)},
    "mine": {"description": "1: stories the caller takes part in", "enum": ["0", "1"]},
    "tag": {"description": "One of the owner's tags", "type": "string", "pattern": NO_NUL},
    "sort": {"description": "activity (default), newest or title", "enum": list(SORTS)},
}

EXPORT_FORMATS = ("txt", "md", "epub")


def _readable(story_id: int) -> Story:
    """The story, if the caller may read it (app/stories/access.py); 404 otherwise."""
    return readable_story(story_id, current_user_or_none())


def story_out(story: Story) -> dict[str, Any]:
    """The story as the caller sees it: its managers also get the unlisted link."""
    link = None
    if can_manage(story, current_user_or_none()) and story.share_token:
        link = url_for("stories.shared", token=story.share_token, _external=True)
    count = reads.visible_turn_counts([story.id])[story.id]
    return story_dict(story, turn_count=count, share_url=link)


@ns.route("")
class StoryList(Resource):
    @ns.doc(security=[], params=LIST_PARAMS)
    @returns(ns, schemas.StoryPage, description="A page of stories, most recently active first")
    @ns.response(401, "mine=1 without a user, or a bad token", schemas.Error)
    @ns.response(422, "A bad argument (error.field names it)", schemas.Error)
    def get(self):
        """List the stories the caller may see (public ones, and those they take part in),
        searched, filtered and sorted (app/stories/search.py), paginated."""
        page = query_int("page", 1, low=1, high=PAGE_MAX)
        per_page = query_int("per_page", PER_PAGE_DEFAULT, low=1, high=PER_PAGE_MAX)
        query = story_query(parse_filters(request.args), current_user_or_none())
        result = db.paginate(
            query.options(selectinload(Story.tags)),
            page=page,
            per_page=per_page,
            error_out=False,
        )
        counts = reads.visible_turn_counts([story.id for story in result.items])
        return {
            "stories": [story_dict(s, turn_count=counts[s.id]) for s in result.items],
            "page": page,
            "per_page": per_page,
            "pages": result.pages,
            "total": result.total,
        }

    @ns.expect(schemas.StoryIn)
    @returns(ns, schemas.StoryOut, code=201, description="Created")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(409, "model_language or no_default_model (the registry decides)", schemas.Error)
    @ns.response(422, "Invalid field (error.field names it)", schemas.Error)
    def post(self):
        """Start a story; its owner is its first participant."""
        user = require_user()
        story = relay.create_story(user, body(schemas.StoryIn))
        return story_out(story), 201, {"Location": f"{request.base_url}/{story.id}"}


@ns.route("/<int:story_id>")
@ns.response(404, "No such story", schemas.Error)
class StoryItem(Resource):
    @ns.doc(security=[])
    @returns(ns, schemas.StoryOut, description="The story")
    def get(self, story_id: int):
        """One story."""
        return story_out(_readable(story_id))

    @ns.expect(schemas.StoryPatch)
    @returns(ns, schemas.StoryOut, description="Changed")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Not the owner, a moderator or an admin", schemas.Error)
    @ns.response(409, "opening_locked (after the first turn) or model_language", schemas.Error)
    @ns.response(422, "Invalid field (a story's model and language cannot change)", schemas.Error)
    def patch(self, story_id: int):
        """Change a story's fields or status (owner, moderator or admin)."""
        user = require_user()
        _readable(story_id)  # an unknown story is a 404 before any field is a 422
        data = body(schemas.StoryPatch)
        status = data.pop("status", None)
        if data or status is None:
            relay.update_story(story_id, user, data)
        if status is not None:
            relay.set_status(story_id, user, status)
        return story_out(_readable(story_id))

    @ns.response(204, "Deleted")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Not the owner, a moderator or an admin", schemas.Error)
    def delete(self, story_id: int):
        """Delete a story with its turns and jobs (owner, moderator or admin)."""
        relay.delete_story(story_id, require_user())
        return "", 204


@ns.route("/<int:story_id>/fork")
@ns.response(404, "No such story you may read", schemas.Error)
class StoryFork(Resource):
    @ns.expect(schemas.ForkIn)
    @returns(ns, schemas.StoryOut, code=201, description="The new story, yours")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Your account is suspended", schemas.Error)
    @ns.response(409, "no_visible_turn: no turn readers see at position", schemas.Error)
    @ns.response(422, "Invalid field (error.field names it)", schemas.Error)
    def post(self, story_id: int):
        """Start a new story from a turn of this one: its visible turns up to `position`,
        credited; a fork of a story that is not public starts private."""
        user = require_user()
        readable_story(story_id, user)  # a 404 before any field is a 422
        data = body(schemas.ForkIn)
        story = fork_story(story_id, data["position"], user, data.get("title"))
        stories_url = request.base_url.rsplit("/", 2)[0]
        return story_out(story), 201, {"Location": f"{stories_url}/{story.id}"}


@ns.route("/<int:story_id>/participants")
@ns.response(404, "No such story", schemas.Error)
class StoryParticipants(Resource):
    @ns.doc(security=[])
    @returns(ns, schemas.Participants, description="Participants in round-robin order")
    def get(self, story_id: int):
        """Who takes part, in join order, and whose turn it is (round robin)."""
        return participants_out(_readable(story_id))

    @returns(ns, schemas.Participants, code=201, description="Joined")
    @ns.response(200, "Already a participant", schemas.Participants)
    @ns.response(401, "No or bad token", schemas.Error)
    def post(self, story_id: int):
        """Join a story; join order is the round-robin order."""
        user = require_user()
        already = any(p.user_id == user.id for p in _readable(story_id).participants)
        relay.join_story(story_id, user)
        return participants_out(_readable(story_id)), 200 if already else 201


def participants_out(story: Story) -> dict[str, Any]:
    next_id = reads.next_writer_id(story) if story.policy == "round_robin" else None
    names = {p.user_id: p.user.username for p in story.participants}
    return {
        "story_id": story.id,
        "participants": list(names.values()),
        "next_writer": names.get(next_id),
    }


@ns.route("/<int:story_id>/events")
@ns.response(404, "No such story", schemas.Error)
class StoryEvents(Resource):
    @ns.doc(
        security=[],
        params={"Last-Event-ID": {"in": "header", "description": "Resume after this event"}},
    )
    @ns.produces(["text/event-stream", "application/json"])
    @ns.response(200, "Server-Sent Events: turn_created, generation_delta, generation_done, ...")
    @ns.response(429, "Too many streams from this address or user; see Retry-After", schemas.Error)
    @ns.response(
        503, "Too many streams on this server (streams_full); see Retry-After", schemas.Error
    )
    def get(self, story_id: int) -> Response:
        """Live events of a story as Server-Sent Events."""
        _readable(story_id)
        try:
            from app.live.sse import event_stream
        except ImportError:
            raise Unavailable(
                "Live events are not available yet.", code="events_unavailable"
            ) from None
        last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
        return event_stream(story_id, last_event_id)


@ns.route("/<int:story_id>/export")
@ns.response(404, "No such story", schemas.Error)
class StoryExport(Resource):
    @ns.doc(
        security=[],
        params={
            "format": {"description": "txt (default), md or epub", "enum": list(EXPORT_FORMATS)}
        },
    )
    @ns.produces(["text/plain", "text/markdown", "application/epub+zip", "application/json"])
    @ns.response(200, "The story's visible text, each turn credited")
    @ns.response(422, "Unknown format", schemas.Error)
    def get(self, story_id: int) -> Response:
        """Download a story as plain text, Markdown or EPUB (hidden turns left out)."""
        fmt = request.args.get("format", "txt")  # "" too is not a format
        if fmt not in EXPORT_FORMATS:
            raise Invalid("format must be txt, md or epub.", field="format")
        story = _readable(story_id)
        from app.stories.export import export_story

        text, mimetype, filename = export_story(story, fmt)
        response = Response(text, mimetype=mimetype)
        response.headers.set("Content-Disposition", "attachment", **_filename_options(filename))
        return response


def _filename_options(filename: str) -> dict[str, str]:
    """RFC 6266 filename parameters; non-ASCII titles (Korean) go in filename*."""
    try:
        filename.encode("ascii")
        return {"filename": filename}
    except UnicodeEncodeError:
        plain = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
        return {"filename": plain or "story", "filename*": f"UTF-8''{quote(filename)}"}
