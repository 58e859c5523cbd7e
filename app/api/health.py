"""/health (liveness, touches nothing) and /ready (database, models, and in the scaled
mode the Redis broker)."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from flask_restx import Namespace, Resource
from sqlalchemy import text

from app.api import schemas
from app.api.contract import returns
from app.api.model_list import model_listing
from app.errors import Unavailable
from app.extensions import db

ns = Namespace("health", path="/", description="Liveness and readiness probes")


@ns.route("/health")
class Health(Resource):
    @ns.doc(security=[])
    @returns(ns, schemas.HealthOut, description="The process is up")
    def get(self):
        """Liveness: answers without touching the database or the models."""
        return {"status": "ok"}


@ns.route("/ready")
class Ready(Resource):
    @ns.doc(security=[])
    @returns(
        ns,
        schemas.ReadyOut,
        description="Database (and in scaled mode Redis) reachable, every model loadable",
    )
    @ns.response(503, "Not ready; error.checks says what failed", schemas.Error)
    def get(self):
        """Readiness: one database query and a look at every configured model."""
        checks = {"database": _database_problem()}
        queue_problem = getattr(current_app.extensions.get("relay.jobs"), "problem", None)
        if queue_problem is not None:  # the scaled mode's Celery queue: is Redis there?
            checks["broker"] = queue_problem()
        checks.update({f"model:{m['key']}": m["problem"] for m in model_listing()})
        failed = {name: problem for name, problem in checks.items() if problem}
        if failed:
            raise Unavailable(_("Not ready."), retry_after=5, code="not_ready", checks=failed)
        return {"status": "ready", "checks": dict.fromkeys(checks, "ok")}


def _database_problem() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:  # any driver error means "not ready", never a 500
        db.session.rollback()
        current_app.logger.warning("readiness: database check failed: %s", exc)
        return f"database unreachable: {type(exc).__name__}"
    return None
