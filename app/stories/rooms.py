"""Who is in a story's room: tags, invitations, joining, leaving, removing participants.

Every write here runs under the story's lock (reads.lock_story), like the
relay's; an invitation's use is counted by one conditional UPDATE, so two
holders of a single-use link never both get in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from app.accounts.models import User, utcnow
from app.errors import Conflict, NotFound, RelayError
from app.extensions import db
from app.live.events import publish
from app.moderation.audit import record
from app.notifications.service import invitation_used
from app.stories import rules
from app.stories.access import new_share_token, readable_story
from app.stories.models import Invitation, Participant, Story, StoryTag
from app.stories.reads import lock_story, participant
from app.stories.validation import bounded_int, whole_minutes

INVITE_SECONDS_MAX = 90 * 24 * 3600


def set_tags(story: Story, names: list[str]) -> None:
    """The owner's tags, replacing the old ones (in the caller's transaction)."""
    keep = set(names)
    for tag in list(story.tags):
        if tag.name not in keep:
            story.tags.remove(tag)
    have = {tag.name for tag in story.tags}
    for name in names:
        if name not in have:
            story.tags.append(StoryTag(name=name))
    db.session.flush()


# --- invitations ---------------------------------------------------------------


def create_invitation(
    story_id: int, actor: User, max_uses: Any = None, expires_in: Any = None
) -> Invitation:
    """A new invite link (owner or moderator): `max_uses` holders at most (None: any
    number), valid for `expires_in` seconds (None: until revoked)."""
    uses = None if max_uses in (None, "", 0, "0") else bounded_int(max_uses, "max_uses", 1, 1000, 1)
    seconds = whole_minutes(expires_in, "expires_in", INVITE_SECONDS_MAX)
    readable_story(story_id, actor)
    story = lock_story(story_id)
    try:
        rules.require_manager(story, actor)
        if story.status == "finished":
            rules.check_open(story)
    except RelayError:
        db.session.rollback()
        raise
    now = utcnow()
    invitation = Invitation(
        story_id=story.id,
        token=new_share_token(),
        created_by_id=actor.id,
        max_uses=uses,
        expires_at=now + timedelta(seconds=seconds) if seconds else None,
    )
    db.session.add(invitation)
    db.session.commit()
    return invitation


def invitations(story_id: int, actor: User) -> list[Invitation]:
    """The story's invite links, newest first (owner or moderator)."""
    story = readable_story(story_id, actor)
    rules.require_manager(story, actor)
    return list(
        db.session.scalars(
            select(Invitation).where(Invitation.story_id == story.id).order_by(Invitation.id.desc())
        )
    )


def revoke_invitation(story_id: int, invitation_id: int, actor: User) -> Invitation:
    readable_story(story_id, actor)
    story = lock_story(story_id)
    invitation = db.session.get(Invitation, invitation_id)
    try:
        rules.require_manager(story, actor)
        if invitation is None or invitation.story_id != story.id:
            raise NotFound(_("Invitation %(id)s does not exist.", id=invitation_id))
    except RelayError:
        db.session.rollback()
        raise
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
    db.session.commit()
    return invitation


def invitation_by_token(token: str) -> Invitation:
    """The invitation a link names, usable or not; 404 for an unknown token."""
    found = db.session.scalars(select(Invitation).where(Invitation.token == token)).first()
    if found is None or not token:
        raise NotFound(_("This invitation link is not valid."))
    return found


def invitation_problem(invitation: Invitation, now: datetime | None = None) -> str | None:
    """Why an invitation cannot be used now (a message for its holder), or None."""
    now = now or utcnow()
    if invitation.revoked_at is not None:
        return _("This invitation was withdrawn.")
    if invitation.expires_at is not None and invitation.expires_at <= now:
        return _("This invitation has expired.")
    if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
        return _("This invitation has been used up.")
    return None


def accept_invitation(token: str, user: User) -> tuple[Story, bool]:
    """Join the invitation's story: (the story, whether `user` joined just now). Already a
    participant: nothing is used up. The use is counted by one conditional UPDATE under
    the story's lock, so a single-use link lets exactly one holder in."""
    rules.require_writer(user)
    found = invitation_by_token(token)
    story = lock_story(found.story_id)
    try:
        if participant(story, user) is not None:
            db.session.commit()
            return story, False
        now = utcnow()
        invitation = db.session.get(Invitation, found.id)
        problem = invitation_problem(invitation, now)
        if problem is None and story.status == "finished":
            problem = _("The story is finished.")
        if problem is None and not _use(invitation, now):
            problem = _("This invitation has been used up.")
        if problem is not None:
            raise Conflict(problem, code="invitation_unusable")
        db.session.add(Participant(story_id=story.id, user_id=user.id, invitation_id=invitation.id))
        invitation_used(invitation.created_by_id, story, user.id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    publish(story.id, "participants_changed")
    return story, True


def _use(invitation: Invitation, now: datetime) -> bool:
    """Count one use if the invitation is still usable; False if another holder took it."""
    usable = (
        (Invitation.id == invitation.id)
        & Invitation.revoked_at.is_(None)
        & or_(Invitation.expires_at.is_(None), Invitation.expires_at > now)
        & or_(Invitation.max_uses.is_(None), Invitation.uses < Invitation.max_uses)
    )
    result = db.session.execute(
        update(Invitation)
        .where(usable)
        .values(uses=Invitation.uses + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# --- participants --------------------------------------------------------------


def remove_participant(
    story_id: int, actor: User, username: str, reason: str | None = None
) -> None:
    """Take someone out of the story's round: the owner or a moderator removes anyone but
    the owner; anyone but the owner may leave (remove themselves)."""
    readable_story(story_id, actor)
    story = lock_story(story_id)
    try:
        target = db.session.scalars(select(User).where(User.username == username)).first()
        seat = participant(story, target) if target is not None else None
        if seat is None:
            raise NotFound(_("%(name)s does not take part in this story.", name=username))
        if target.id == story.owner_id:
            raise Conflict(_("The owner cannot leave their own story."), code="owner_stays")
        if target.id != actor.id:
            rules.require_manager(story, actor)
    except RelayError:
        db.session.rollback()
        raise
    db.session.delete(seat)
    if target.id != actor.id and actor.id != story.owner_id:
        record(actor, "story.remove_participant", "story", story.id, reason or "", user=username)
    db.session.commit()
    publish(story.id, "participants_changed")


def new_share_link(story_id: int, actor: User) -> Story:
    """A new unlisted link (owner or moderator): the old one stops working."""
    readable_story(story_id, actor)
    story = lock_story(story_id)
    try:
        rules.require_manager(story, actor)
    except RelayError:
        db.session.rollback()
        raise
    story.share_token = new_share_token()
    db.session.commit()
    return story
