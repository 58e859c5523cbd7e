"""/notifications: the signed-in user's notifications, and marking them read."""

from __future__ import annotations

from flask_restx import Namespace, Resource

from app.accounts.auth import require_user
from app.api import schemas
from app.api.common import query_int
from app.api.contract import body, returns
from app.notifications import service

ns = Namespace("notifications", description="Your notifications (the bell)")


@ns.route("")
class NotificationList(Resource):
    @ns.doc(params={"limit": {"type": "integer", "minimum": 1, "maximum": 100}})
    @returns(ns, schemas.NotificationPage, description="Newest first, with the unread count")
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(422, "Bad limit", schemas.Error)
    def get(self):
        """Your latest notifications (read and unread) and how many are unread."""
        user = require_user()
        limit = query_int("limit", service.RECENT, low=1, high=100)
        return {
            "unread": service.unread_count(user),
            "notifications": service.recent(user, limit=limit),
        }


@ns.route("/read")
class NotificationsRead(Resource):
    @ns.expect(schemas.MarkReadIn)
    @returns(ns, schemas.MarkedOut, description="How many changed, and how many stay unread")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(422, "Bad ids", schemas.Error)
    def post(self):
        """Mark your notifications read: those `ids`, or every one."""
        user = require_user()
        ids = body(schemas.MarkReadIn).get("ids")
        marked = service.mark_read(user, ids)
        return {"marked": marked, "unread": service.unread_count(user)}
