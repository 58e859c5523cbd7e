"""REST API under /api/v1 (flask-restx), one namespace per resource.

Swagger UI is at /api/v1/docs and the spec at /api/v1/swagger.json. Every
error, ours or flask-restx's or werkzeug's (404, 405, 413, 429, ...), comes out
as {"error": {"code", "message", ...}} through app/errorpages.py.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from flask import Blueprint, Flask
from flask_restx import Api
from flask_restx.swagger import Swagger

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


# Answers any operation can give, documented on each (the one Error shape): a NUL in the
# query (400), a bad bearer token (401), a suspended account (403, unsafe methods), rate
# limits (429); bodies: not JSON (400), too large (413), outside their schema (422).
COMMON_ERRORS = {
    "400": "Bad request: not JSON, or a NUL character in the query",
    "401": "No, bad or revoked token",
    "429": "Too many requests; see Retry-After",
}
UNSAFE_ERRORS = {"403": "Not allowed (a suspended account, or not yours)"}
BODY_ERRORS = {"413": "Body over the size limit", "422": "Invalid field (error.field names it)"}
QUERY_ERRORS = {"422": "Invalid query parameter (error.field names it)"}
PATH_ERRORS = {"404": "Not found"}


def document_common_errors(spec: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """Add the answers every operation can give to each operation's responses; a body whose
    schema is optional (app.api.contract.RequestSchema) is marked not required."""
    error = {"$ref": "#/definitions/Error"}
    for path, operations in spec.get("paths", {}).items():
        shared = operations.get("parameters", [])
        for method, op in operations.items():
            if method == "parameters":
                continue
            params = shared + op.get("parameters", [])
            for param in params:
                name = param.get("schema", {}).get("$ref", "").rpartition("/")[2]
                if param.get("in") == "body" and getattr(models.get(name), "optional", False):
                    param["required"] = False
            answers = dict(COMMON_ERRORS)
            if method != "get":
                answers |= UNSAFE_ERRORS
            if any(p.get("in") == "body" for p in params):
                answers |= BODY_ERRORS
            if any(p.get("in") == "query" for p in params):
                answers |= QUERY_ERRORS
            if "{" in path:
                answers |= PATH_ERRORS
            for code, description in answers.items():
                op["responses"].setdefault(code, {"description": description, "schema": error})
    return spec


class RelayApi(Api):
    """An Api whose errors go to the app's error handlers instead of restx's {"message"}."""

    def handle_error(self, e: Exception) -> Any:
        # Api.error_router catches this and calls Flask's own handler with e, which
        # dispatches to app/errorpages.py: one JSON shape for every API error.
        raise e

    @cached_property
    def __schema__(self) -> dict[str, Any]:
        """The Swagger spec, with the answers every operation can give documented."""
        return document_common_errors(Swagger(self).as_dict(), self.models)


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
    from app.api import candidate_schemas, room_schemas

    shapes = schemas.ALL + room_schemas.ALL + candidate_schemas.ALL
    api.models.update({model.name: model for model in shapes})
    for module in (auth, stories, turns, jobs, model_list, health):
        api.add_namespace(module.ns)
    from app.api import admin, reports  # moderation

    api.add_namespace(reports.ns)
    api.add_namespace(admin.ns)
    from app.api import notifications, rooms

    api.add_namespace(notifications.ns)
    api.add_namespace(rooms.ns)
    from app.api import edit_schemas, edits  # edit, withdraw, undo, chapters

    api.models.update({model.name: model for model in edit_schemas.ALL})
    api.add_namespace(edits.ns)
    from app.api import lore, lore_schemas  # writers' tools: memory, lore, context

    api.models.update({model.name: model for model in lore_schemas.ALL})
    api.add_namespace(lore.ns)
    csrf.exempt(bp)
    bp.before_request(refuse_bad_token)
    bp.before_request(csrf_for_session_users)
    app.config.setdefault("RESTX_ERROR_404_HELP", False)
    app.register_blueprint(bp)
