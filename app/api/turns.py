"""/stories/<id>/turns: read turns, append a human turn, regenerate the model's turn.

A new turn is answered by the model asynchronously: POST returns 202 Accepted
with the human turn and the queued job; poll GET /jobs/<id> or listen to
GET /stories/<id>/events for the AI turn.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_restx import Namespace, Resource
from werkzeug.wrappers import Response

from app.accounts.auth import current_user_or_none, require_user
from app.accounts.models import User
from app.api import schemas
from app.api.common import query_int, turns_limit
from app.api.contract import body, marshalled, returns
from app.extensions import limiter
from app.inputs import ID_MAX
from app.stories import caching, reads, relay
from app.stories.models import Story
from app.stories.serialize import job_dict, turn_dict, turn_dicts

ns = Namespace("turns", path="/stories", description="Turns of a story")

CONFLICTS = (
    "Conflict; error.code says why: stale_position (with last_position and the missed "
    "turns), generation_pending, not_your_turn, not_a_participant, story_locked, "
    "story_finished, story_full"
)


NOT_MODIFIED = (
    "Not modified: the request's If-None-Match header holds the current ETag (no body, "
    "no Content-Type)"
)
TAG_HEADERS = {
    "ETag": {
        "type": "string",
        "description": "This answer's tag: send it back as If-None-Match to get a 304 while the "
        "turns, the pending job and what this viewer sees are unchanged",
    },
    "Cache-Control": {"type": "string", "description": "private, no-cache"},
}


def _turn_list(story: Story, since: int, viewer: User | None) -> dict[str, Any]:
    turns = reads.visible_turns(story, since=since, viewer=viewer)
    pending = reads.pending_job(story)
    return {
        "story_id": story.id,
        "last_position": story.last_position,
        "pending_job": job_dict(pending) if pending else None,
        "turns": turn_dicts(turns),
    }


def _jobs_url(job_id: int) -> str:
    return f"{request.host_url.rstrip('/')}/api/v1/jobs/{job_id}"


@ns.route("/<int:story_id>/turns")
@ns.response(404, "No such story", schemas.Error)
class TurnList(Resource):
    @ns.doc(
        security=[],
        params={
            "since": {
                "description": "Only turns after this position (default 0)",
                "type": "integer",
                "minimum": 0,
                "maximum": ID_MAX,
            },
        },
    )
    @returns(
        ns,
        schemas.TurnList,
        description="Turns after `since`; moderators also get hidden ones",
        headers=TAG_HEADERS,
    )
    # If-None-Match is not a documented parameter: a generated one ("*") would get the 304,
    # whose missing Content-Type (a 304 has none) Swagger 2 cannot express.
    @ns.response(304, NOT_MODIFIED, headers=TAG_HEADERS)
    @ns.response(422, "Bad since", schemas.Error)
    def get(self, story_id: int):
        """Visible turns after position `since`, and the position to send next; 304 when the
        client's copy (If-None-Match) is current."""
        since = query_int("since", 0, low=0)
        viewer = current_user_or_none()
        answer = caching.read_through(
            "api.turns",
            story_id,
            viewer,
            lambda story: marshalled(_turn_list(story, since, viewer), schemas.TurnList),
            caching.API_VARY,
        )
        if isinstance(answer, Response):
            return answer  # 304
        body, tag = answer
        return body, 200, caching.tag_headers(tag)

    @ns.expect(schemas.TurnIn)
    @returns(
        ns, schemas.TurnAccepted, code=202, description="Accepted: the model's answer is queued"
    )
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Suspended", schemas.Error)
    @ns.response(409, CONFLICTS, schemas.Error)
    @ns.response(413, "Body over the size limit", schemas.Error)
    @ns.response(422, "Invalid text or expected_position", schemas.Error)
    @ns.response(429, "Too many turns; see Retry-After", schemas.Error)
    @ns.response(503, "Generation queue full; see Retry-After", schemas.Error)
    @limiter.limit(turns_limit)  # keyed per user (app.extensions.rate_limit_key)
    def post(self, story_id: int):
        """Append a paragraph; the model's answer follows as a job."""
        user = require_user()
        data = body(schemas.TurnIn)
        turn, job = relay.append_human_turn(
            story_id, user, data.get("text"), data.get("expected_position")
        )
        if job is None:  # held by the content filter until a moderator decides
            return {"turn": turn_dict(turn), "job": None}, 202
        accepted = {"turn": turn_dict(turn), "job": job_dict(job)}
        return accepted, 202, {"Location": _jobs_url(job.id)}


@ns.route("/<int:story_id>/turns/<int:position>/regenerate")
@ns.response(404, "No such story or turn", schemas.Error)
class TurnRegenerate(Resource):
    @returns(ns, schemas.JobAccepted, code=202, description="Accepted: a new answer is queued")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Not the writer of the paragraph it answers", schemas.Error)
    @ns.response(409, "Not the latest turn, or a generation is pending", schemas.Error)
    @ns.response(503, "Generation queue full; see Retry-After", schemas.Error)
    def post(self, story_id: int, position: int):
        """Ask the model again; the replaced AI turn stays in the history, hidden."""
        job = relay.regenerate(story_id, position, require_user())
        return {"job": job_dict(job)}, 202, {"Location": _jobs_url(job.id)}
