"""Browser views for a story's room: the unlisted link, invitations, leaving, removing.

Every change goes through app/stories/rooms.py; a relay error becomes a flashed
message on the page it came from (never a 500).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import IntegerField, SelectField
from wtforms.validators import NumberRange, Optional

from app.accounts.auth import current_user_or_none
from app.errors import RelayError
from app.stories import access, rooms, rules
from app.stories.views import bp, signed_in

EXPIRY_CHOICES = (("86400", "1"), ("604800", "7"), ("2592000", "30"), ("0", "0"))


class InvitationForm(FlaskForm):
    max_uses = IntegerField(validators=[Optional(), NumberRange(min=1, max=1000)])
    expires_in = SelectField(choices=EXPIRY_CHOICES, default="604800")


class ActionForm(FlaskForm):
    """A button that changes something: only its CSRF token."""


@bp.route("/s/<token>")
def shared(token: str) -> Response:
    """An unlisted story's link: this browser may read the story from now on."""
    story = access.story_by_token(token)
    access.remember_key(story)
    return redirect(url_for("stories.show", story_id=story.id))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def invitation(token: str) -> Response | tuple[str, int] | str:
    """An invitation: who invites to which story, and the button that joins it."""
    found = rooms.invitation_by_token(token)
    form = ActionForm()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.path))
        if form.validate_on_submit():
            try:
                story, joined = rooms.accept_invitation(token, current_user)
            except RelayError as exc:
                flash(exc.message, "error")
                return _invitation_page(found, form), exc.status
            flash(_("You joined this story.") if joined else _("You already take part."), "success")
            return redirect(url_for("stories.show", story_id=story.id))
    return _invitation_page(found, form)


def _invitation_page(found: rooms.Invitation, form: FlaskForm) -> str:
    from app.stories.reads import get_story

    return render_template(
        "rooms/invitation.html",
        invitation=found,
        story=get_story(found.story_id),
        problem=rooms.invitation_problem(found),
        form=form,
    )


@bp.route("/stories/<int:story_id>/room")
@signed_in
def room(story_id: int) -> str:
    """The owner's room: participants (remove), invitations (new, withdraw), the link."""
    story = access.readable_story(story_id, current_user_or_none())
    found = rooms.invitations(story_id, current_user)
    return render_template(
        "rooms/room.html",
        story=story,
        invitations=found,
        problems={item.id: rooms.invitation_problem(item) for item in found},
        form=InvitationForm(),
        action=ActionForm(),
    )


@bp.route("/stories/<int:story_id>/invitations", methods=["POST"])
@signed_in
def new_invitation(story_id: int) -> Response:
    form = InvitationForm()
    if not form.validate_on_submit():
        flash(_("Uses must be a number from 1 to 1000, or empty for any number."), "error")
        return redirect(url_for("stories.room", story_id=story_id))
    return _room_action(
        story_id,
        lambda: rooms.create_invitation(
            story_id, current_user, form.max_uses.data, int(form.expires_in.data)
        ),
        _("A new invitation link is ready."),
    )


@bp.route("/stories/<int:story_id>/invitations/<int:invitation_id>/revoke", methods=["POST"])
@signed_in
def revoke_invitation(story_id: int, invitation_id: int) -> Response:
    return _room_action(
        story_id,
        lambda: rooms.revoke_invitation(story_id, invitation_id, current_user),
        _("The invitation no longer works."),
    )


@bp.route("/stories/<int:story_id>/share-link", methods=["POST"])
@signed_in
def new_share_link(story_id: int) -> Response:
    return _room_action(
        story_id,
        lambda: rooms.new_share_link(story_id, current_user),
        _("The story has a new link; the old one no longer works."),
    )


@bp.route("/stories/<int:story_id>/participants/<username>/remove", methods=["POST"])
@signed_in
def remove_participant(story_id: int, username: str) -> Response:
    return _room_action(
        story_id,
        lambda: rooms.remove_participant(story_id, current_user, username),
        _("%(name)s no longer takes part.", name=username),
    )


@bp.route("/stories/<int:story_id>/leave", methods=["POST"])
@signed_in
def leave(story_id: int) -> Response:
    """Leave a story's round (a private story is then closed to you)."""
    if not ActionForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for("stories.show", story_id=story_id))
    try:
        rooms.remove_participant(story_id, current_user, current_user.username)
    except RelayError as exc:
        if exc.status == 404 and access.story_or_none(story_id, current_user) is None:
            raise
        flash(exc.message, "error")
        return redirect(url_for("stories.show", story_id=story_id))
    flash(_("You left the story."), "success")
    story = access.story_or_none(story_id, current_user_or_none())
    if story is None:
        return redirect(url_for("stories.index"))
    return redirect(url_for("stories.show", story_id=story_id))


def _room_action(story_id: int, action, done: str) -> Response:  # noqa: ANN001
    if request.endpoint != "stories.new_invitation" and not ActionForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for("stories.room", story_id=story_id))
    try:
        action()
    except RelayError as exc:
        if exc.status in (403, 404):  # not theirs to change (or to know of): the error page
            raise
        flash(exc.message, "error")
    else:
        flash(done, "success")
    return redirect(url_for("stories.room", story_id=story_id))


def may_join(story: access.Story, user: object) -> bool:
    """The page's Join button: offered exactly when joining without an invitation works."""
    if user is None or story.status != "open":
        return False
    try:
        rules.check_may_join(story, user)
    except RelayError:
        return False
    return story.policy == "round_robin" or story.write_access != "anyone"
