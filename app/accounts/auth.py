"""Who is asking: session users (Flask-Login) and API bearer tokens, roles.

A session stores "user_id:session_version:session_id"; the session id names a
`UserSession` row, which logging out deletes (a saved cookie stops working), and
suspending a user or "log out everywhere" bumps the version, which ends every
session at once. Bearer tokens are looked up by
their SHA-256; a suspended user's tokens stop working with the same check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import Flask, Request, g, has_request_context, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import update

from app.accounts.models import ApiToken, User, utcnow
from app.errors import Forbidden, Unauthorized
from app.extensions import db, login_manager

# last_used_at is kept to this resolution (see _touch_token).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def init_auth(app: Flask) -> None:
    login_manager.login_view = "accounts.login"
    # Lazy, and made a plain string in the request's language when flashed.
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.localize_callback = str
    login_manager.user_loader(load_session_user)
    login_manager.request_loader(load_token_user)


def load_session_user(user_id: str) -> User | None:
    """The session's user; a request that carries a bearer token is that token's alone
    (a bad token is a 401, never a fall-back to the browser session and its CSRF rules)."""
    if has_request_context() and bearer_token(request) is not None:
        return load_token_user(request)
    from app.accounts.service import session_is_live

    try:
        raw_id, version, session_id = user_id.split(":", 2)
        user = db.session.get(User, int(raw_id))
    except (ValueError, TypeError):
        return None
    if user is None or str(user.session_version) != version or user.is_suspended:
        return None
    if not session_is_live(user.id, session_id):
        return None
    user.login_session_id = session_id
    return user


def current_session_id() -> str | None:
    """The UserSession id of this browser's sign-in, if it has one."""
    from flask import session

    parts = str(session.get("_user_id") or "").split(":", 2)
    return parts[2] if len(parts) == 3 else None


def bearer_token(req: Request) -> str | None:
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def load_token_user(req: Request) -> User | None:
    raw = bearer_token(req)
    if raw is None:
        return None
    token = db.session.scalars(
        db.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(raw))
    ).first()
    if token is None or token.user.is_suspended:
        return None
    g.api_token = token
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        _touch_token(token.id, now)
    return token.user


def _touch_token(token_id: int, now: datetime) -> None:
    """Record a token's use in a write transaction of its own.

    Not on every request: a write per API call serialises all of them on SQLite.
    begin_write() takes SQLite's write lock up front (BEGIN IMMEDIATE), so a busy
    database makes this wait, not fail with "database is locked" as upgrading a
    read transaction would under concurrent writers.
    """
    from app.database import begin_write

    begin_write()
    db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    db.session.commit()


def current_user_or_none() -> User | None:
    return current_user if current_user.is_authenticated else None


def require_user() -> User:
    """The signed-in user, or Unauthorized (401)."""
    user = current_user_or_none()
    if user is None:
        if bearer_token(request) is not None:
            raise Unauthorized(_("The API token is invalid or revoked."), code="bad_token")
        raise Unauthorized(_("Sign in or send an API token."))
    return user


def role_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Deny by default: only users with one of `roles` get through (401/403 otherwise)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = require_user()
            if user.role not in roles:
                raise Forbidden(_("You do not have permission to do that."))
            return view(*args, **kwargs)

        return wrapped

    return decorator
