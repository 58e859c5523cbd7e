"""/jobs/<id>: the state of one generation job (queued, running, done, failed)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_restx import Namespace, Resource

from app.accounts.auth import current_user_or_none
from app.api import schemas
from app.api.contract import returns
from app.errors import NotFound
from app.extensions import db
from app.stories.access import request_may_read
from app.stories.models import GenerationJob
from app.stories.serialize import job_dict

ns = Namespace("jobs", description="Generation jobs")


@ns.route("/<int:job_id>")
class JobItem(Resource):
    @ns.doc(security=[])
    @returns(ns, schemas.JobOut, description="The job; turn_id is set once its AI turn is appended")
    @ns.response(404, "No such job", schemas.Error)
    def get(self, job_id: int):
        """One generation job."""
        job = db.session.get(GenerationJob, job_id)
        if job is None or not request_may_read(job.story, current_user_or_none()):
            raise NotFound(_("Job %(id)s does not exist.", id=job_id))
        return job_dict(job)
