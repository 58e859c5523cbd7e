"""/turns/<id>/reports: any signed-in reader asks a moderator to look at a turn."""

from __future__ import annotations

from flask_restx import Namespace, Resource

from app.accounts.auth import require_user
from app.api import schemas
from app.api.contract import body, returns
from app.moderation import reports

ns = Namespace("reports", path="/turns", description="Reporting turns to the moderators")


@ns.route("/<int:turn_id>/reports")
class TurnReports(Resource):
    @ns.expect(schemas.ReportIn)
    @returns(
        ns,
        schemas.ReportOut,
        code=201,
        description="Reported (reporting the same turn again returns the first report)",
    )
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "No or bad token", schemas.Error)
    @ns.response(404, "No such turn (or hidden)", schemas.Error)
    @ns.response(422, "Missing or overlong reason", schemas.Error)
    def post(self, turn_id: int):
        """Report a turn with a reason; one report per reader and turn, however often sent."""
        user = require_user()
        data = body(schemas.ReportIn)
        report = reports.report_turn(turn_id, user, data.get("reason"))
        return report, 201
