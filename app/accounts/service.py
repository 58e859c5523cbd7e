"""Account operations shared by the browser, the API and the CLI."""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError

from app.accounts.models import ApiToken, User, UserSession
from app.errors import Conflict, Invalid, Unauthorized
from app.extensions import db

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,40}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 200


def registration_problems(username: Any, password: Any) -> list[Invalid | Conflict]:
    """Everything wrong with a registration at once (the form shows them all together)."""
    problems: list[Invalid | Conflict] = []
    name_ok = isinstance(username, str) and USERNAME.fullmatch(username)  # "$" allows "\n"
    if not name_ok:
        problems.append(
            Invalid(_("username must be 3-40 letters, digits, '.', '_' or '-'."), field="username")
        )
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        problems.append(
            Invalid(
                _(
                    "password must be %(low)s-%(high)s characters.",
                    low=PASSWORD_MIN,
                    high=PASSWORD_MAX,
                ),
                field="password",
            )
        )
    if name_ok:
        taken = db.select(User).where(func.lower(User.username) == username.lower())
        if db.session.scalars(taken).first():  # "Alice" and "alice" would be impersonation
            problems.append(
                Conflict(_("That username is taken."), code="username_taken", field="username")
            )
    return problems


def register_user(username: Any, password: Any) -> User:
    """Create a writer; 422 for a bad name or password, 409 if the name is taken."""
    problems = registration_problems(username, password)
    if problems:
        raise problems[0]
    user = User(username=username)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # registered a moment ago by a concurrent request
        db.session.rollback()
        raise Conflict(_("That username is taken."), code="username_taken") from None
    return user


def authenticate(username: Any, password: Any) -> User:
    """The user with these credentials, or 401; suspended users are refused."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Unauthorized(_("Wrong username or password."), code="bad_credentials")
    user = db.session.scalars(db.select(User).where(User.username == username)).first()
    if user is None or not user.check_password(password):
        raise Unauthorized(_("Wrong username or password."), code="bad_credentials")
    if user.is_suspended:
        raise Unauthorized(_("This account is suspended."), code="suspended")
    return user


def issue_token(user: User) -> str:
    token, raw = ApiToken.issue(user)
    db.session.add(token)
    db.session.commit()
    return raw


def revoke_token(token: ApiToken) -> None:
    db.session.delete(token)
    db.session.commit()


def suspend_user(user: User, suspended: bool) -> None:
    """Suspend or unsuspend; suspension ends sessions and tokens at once."""
    user.is_suspended = suspended
    if suspended:
        user.session_version += 1
        for token in list(user.tokens):
            db.session.delete(token)
    db.session.commit()


def start_session(user: User) -> str:
    """A new browser session row for `user`; its id goes into the session cookie."""
    session_id = secrets.token_urlsafe(32)
    db.session.add(UserSession(id=session_id, user_id=user.id))
    db.session.commit()
    user.login_session_id = session_id
    return session_id


def session_is_live(user_id: int, session_id: str) -> bool:
    """Whether the browser session row exists (not logged out) and is this user's."""
    row = db.session.get(UserSession, session_id)
    return row is not None and row.user_id == user_id


def end_session(session_id: str | None) -> None:
    """Log this browser out on the server: the session row goes."""
    if session_id:
        db.session.execute(delete(UserSession).where(UserSession.id == session_id))
        db.session.commit()


def end_all_sessions(user: User) -> int:
    """Every browser session of `user` ends (API tokens are left alone); returns how many."""
    ended = db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    user.session_version += 1
    db.session.commit()
    return ended.rowcount or 0


def set_locale(user: User, locale: Any) -> None:
    """Save the writer's interface language ("en", "ko"; "" or None follows the browser)."""
    from app.accounts.locale import LANGUAGES

    if locale in ("", None):
        user.locale = None
    elif locale in LANGUAGES:
        user.locale = locale
    else:
        raise Invalid(
            _("locale must be one of: %(choices)s.", choices=", ".join(LANGUAGES)), field="locale"
        )
    db.session.commit()
