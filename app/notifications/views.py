"""The bell's pages: the list, marking read, the JSON the bell's script reads, the stream."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.auth import current_user_or_none
from app.errorpages import wants_json
from app.notifications import service
from app.stories.views import security_headers, signed_in

bp = Blueprint("notifications", __name__)
bp.after_request(security_headers)
PAGE_SIZE = 50


@bp.app_context_processor
def bell() -> dict[str, Any]:
    """The unread count for the header's bell (signed-in pages only)."""

    def unread() -> int:
        user = current_user_or_none()
        return service.unread_count(user) if user is not None else 0

    return {"notification_unread": unread}


@bp.route("/notifications")
@signed_in
def index() -> str:
    items = service.recent(current_user, limit=PAGE_SIZE)
    unread = [item["id"] for item in items if not item["read"]]
    if unread:
        service.mark_read(current_user, unread)  # seen here; shown as new this once
    return render_template("notifications/index.html", items=items)


@bp.route("/notifications.json")
@signed_in
def recent_json() -> Response:
    user = current_user
    return jsonify(
        {"unread": service.unread_count(user), "notifications": service.recent(user, limit=10)}
    )


@bp.route("/notifications/read", methods=["POST"])
@signed_in
def mark_read() -> Response:
    """Mark every notification read, or the one named by the form's `id`."""
    raw = request.form.get("id", "")
    ids = [int(raw)] if raw.isdigit() and len(raw) < 10 else None
    changed = service.mark_read(current_user, ids)
    if wants_json():
        return jsonify({"marked": changed, "unread": service.unread_count(current_user)})
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("notifications.index")
    return redirect(target)


@bp.route("/notifications/events")
@signed_in
def events() -> Response:
    """The signed-in user's one live stream of notifications (counted in the stream caps)."""
    from app.notifications.stream import user_stream

    return user_stream(current_user._get_current_object())
