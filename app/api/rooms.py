"""A story's room over the API: invitations, accepting one, leaving or removing a
participant, the unlisted link. Every rule is in app/stories/rooms.py."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_restx import Namespace, Resource

from app.accounts.auth import require_user
from app.api import room_schemas, schemas
from app.api.contract import body, returns
from app.api.stories import participants_out
from app.stories import rooms
from app.stories.access import readable_story
from app.stories.models import Invitation, Story
from app.stories.rules import require_manager
from app.stories.serialize import iso

ns = Namespace("rooms", path="/", description="Invitations, participants, the unlisted link")


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    creator = invitation.created_by
    return {
        "id": invitation.id,
        "story_id": invitation.story_id,
        "url": url_for("stories.invitation", token=invitation.token, _external=True),
        "token": invitation.token,
        "created_by": creator.username if creator else None,
        "created_at": iso(invitation.created_at),
        "expires_at": iso(invitation.expires_at),
        "max_uses": invitation.max_uses,
        "uses": invitation.uses,
        "revoked": invitation.revoked_at is not None,
        "usable": rooms.invitation_problem(invitation) is None,
    }


def share_out(story: Story) -> dict[str, Any]:
    return {
        "story_id": story.id,
        "share_url": url_for("stories.shared", token=story.share_token, _external=True),
        "key": story.share_token,
    }


@ns.route("/stories/<int:story_id>/invitations")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not the owner or a moderator", schemas.Error)
@ns.response(404, "No such story (or not one you may read)", schemas.Error)
class InvitationCollection(Resource):
    @returns(ns, room_schemas.InvitationList, description="The story's invitations, newest first")
    def get(self, story_id: int):
        """The story's invitation links (owner or moderator)."""
        found = rooms.invitations(story_id, require_user())
        return {"invitations": [invitation_out(item) for item in found]}

    @ns.expect(room_schemas.InvitationIn)
    @returns(ns, room_schemas.InvitationOut, code=201, description="A new invitation link")
    @ns.response(409, "The story is finished", schemas.Error)
    @ns.response(422, "Bad max_uses or expires_in", schemas.Error)
    def post(self, story_id: int):
        """Make an invitation link: its holder joins the story (owner or moderator)."""
        user = require_user()
        data = body(room_schemas.InvitationIn)
        made = rooms.create_invitation(story_id, user, data.get("max_uses"), data.get("expires_in"))
        return invitation_out(made), 201


@ns.route("/stories/<int:story_id>/invitations/<int:invitation_id>")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not the owner or a moderator", schemas.Error)
@ns.response(404, "No such story or invitation", schemas.Error)
class InvitationItem(Resource):
    @returns(ns, room_schemas.InvitationOut, description="Revoked: the link no longer works")
    def delete(self, story_id: int, invitation_id: int):
        """Withdraw an invitation link (owner or moderator)."""
        return invitation_out(rooms.revoke_invitation(story_id, invitation_id, require_user()))


@ns.route("/invitations/<token>/accept")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(404, "No such invitation", schemas.Error)
class InvitationAccept(Resource):
    @returns(ns, schemas.Participants, code=201, description="Joined")
    @ns.response(200, "Already a participant (nothing used up)", schemas.Participants)
    @ns.response(409, "Expired, withdrawn or used up (invitation_unusable)", schemas.Error)
    def post(self, token: str):
        """Join the story an invitation names."""
        story, joined = rooms.accept_invitation(token, require_user())
        return participants_out(story), 201 if joined else 200


@ns.route("/stories/<int:story_id>/participants/<username>")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(404, "No such story, or they do not take part", schemas.Error)
class ParticipantItem(Resource):
    @ns.response(204, "Out of the story")
    @ns.response(403, "Removing someone else: not the owner or a moderator", schemas.Error)
    @ns.response(409, "The owner cannot leave (owner_stays)", schemas.Error)
    def delete(self, story_id: int, username: str):
        """Leave a story (your own name) or remove a participant (owner or moderator)."""
        rooms.remove_participant(story_id, require_user(), username)
        return "", 204


@ns.route("/stories/<int:story_id>/share-link")
@ns.response(401, "No or bad token", schemas.Error)
@ns.response(403, "Not the owner or a moderator", schemas.Error)
@ns.response(404, "No such story (or not one you may read)", schemas.Error)
class ShareLinkItem(Resource):
    @returns(ns, room_schemas.ShareLink, description="The story's link (owner or moderator)")
    def get(self, story_id: int):
        """The unlisted link and its key."""
        user = require_user()
        story = readable_story(story_id, user)
        require_manager(story, user)
        return share_out(story)

    @returns(ns, room_schemas.ShareLink, description="A new link; the old one stops working")
    def post(self, story_id: int):
        """Make a new link (owner or moderator): the old one, and every copy of it, stop
        working."""
        return share_out(rooms.new_share_link(story_id, require_user()))
