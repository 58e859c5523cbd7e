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
from flask_restx import Namespace, Resource

from app.accounts.auth import require_user, role_required
from app.api import schemas
from app.api.common import query_int
from app.api.contract import body, returns
from app.api.schemas import (
    AdminUser,
    AuditPage,
    Dismissed,
    Queue,
    Reason,
    ReasonRequired,
    RoleIn,
    RuleActionIn,
    RuleIn,
    RuleList,
    RuleOut,
    Stats,
    StatusIn,
    TurnResult,
    UserList,
)
from app.api.stories import story_out
from app.inputs import PAGE_MAX
from app.moderation import lookup, queries, service
from app.stories.serialize import turn_dict

MODERATORS = ("moderator", "admin")
admin_only = role_required("admin")

ns = Namespace(
    "admin",
    description="Moderation (moderators and admins; roles and filter lists: admins)",
    decorators=[role_required(*MODERATORS)],
)

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


# --- queue and turns ---------------------------------------------------------------


@ns.route("/queue")
class ModerationQueue(Resource):
    @errors()
    @returns(ns, Queue, description="Reported and held turns, oldest first")
    def get(self):
        """Reported and auto-held turns, oldest first, each with the turns around it."""
        return {"items": queries.moderation_queue()}


@ns.route("/turns/<int:turn_id>/hide")
class TurnHide(Resource):
    @errors(400, 404, 422)
    @ns.expect(ReasonRequired)
    @returns(ns, TurnResult, description="Hidden; readers' pages drop it at once")
    def post(self, turn_id: int):
        """Hide a turn from readers, exports and the model's context (reason required)."""
        data = body(ReasonRequired)
        return {"turn": turn_dict(service.hide_turn(turn_id, require_user(), data["reason"]))}


@ns.route("/turns/<int:turn_id>/restore")
class TurnRestore(Resource):
    @errors(400, 404, 409, 422)  # 409 already_answered: its paragraph has a visible answer
    @ns.expect(Reason)
    @returns(
        ns, TurnResult, description="Visible again (a held last paragraph gets the model's answer)"
    )
    def post(self, turn_id: int):
        """Show a hidden or held turn again."""
        data = body(Reason)
        turn = service.restore_turn(turn_id, require_user(), data.get("reason"))
        return {"turn": turn_dict(turn)}


@ns.route("/turns/<int:turn_id>/dismiss")
class TurnDismiss(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(Reason)
    @returns(ns, Dismissed, description="The turn's open reports are closed")
    def post(self, turn_id: int):
        """Dismiss a turn's open reports (409 no_open_reports when there are none)."""
        data = body(Reason)
        closed = service.dismiss_reports(turn_id, require_user(), data.get("reason"))
        return {"turn_id": turn_id, "reports_closed": closed}


# --- stories -------------------------------------------------------------------------


@ns.route("/stories/<int:story_id>/status")
class StoryStatus(Resource):
    @errors(400, 404, 422)
    @ns.expect(StatusIn)
    @returns(ns, schemas.StoryOut, description="Changed")
    def post(self, story_id: int):
        """Lock, unlock (open) or finish a story."""
        data = body(StatusIn)
        story = service.set_story_status(
            story_id, require_user(), data.get("status"), data.get("reason")
        )
        return story_out(story)


@ns.route("/stories/<int:story_id>")
class StoryRemoval(Resource):
    @errors(400, 404, 422)
    @ns.expect(ReasonRequired)
    @ns.response(204, "Deleted with its turns and jobs")
    def delete(self, story_id: int):
        """Delete a story (reason required)."""
        data = body(ReasonRequired)
        service.delete_story(story_id, require_user(), data.get("reason"))
        return "", 204


# --- users ---------------------------------------------------------------------------


@ns.route("/users")
class AdminUserList(Resource):
    @errors()
    @ns.doc(params={"q": "Part of the username (case-insensitive)"})
    @returns(ns, UserList, description="Matching users, by name (at most 50)")
    def get(self):
        """Find users by name."""
        return {"users": [lookup.user_dict(u) for u in lookup.find_users(request.args.get("q"))]}


@ns.route("/users/<int:user_id>/suspend")
class UserSuspend(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(ReasonRequired)
    @returns(ns, AdminUser, description="Suspended: their sessions and tokens stop working at once")
    def post(self, user_id: int):
        """Suspend a user (reason required)."""
        data = body(ReasonRequired)
        return lookup.user_dict(
            service.suspend_user(user_id, require_user(), True, data.get("reason"))
        )


@ns.route("/users/<int:user_id>/unsuspend")
class UserUnsuspend(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(Reason)
    @returns(ns, AdminUser, description="They may sign in again (old tokens stay revoked)")
    def post(self, user_id: int):
        """Lift a suspension."""
        data = body(Reason)
        return lookup.user_dict(
            service.suspend_user(user_id, require_user(), False, data.get("reason"))
        )


@ns.route("/users/<int:user_id>/role")
class UserRole(Resource):
    @errors(400, 404, 409, 422)
    @ns.expect(RoleIn)
    @returns(ns, AdminUser, description="Role changed")
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def post(self, user_id: int):
        """Make a user a writer, moderator or admin (admins only)."""
        data = body(RoleIn)
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
            "page": {
                "description": "1, 2, ...",
                "type": "integer",
                "minimum": 1,
                "maximum": PAGE_MAX,
            },
            "per_page": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
        },
    )
    @returns(ns, AuditPage, description="Entries, newest first (read-only)")
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
    @returns(
        ns, Stats, description="Stories, turns, active writers, jobs by state, generation latency"
    )
    def get(self):
        """The operator's first look at health."""
        return {"stats": queries.stats()}


# --- filter lists (admins) ------------------------------------------------------------------


@ns.route("/filters")
class FilterRuleList(Resource):
    @errors()
    @returns(ns, RuleList, description="Every rule")
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def get(self):
        """The content filter's words and patterns (admins only)."""
        return {"rules": [lookup.rule_dict(r) for r in lookup.filter_rules()]}

    @errors(400, 409, 422)
    @ns.expect(RuleIn)
    @returns(ns, RuleOut, code=201, description="Added")
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def post(self):
        """Add a word or a regular expression ({language, word} or {language, pattern}) for a
        language, or '*' for every one; it rejects what it catches until PATCHed."""
        data = body(RuleIn)
        kind = "word" if "word" in data else "pattern"
        rule = service.add_filter_rule(require_user(), data["language"], kind, data[kind])
        return lookup.rule_dict(rule), 201


@ns.route("/filters/<int:rule_id>")
class FilterRuleItem(Resource):
    @errors(404, 409, 422)
    @ns.expect(RuleActionIn)
    @returns(ns, RuleOut, description="The rule with its new action")
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def patch(self, rule_id: int):
        """Choose what a rule does to a writer's paragraph: reject, hold or allow_in_fiction
        (words only: on a pattern a 409 fiction_words_only). Audited as filter.action."""
        data = body(RuleActionIn)
        return lookup.rule_dict(service.set_filter_action(require_user(), rule_id, data["action"]))

    @errors(404)
    @ns.response(204, "Removed")
    @ns.response(403, "Not an admin", schemas.Error)
    @admin_only
    def delete(self, rule_id: int):
        """Remove a rule (admins only)."""
        service.delete_filter_rule(require_user(), rule_id)
        return "", 204
