"""The shapes of a story's room over the API: invitations and the unlisted link
(registered with the others in app/api/__init__.py)."""

from __future__ import annotations

from flask_restx import Model, fields

from app.api.contract import Bool, Int, ListOf, RequestSchema, Str, When
from app.stories.rooms import INVITE_SECONDS_MAX

InvitationIn = RequestSchema(
    "InvitationIn",
    lambda cfg: {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_uses": {
                "type": "integer",
                "minimum": 0,
                "maximum": 1000,
                "description": "How many people may join with it (0 or absent: any number)",
            },
            "expires_in": {
                "type": "integer",
                "minimum": 0,
                "maximum": INVITE_SECONDS_MAX,
                "multipleOf": 60,
                "description": "Seconds it stays valid, whole minutes (0 or absent: until revoked)",
            },
        },
    },
    optional=True,
)
InvitationOut = Model(
    "Invitation",
    {
        "id": Int(),
        "story_id": Int(),
        "url": Str(description="The link to hand out: its holder joins the story"),
        "token": Str(description="The secret in the link (POST /invitations/{token}/accept)"),
        "created_by": Str(nullable=True),
        "created_at": When(),
        "expires_at": When(nullable=True),
        "max_uses": Int(nullable=True),
        "uses": Int(),
        "revoked": Bool(),
        "usable": Bool(),
    },
)
InvitationList = Model("InvitationList", {"invitations": ListOf(fields.Nested(InvitationOut))})
ShareLink = Model(
    "ShareLink",
    {
        "story_id": Int(),
        "share_url": Str(description="Readers of an unlisted story need this link"),
        "key": Str(description="The link's secret, for ?key= or the X-Story-Key header"),
    },
)

ALL = [InvitationIn, InvitationOut, InvitationList, ShareLink]
