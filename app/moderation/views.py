"""The admin dashboard at /admin, and the reader's "report this turn" page.

Deny by default: every route of this blueprint is for moderators and admins
unless it says otherwise with @allow(...). A signed-out visitor is sent to the
login page; a signed-in user without the role gets the 403 page. The service
functions check roles again themselves. Every state change is a POST carrying
a CSRF token (CSRFProtect checks it before any of this code runs); the views
call app.moderation.service / queries, flash the outcome and redirect back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.locale import ROLE_NAMES
from app.errorpages import wants_json
from app.errors import Forbidden, NotFound, RelayError, Unauthorized
from app.extensions import db, login_manager
from app.formerrors import attach_error
from app.inputs import PAGE_MAX, arg_int, local_path
from app.labels import status_label
from app.moderation import lookup, queries, reports, service
from app.moderation.forms import FilterRuleForm, ReportForm, RoleForm
from app.stories.access import request_may_read
from app.stories.models import Turn
from app.stories.serialize import paragraph_number
from app.stories.views import security_headers

bp = Blueprint("admin", __name__)
bp.after_request(security_headers)

MODERATORS = ("moderator", "admin")
ADMINS = ("admin",)
SIGNED_IN = ("writer", "moderator", "admin")
AUDIT_PER_PAGE = 50

View = Callable[..., Any]


def allow(*roles: str) -> Callable[[View], View]:
    """Open a route of this blueprint to `roles` (the default is moderators and admins)."""

    def mark(view: View) -> View:
        view.allowed_roles = roles  # type: ignore[attr-defined]
        return view

    return mark


@bp.before_request
def guard() -> Response | None:
    """Login page for signed-out visitors (401 if they asked for JSON), 403 for anyone whose
    role the route does not allow."""
    view = current_app.view_functions.get(request.endpoint or "")
    roles = getattr(view, "allowed_roles", MODERATORS)
    if not current_user.is_authenticated:
        if wants_json():
            raise Unauthorized(_("Sign in as a moderator."))
        return login_manager.unauthorized()
    if current_user.role not in roles:
        raise Forbidden(_("Admins only.") if roles == ADMINS else _("Moderators and admins only."))
    return None


def _back(default: str) -> Response:
    """Redirect to the form's `next` (a local path only), else to `default`."""
    return redirect(local_path(request.form.get("next")) or default)


def _act(action: Callable[[], Any], done: str, default: str) -> Response:
    """Run a service action; flash its outcome (or its error's message) and go back."""
    try:
        action()
    except RelayError as exc:
        flash(exc.message, "error")
    else:
        flash(done, "success")
    return _back(default)


# --- the queue and turns -----------------------------------------------------------


@bp.route("/admin/", strict_slashes=False)
def queue() -> str:
    """Reported and held turns, oldest first, each with the turns around it."""
    return render_template("admin/queue.html", items=queries.moderation_queue())


@bp.route("/admin/turns/<int:turn_id>/hide", methods=["POST"])
def hide_turn(turn_id: int) -> Response:
    """Hide a turn from readers, exports and the model (a reason is required)."""
    reason = request.form.get("reason")
    return _act(
        lambda: service.hide_turn(turn_id, current_user, reason),
        _("The turn is hidden."),
        url_for("admin.queue"),
    )


@bp.route("/admin/turns/<int:turn_id>/restore", methods=["POST"])
def restore_turn(turn_id: int) -> Response:
    """Show a hidden or held turn again (a held paragraph at the end gets its answer)."""
    reason = request.form.get("reason")
    return _act(
        lambda: service.restore_turn(turn_id, current_user, reason),
        _("The turn is visible again."),
        url_for("admin.queue"),
    )


@bp.route("/admin/turns/<int:turn_id>/dismiss", methods=["POST"])
def dismiss_reports(turn_id: int) -> Response:
    """Close a turn's open reports, leaving the turn as it is."""
    reason = request.form.get("reason")
    return _act(
        lambda: service.dismiss_reports(turn_id, current_user, reason),
        _("The reports are dismissed."),
        url_for("admin.queue"),
    )


# --- stories -------------------------------------------------------------------------


@bp.route("/admin/stories")
def stories() -> str:
    """Stories by title (?q=) and status (?status=), most recently active first."""
    q, status = request.args.get("q", ""), request.args.get("status", "")
    found = lookup.find_stories(q, status if status in ("open", "locked", "finished") else None)
    return render_template("admin/stories.html", stories=found, q=q, status=status)


@bp.route("/admin/stories/<int:story_id>/status", methods=["POST"])
def story_status(story_id: int) -> Response:
    """Lock, unlock or finish a story."""
    status, reason = request.form.get("status", ""), request.form.get("reason")
    return _act(
        lambda: service.set_story_status(story_id, current_user, status, reason),
        _("The story is %(status)s.", status=status_label(status)),
        url_for("admin.stories"),
    )


@bp.route("/admin/stories/<int:story_id>/delete", methods=["POST"])
def delete_story(story_id: int) -> Response:
    """Delete a story with its turns (a reason is required)."""
    reason = request.form.get("reason")
    return _act(
        lambda: service.delete_story(story_id, current_user, reason),
        _("The story is deleted."),
        url_for("admin.stories"),
    )


# --- users ---------------------------------------------------------------------------


@bp.route("/admin/users")
def users() -> str:
    """Users whose name contains ?q=, with suspension and (for admins) role forms."""
    q = request.args.get("q", "")
    return render_template(
        "admin/users.html", users=lookup.find_users(q), q=q, role_form=RoleForm()
    )


@bp.route("/admin/users/<int:user_id>/suspend", methods=["POST"])
def suspend_user(user_id: int) -> Response:
    """Suspend a user: their sessions and API tokens stop working at once."""
    reason = request.form.get("reason")
    return _act(
        lambda: service.suspend_user(user_id, current_user, True, reason),
        _("The user is suspended."),
        url_for("admin.users"),
    )


@bp.route("/admin/users/<int:user_id>/unsuspend", methods=["POST"])
def unsuspend_user(user_id: int) -> Response:
    """Let a suspended user sign in again."""
    reason = request.form.get("reason")
    return _act(
        lambda: service.suspend_user(user_id, current_user, False, reason),
        _("The user may sign in again."),
        url_for("admin.users"),
    )


@bp.route("/admin/users/<int:user_id>/role", methods=["POST"])
@allow(*ADMINS)
def set_role(user_id: int) -> Response:
    """Make a user a writer, moderator or admin (admins only)."""
    role, reason = request.form.get("role"), request.form.get("reason")
    return _act(
        lambda: service.set_role(user_id, current_user, role, reason),
        _("The user is now a %(role)s.", role=ROLE_NAMES.get(role, role)),
        url_for("admin.users"),
    )


# --- stats and the audit log --------------------------------------------------------------


@bp.route("/admin/stats")
def stats() -> str:
    """Stories, turns, writers, jobs, reports and generation latency."""
    return render_template("admin/stats.html", stats=queries.stats())


@bp.route("/admin/audit")
def audit() -> str:
    """Every moderation action, newest first, filtered by actor, action and target type."""
    filters = {key: request.args.get(key, "").strip() for key in ("actor", "action", "target_type")}
    page = arg_int("page", 1, low=1, high=PAGE_MAX)
    entries, total = queries.audit_log(
        **{k: v or None for k, v in filters.items()}, page=page, per_page=AUDIT_PER_PAGE
    )
    pages = max(1, -(-total // AUDIT_PER_PAGE))
    return render_template(
        "admin/audit.html", entries=entries, total=total, page=page, pages=pages, filters=filters
    )


# --- filter lists (admins) -------------------------------------------------------------


@bp.route("/admin/filters")
@allow(*ADMINS)
def filters() -> str:
    """The content filter's words and patterns, per language."""
    return render_template("admin/filters.html", rules=lookup.filter_rules(), form=FilterRuleForm())


@bp.route("/admin/filters", methods=["POST"])
@allow(*ADMINS)
def add_filter_rule() -> Response | tuple[str, int]:
    """Add a word or pattern; a bad one is shown on the form and nothing is stored."""
    form = FilterRuleForm()
    try:
        service.add_filter_rule(
            current_user, form.language.data, form.kind.data, form.value.data, form.action.data
        )
    except RelayError as exc:
        attach_error(form, exc)
        page = render_template("admin/filters.html", rules=lookup.filter_rules(), form=form)
        return page, exc.status
    flash(_("The rule is added."), "success")
    return redirect(url_for("admin.filters"))


@bp.route("/admin/filters/<int:rule_id>/action", methods=["POST"])
@allow(*ADMINS)
def set_filter_action(rule_id: int) -> Response:
    """Choose what a rule does to a writer's paragraph: reject, hold, or allow in fiction."""
    return _act(
        lambda: service.set_filter_action(current_user, rule_id, request.form.get("action")),
        _("The rule's action is saved."),
        url_for("admin.filters"),
    )


@bp.route("/admin/filters/<int:rule_id>/delete", methods=["POST"])
@allow(*ADMINS)
def delete_filter_rule(rule_id: int) -> Response:
    """Remove a word or pattern from the filter."""
    return _act(
        lambda: service.delete_filter_rule(current_user, rule_id),
        _("The rule is removed."),
        url_for("admin.filters"),
    )


# --- reporting a turn (any signed-in reader) ---------------------------------------------


@bp.route("/turns/<int:turn_id>/report", methods=["GET", "POST"])
@allow(*SIGNED_IN)
def report(turn_id: int) -> Response | tuple[str, int] | str:
    """Ask a moderator to look at a turn; reporting it twice counts once."""
    turn = _reportable(turn_id)
    form = ReportForm()
    if request.method == "POST":
        try:
            reports.report_turn(turn.id, current_user, form.reason.data)
        except RelayError as exc:
            form.reason.errors = [exc.message]
            return render_template(
                "admin/report.html", turn=turn, form=form, number=paragraph_number(turn)
            ), exc.status
        # The confirmation stands beside the turn (the page scrolls there), not out of view.
        target = url_for("stories.show", story_id=turn.story_id, _anchor=f"turn-{turn.position}")
        return redirect(target)
    return render_template("admin/report.html", turn=turn, form=form, number=paragraph_number(turn))


def _reportable(turn_id: int) -> Turn:
    """The turn if this user can read it (hidden and others' held turns are not found)."""
    turn = db.session.get(Turn, turn_id)
    visible = turn is not None and (
        current_user.is_moderator
        or (
            not turn.hidden
            and (not turn.held or turn.author_id == current_user.id)
            and request_may_read(turn.story, current_user)
        )
    )
    if not visible:
        raise NotFound(_("Turn %(id)s does not exist.", id=turn_id))
    return turn
