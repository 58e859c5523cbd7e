"""REST API under /api/v1 (flask-restx), one namespace per resource.

Swagger UI is at /api/v1/docs and the spec at /api/v1/swagger.json. Every
error, ours or flask-restx's or werkzeug's (404, 405, 413, 429, ...), comes out
as {"error": {"code", "message", ...}} through app/errorpages.py.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask
from flask_restx import Api

from app.api.common import csrf_for_session_users, refuse_bad_token
from app.extensions import csrf

AUTHORIZATIONS = {
    "bearer": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Authorization: Bearer <token> (POST /auth/tokens)",
    }
}


class RelayApi(Api):
    """An Api whose errors go to the app's error handlers instead of restx's {"message"}."""

    def handle_error(self, e: Exception) -> Any:
        # Api.error_router catches this and calls Flask's own handler with e, which
        # dispatches to app/errorpages.py: one JSON shape for every API error.
        raise e


def init_api(app: Flask) -> None:
    """Mount the API on a fresh blueprint (flask-restx blueprints register once per app)."""
    from app.api import auth, health, jobs, model_list, schemas, stories, turns

    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    api = RelayApi(
        bp,
        version="1",
        title="Relay Novel API",
        description="Write novels together with a language model, turn by turn.",
        doc="/docs",
        authorizations=AUTHORIZATIONS,
        security="bearer",
    )
    api.models.update({model.name: model for model in schemas.ALL})
    for module in (auth, stories, turns, jobs, model_list, health):
        api.add_namespace(module.ns)
    from app.api import admin, reports  # moderation

    api.add_namespace(reports.ns)
    api.add_namespace(admin.ns)
    csrf.exempt(bp)
    bp.before_request(refuse_bad_token)
    bp.before_request(csrf_for_session_users)
    app.config.setdefault("RESTX_ERROR_404_HELP", False)
    app.register_blueprint(bp)
