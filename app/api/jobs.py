"""/jobs/<id>: one generation job (queued, running, choosing, done, failed), its
candidates, and choosing one (app/stories/candidates.py)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_restx import Namespace, Resource

from app.accounts.auth import current_user_or_none, require_user
from app.api import candidate_schemas, schemas
from app.api.contract import body, returns
from app.errors import NotFound
from app.extensions import db
from app.stories import candidates
from app.stories.access import request_may_read
from app.stories.models import GenerationJob
from app.stories.serialize import turn_dict

ns = Namespace("jobs", description="Generation jobs")

CHOICE_CONFLICTS = (
    "Conflict; error.code says why: already_chosen (the choice is made), not_chooser "
    "(not the writer of the paragraph, or in a vote not a participant)"
)


def readable_job(job_id: int) -> GenerationJob:
    """The job, if the caller may read its story; 404 otherwise."""
    job = db.session.get(GenerationJob, job_id)
    if job is None or not request_may_read(job.story, current_user_or_none()):
        raise NotFound(_("Job %(id)s does not exist.", id=job_id))
    return job


@ns.route("/<int:job_id>")
class JobItem(Resource):
    @ns.doc(security=[])
    @returns(
        ns,
        candidate_schemas.JobDetail,
        description="The job; turn_id is set once its AI turn is appended, candidates once "
        "they are written",
    )
    @ns.response(404, "No such job", schemas.Error)
    def get(self, job_id: int):
        """One generation job, with its candidates."""
        return candidates.job_detail(readable_job(job_id), current_user_or_none())


@ns.route("/<int:job_id>/choose")
@ns.response(404, "No such job, or no candidate with that index", schemas.Error)
class JobChoice(Resource):
    @ns.expect(candidate_schemas.ChoiceIn)
    @returns(ns, candidate_schemas.JobDetail, description="Chosen (or, in a vote, voted)")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(409, CHOICE_CONFLICTS, schemas.Error)
    @ns.response(422, "index is not an integer from 0 to 3", schemas.Error)
    def post(self, job_id: int):
        """Choose candidate `index`: it becomes the AI turn (in a vote: your vote)."""
        user = require_user()
        readable_job(job_id)
        data = body(candidate_schemas.ChoiceIn)
        return candidates.choose(job_id, data.get("index"), user)


@ns.route("/<int:job_id>/switch")
@ns.response(404, "No such job, or no alternate with that index", schemas.Error)
class JobSwitch(Resource):
    @ns.expect(candidate_schemas.ChoiceIn)
    @returns(ns, schemas.TurnOut, description="The answer, now with the alternate's text")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(403, "Not the writer of the paragraph it answers", schemas.Error)
    @ns.response(409, "not_latest: the story moved on, or a choice is pending", schemas.Error)
    @ns.response(422, "index is not an integer from 0 to 3", schemas.Error)
    def post(self, job_id: int):
        """Switch the latest answer to this job's alternate `index`."""
        user = require_user()
        readable_job(job_id)
        data = body(candidate_schemas.ChoiceIn)
        return turn_dict(candidates.switch_alternate(job_id, data.get("index"), user))
