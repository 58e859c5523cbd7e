"""/turns/<id>/reports: any signed-in reader asks a moderator to look at a turn."""

from __future__ import annotations

from flask_restx import Namespace, Resource, fields

from app.accounts.auth import require_user
from app.api import schemas
from app.api.common import json_body
from app.moderation import reports

ns = Namespace("reports", path="/turns", description="Reporting turns to the moderators")

ReportIn = ns.model(
    "ReportIn", {"reason": fields.String(required=True, example="Spam link", max_length=500)}
)
ReportOut = ns.model(
    "Report",
    {
        "id": fields.Integer,
        "turn_id": fields.Integer,
        "reason": fields.String,
        "status": fields.String(enum=["open", "dismissed", "actioned"]),
    },
)


@ns.route("/<int:turn_id>/reports")
class TurnReports(Resource):
    @ns.expect(ReportIn)
    @ns.response(
        201, "Reported (reporting the same turn again returns the first report)", ReportOut
    )
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(404, "No such turn (or hidden)", schemas.Error)
    @ns.response(422, "Missing or overlong reason", schemas.Error)
    def post(self, turn_id: int):
        """Report a turn with a reason; one report per reader and turn, however often sent."""
        user = require_user()
        data = json_body(("reason",))
        report = reports.report_turn(turn_id, user, data.get("reason"))
        body = {
            "id": report.id,
            "turn_id": report.turn_id,
            "reason": report.reason,
            "status": report.status,
        }
        return body, 201
