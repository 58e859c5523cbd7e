"""notify(): store a notification and push it live to its recipient once committed.

Rows are added to the caller's transaction (the turn, the join) and the live event is
published only after that transaction commits (SQLAlchemy's after_commit), so a rolled
back write notifies nobody. Nobody is notified about a story they may not read
(app/stories/access.py can_read), nor about their own doing.

Live delivery: every user has one channel on the story event bus, `user_channel(id)`
(a negative key, so it never meets a story's), served by app/notifications/stream.py.
"""

from __future__ import annotations

from typing import Any

from flask import has_app_context
from flask_babel import gettext as _
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from app.accounts.models import User, utcnow
from app.extensions import db
from app.notifications.models import KINDS, Notification
from app.stories.models import Story, Turn

_PENDING = "relay.notifications"  # session.info key: events to publish after commit
RECENT = 20


def user_channel(user_id: int) -> int:
    """The user's key on the event bus (stories use positive ids)."""
    return -int(user_id)


def notify(
    user_id: int | None,
    kind: str,
    story: Story,
    actor_id: int | None = None,
    position: int | None = None,
) -> Notification | None:
    """Add a notification for `user_id` about `story` to the current transaction; None
    when there is nobody to tell (no user, the actor themself, or may not read it)."""
    assert kind in KINDS, kind
    if user_id is None or user_id == actor_id:
        return None
    recipient = db.session.get(User, user_id)
    if recipient is None or not _may_read(story, recipient):
        return None
    row = Notification(
        user_id=user_id, kind=kind, story_id=story.id, actor_id=actor_id, position=position
    )
    db.session.add(row)
    db.session.flush()
    pending = db.session.info.setdefault(_PENDING, [])
    pending.append((user_id, {"type": "notification", "id": row.id, "kind": kind}))
    return row


def _may_read(story: Story, user: User) -> bool:
    from app.stories.access import can_read

    return can_read(story, user)


def on_turn_added(story: Story, turn: Turn) -> None:
    """The relay's hook (app/stories/append.py add_turn), inside the turn's transaction:
    the owner hears that someone (or the model) continued their story; in round robin,
    once the model has answered, the next writer hears it is their turn."""
    if turn.held:
        return  # readers do not see it yet
    answered = db.session.get(Turn, turn.reply_to_id) if turn.reply_to_id else None
    cause = turn.author_id if turn.kind == "human" else (answered.author_id if answered else None)
    if cause != story.owner_id:  # the owner's own paragraph, or the answer to it: they know
        notify(story.owner_id, "continued", story, actor_id=turn.author_id, position=turn.position)
    if turn.kind == "ai" and story.policy == "round_robin" and story.status == "open":
        notify_next_writer(story, actor_id=cause)


def notify_next_writer(story: Story, actor_id: int | None = None) -> Notification | None:
    """Round robin: tell the participant whose turn it now is (also the deadline sweep's
    hook when it skips a writer)."""
    from app.stories.reads import next_writer_id

    db.session.expire(story, ["participants"])
    return notify(next_writer_id(story), "your_turn", story, actor_id=actor_id)


def invitation_used(inviter_id: int, story: Story, joined_id: int) -> Notification | None:
    """The invitations' hook: `joined_id` joined `story` with `inviter_id`'s invitation."""
    return notify(inviter_id, "invite_used", story, actor_id=joined_id)


# --- after commit: live delivery ---------------------------------------------------


def install() -> None:
    """Publish each committed transaction's notifications (once per process)."""
    if not event.contains(Session, "after_commit", _publish_pending):
        event.listen(Session, "after_commit", _publish_pending)
        event.listen(Session, "after_soft_rollback", _drop_pending)


def _publish_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending or not has_app_context():
        return
    from app.live.events import get_event_bus

    bus = get_event_bus()
    for user_id, payload in pending:
        bus.publish(user_channel(user_id), payload)


def _drop_pending(session: Session, previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING, None)


# --- reads and marking read --------------------------------------------------------


def unread_count(user: User) -> int:
    from app.stories.access import readable_clause

    query = (
        select(func.count(Notification.id))
        .join(Story, Story.id == Notification.story_id)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .where(readable_clause(user))
    )
    return int(db.session.scalar(query) or 0)


def recent(user: User, limit: int = RECENT) -> list[dict[str, Any]]:
    """The user's latest notifications, newest first, as the bell and the API show them."""
    from app.stories.access import readable_clause

    query = (
        select(Notification, Story.title, User.username)
        .join(Story, Story.id == Notification.story_id)
        .outerjoin(User, User.id == Notification.actor_id)
        .where(Notification.user_id == user.id, readable_clause(user))
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    return [notification_dict(n, title, name) for n, title, name in db.session.execute(query)]


def notification_dict(n: Notification, title: str, actor: str | None) -> dict[str, Any]:
    from app.stories.serialize import _iso as iso

    return {
        "id": n.id,
        "kind": n.kind,
        "story_id": n.story_id,
        "story_title": title,
        "actor": actor,
        "position": n.position,
        "message": message(n.kind, title, actor),
        "created_at": iso(n.created_at),
        "read": n.read_at is not None,
    }


def message(kind: str, title: str, actor: str | None) -> str:
    """The notification's sentence, in the request's language."""
    if kind == "your_turn":
        return _("It is your turn to write in “%(title)s”.", title=title)
    if kind == "invite_used":
        return _("%(name)s joined “%(title)s” with your invitation.", name=actor, title=title)
    if actor is None:
        return _("The model continued your story “%(title)s”.", title=title)
    return _("%(name)s continued your story “%(title)s”.", name=actor, title=title)


def mark_read(user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all, or those `ids`); how many changed."""
    query = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    changed = db.session.execute(query.values(read_at=utcnow())).rowcount
    db.session.commit()
    return int(changed or 0)
