"""/admin: the moderation queue and actions, users, stats, audit log and filter lists.

Moderators and admins only, denied by default: every resource of this
namespace goes through role_required (401 without a user, 403 for writers);
changing roles and the filter lists are for admins only. The resources call
app.moderation.service (each action writes exactly one audit row) and
app.moderation.queries; errors come out in the one JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_restx import Namespace, Resource, fields

from app.accounts.auth import require_user, role_required
from app.api import schemas
from app.api.common import json_body, query_int
from app.inputs import PAGE_MAX
from app.moderation import lookup, queries, service
from app.stories.serialize import story_dict, turn_dict

MODERATORS = ("moderator", "admin")
admin_only = role_required("admin")

ns = Namespace(
    "admin",
    description="Moderation (moderators and admins; roles and filter lists: admins)",
    decorators=[role_required(*MODERATORS)],
)

Reason = ns.model("Reason", {"reason": fields.String(example="Spam link", max_length=500)})
StatusIn = ns.model(
    "StoryStatusIn",
    {
        "status": fields.String(required=True, enum=["open", "locked", "finished"]),
        "reason": fields.String(max_length=500),
    },
)
RoleIn = ns.model(
    "RoleIn",
    {
        "role": fields.String(required=True, enum=["writer", "moderator", "admin"]),
        "reason": fields.String(max_length=500),
    },
)
RuleIn = ns.model(
    "FilterRuleIn",
    {
        "language": fields.String(required=True, enum=["en", "ko", "*"]),
        "kind": fields.String(required=True, enum=["word", "pattern"]),
        "value": fields.String(required=True, example="scoundrel", max_length=200),
    },
)
RuleOut = ns.model(
    "FilterRule",
    {
        "id": fields.Integer,
        "language": fields.String,
        "kind": fields.String,
        "value": fields.String,
    },
)
RuleList = ns.model("FilterRuleList", {"rules": fields.List(fields.Nested(RuleOut))})
AdminUser = ns.model(
    "AdminUser",
    {
        "id": fields.Integer,
        "username": fields.String,
        "role": fields.String,
        "is_suspended": fields.Boolean,
        "created_at": fields.DateTime,
    },
)
UserList = ns.model("AdminUserList", {"users": fields.List(fields.Nested(AdminUser))})
QueueItem = ns.model(
    "QueueItem",
    {
        "turn": fields.Nested(schemas.TurnOut),
        "story": fields.Raw(example={"id": 1, "title": "The Lighthouse"}),
        "since": fields.DateTime,
        "report_count": fields.Integer,
        "reports": fields.List(fields.Raw(example={"reporter": "ada", "reason": "spam"})),
        "context": fields.List(fields.Nested(schemas.TurnOut), description="Turns around it"),
    },
)
Queue = ns.model("Queue", {"items": fields.List(fields.Nested(QueueItem))})
TurnResult = ns.model("ModeratedTurn", {"turn": fields.Nested(schemas.TurnOut)})
Dismissed = ns.model("Dismissed", {"turn_id": fields.Integer, "reports_closed": fields.Integer})
AuditOut = ns.model(
    "AuditEntry",
    {
        "id": fields.Integer,
        "actor": fields.String,
        "action": fields.String(example="turn.hide"),
        "target_type": fields.String(enum=["turn", "story", "user", "filter_rule"]),
        "target_id": fields.Integer,
        "reason": fields.String,
        "details": fields.Raw,
        "created_at": fields.DateTime,
    },
)
AuditPage = ns.model(
    "AuditPage",
    {
        "entries": fields.List(fields.Nested(AuditOut)),
        "page": fields.Integer,
        "per_page": fields.Integer,
        "total": fields.Integer,
    },
)
Stats = ns.model("Stats", {"stats": fields.Raw(description="Counts, jobs by state, latency")})

ERRORS = {
    400: "Not a JSON object",
    401: "No or bad token",
    403: "Not a moderator",
    404: "No such turn, story, user or rule",
    409: "Conflict (error.code says why)",
    422: "Invalid field (error.field names it)",
}


def errors(*codes: int) -> Callable[[Any], Any]:
    """Document 401 and 403 (and `codes`) as the one JSON error shape."""

    def document(method: Any) -> Any:
        for code in (401, 403, *codes):
            method = ns.response(code, ERRORS[code], schemas.Error)(method)
        return method

    return document


def optional_body(allowed: tuple[str, ...]) -> dict[str, Any]:
    """json_body, except that no body at all counts as {} (the reason is optional)."""
    if not request.get_data(cache=True).strip():
        return {}
    return json_body(allowed)


# --- queue and turns ---------------------------------------------------------------


@ns.route("/queue")
class ModerationQueue(Resource):
    @errors()
    @ns.response(200, "Reported and held turns, oldest first", Queue)
    def get(self):
        """Reported and auto-held turns, oldest first, each with the turns around it."""
        return {"items": queries.moderation_queue()}


@ns.route("/turns/<int:turn_id>/hide")
class TurnHide(Resource):
    @errors(400, 404, 422)
    @ns.expect(Reason)
    @ns.response(200, "Hidden; readers' pages drop it at once", TurnResult)
    def post(self, turn_id: int):
        """Hide a turn from readers, exports and the model's context (reason required)."""
        data = json_body(("reason",))
        return {"turn": turn_dict(service.hide_turn(turn_id, require_user(), data.get("reason")))}


@ns.route("/turns/<int:turn_id>/restore")
class TurnRestore(Resource):
    @errors(400, 404, 422)
    @ns.expect(Reason)
    @ns.response(200, "Visible again (a held last paragraph gets the model's answer)", TurnResult)
    def post(self, turn_id: int):
        """Show a hidden or held turn again."""
        data = optional_body(("reason",))
        turn = service.restore_turn(turn_id, require_user(), data.get("reason"))
        return {"turn": turn_dict(turn)}


@ns.route("/turns/<int:turn_id>/dismiss")
class TurnDismiss(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(Reason)
    @ns.response(200, "The turn's open reports are closed", Dismissed)
    def post(self, turn_id: int):
        """Dismiss a turn's open reports (409 no_open_reports when there are none)."""
        data = optional_body(("reason",))
        closed = service.dismiss_reports(turn_id, require_user(), data.get("reason"))
        return {"turn_id": turn_id, "reports_closed": closed}


# --- stories -------------------------------------------------------------------------


@ns.route("/stories/<int:story_id>/status")
class StoryStatus(Resource):
    @errors(400, 404, 422)
    @ns.expect(StatusIn)
    @ns.response(200, "Changed", schemas.StoryOut)
    def post(self, story_id: int):
        """Lock, unlock (open) or finish a story."""
        data = json_body(("status", "reason"))
        story = service.set_story_status(
            story_id, require_user(), data.get("status"), data.get("reason")
        )
        return story_dict(story)


@ns.route("/stories/<int:story_id>")
class StoryRemoval(Resource):
    @errors(400, 404, 422)
    @ns.expect(Reason)
    @ns.response(204, "Deleted with its turns and jobs")
    def delete(self, story_id: int):
        """Delete a story (reason required)."""
        data = optional_body(("reason",))
        service.delete_story(story_id, require_user(), data.get("reason"))
        return "", 204


# --- users ---------------------------------------------------------------------------


@ns.route("/users")
class AdminUserList(Resource):
    @errors()
    @ns.doc(params={"q": "Part of the username (case-insensitive)"})
    @ns.response(200, "Matching users, by name (at most 50)", UserList)
    def get(self):
        """Find users by name."""
        return {"users": [lookup.user_dict(u) for u in lookup.find_users(request.args.get("q"))]}


@ns.route("/users/<int:user_id>/suspend")
class UserSuspend(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(Reason)
    @ns.response(200, "Suspended: their sessions and tokens stop working at once", AdminUser)
    def post(self, user_id: int):
        """Suspend a user (reason required)."""
        data = json_body(("reason",))
        return lookup.user_dict(
            service.suspend_user(user_id, require_user(), True, data.get("reason"))
        )


@ns.route("/users/<int:user_id>/unsuspend")
class UserUnsuspend(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(Reason)
    @ns.response(200, "They may sign in again (old tokens stay revoked)", AdminUser)
    def post(self, user_id: int):
        """Lift a suspension."""
        data = optional_body(("reason",))
        return lookup.user_dict(
            service.suspend_user(user_id, require_user(), False, data.get("reason"))
        )


@ns.route("/users/<int:user_id>/role")
class UserRole(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(RoleIn)
    @ns.response(200, "Role changed", AdminUser)
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def post(self, user_id: int):
        """Make a user a writer, moderator or admin (admins only)."""
        data = json_body(("role", "reason"))
        user = service.set_role(user_id, require_user(), data.get("role"), data.get("reason"))
        return lookup.user_dict(user)


# --- audit log and stats --------------------------------------------------------------


@ns.route("/audit")
class AuditLog(Resource):
    @errors(422)
    @ns.doc(
        params={
            "actor": "Username of who acted",
            "action": "An action or a prefix: turn (every turn action), turn.hide, story.lock",
            "target_type": "turn, story, user or filter_rule",
            "page": "1, 2, ... (50 per page)",
        },
    )
    @ns.response(200, "Entries, newest first (read-only)", AuditPage)
    def get(self):
        """Every moderation action: who, what, on what, when, why."""
        page = query_int("page", 1, low=1, high=PAGE_MAX)
        per_page = query_int("per_page", 50, low=1, high=100)
        filters = {key: request.args.get(key) or None for key in ("actor", "action", "target_type")}
        entries, total = queries.audit_log(**filters, page=page, per_page=per_page)
        return {
            "entries": [queries.audit_dict(e) for e in entries],
            "page": page,
            "per_page": per_page,
            "total": total,
        }


@ns.route("/stats")
class HealthStats(Resource):
    @errors()
    @ns.response(200, "Stories, turns, active writers, jobs by state, generation latency", Stats)
    def get(self):
        """The operator's first look at health."""
        return {"stats": queries.stats()}


# --- filter lists (admins) ------------------------------------------------------------------


@ns.route("/filters")
class FilterRuleList(Resource):
    @errors()
    @ns.response(200, "Every rule", RuleList)
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def get(self):
        """The content filter's words and patterns (admins only)."""
        return {"rules": [lookup.rule_dict(r) for r in lookup.filter_rules()]}

    @errors(400, 409, 422)
    @ns.expect(RuleIn)
    @ns.response(201, "Added", RuleOut)
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def post(self):
        """Add a word or a regular expression for a language, or '*' for every one."""
        data = json_body(("language", "kind", "value"))
        rule = service.add_filter_rule(
            require_user(), data.get("language"), data.get("kind"), data.get("value")
        )
        return lookup.rule_dict(rule), 201


@ns.route("/filters/<int:rule_id>")
class FilterRuleItem(Resource):
    @errors(404)
    @ns.response(204, "Removed")
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def delete(self, rule_id: int):
        """Remove a rule (admins only)."""
        service.delete_filter_rule(require_user(), rule_id)
        return "", 204
