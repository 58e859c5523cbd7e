"""Browser views: register, log in, log out, the account page and the language switch.

The rules live in app.accounts.service (register_user, authenticate); these
views show its messages next to the form fields. Login and registration POSTs
are rate-limited with RATELIMIT_LOGIN.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.accounts.auth import current_session_id
from app.accounts.forms import AccountForm, LoginForm, RegisterForm
from app.accounts.locale import COOKIE, COOKIE_MAX_AGE, select_locale, supported
from app.accounts.service import (
    authenticate,
    end_all_sessions,
    end_session,
    register_user,
    registration_problems,
    set_locale,
    start_session,
)
from app.errors import RelayError
from app.extensions import csrf, limiter
from app.formerrors import attach_error
from app.inputs import local_path
from app.stories.views import security_headers

bp = Blueprint("accounts", __name__)
bp.after_request(security_headers)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def register() -> Response | tuple[str, int] | str:
    """Create a writer account and sign in; the form shows what was wrong otherwise."""
    if current_user.is_authenticated:
        return redirect(url_for("stories.index"))
    form = RegisterForm()
    if form.is_submitted():
        valid = form.validate()  # every field's own check, and then every account rule
        problems = registration_problems(form.username.data, form.password.data)
        for problem in problems:
            attach_error(form, problem)
        if not valid or problems:
            status = 409 if valid and all(p.status == 409 for p in problems) else 422
            return render_template("accounts/register.html", form=form), status
        try:
            user = register_user(form.username.data, form.password.data)
        except RelayError as exc:  # taken a moment ago by a concurrent request
            attach_error(form, exc)
            return render_template("accounts/register.html", form=form), exc.status
        start_session(user)
        login_user(user)
        flash(_("Welcome, %(name)s. Start a story or join one.", name=user.username), "success")
        return redirect(_safe_next() or url_for("stories.index"))
    return render_template("accounts/register.html", form=form), 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Response | tuple[str, int] | str:
    """Sign in with username and password; a wrong pair shows one vague message."""
    if current_user.is_authenticated:
        return redirect(_safe_next() or url_for("stories.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data)
        except RelayError as exc:
            form.form_errors.append(exc.message)
            return render_template("accounts/login.html", form=form), exc.status
        start_session(user)
        login_user(user, remember=bool(form.remember.data))
        return redirect(_safe_next() or url_for("stories.index"))
    status = 422 if form.is_submitted() else 200
    return render_template("accounts/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out this browser (a CSRF-protected POST, so no page can sign you out by a link);
    the session ends on the server too, so a copied cookie no longer works."""
    end_session(current_session_id())
    logout_user()
    flash(_("You are signed out."), "success")
    return redirect(url_for("stories.index"))


@bp.route("/logout/everywhere", methods=["POST"])
@login_required
def logout_everywhere() -> Response:
    """End every browser session of this user (other devices too); API tokens stay."""
    ended = end_all_sessions(current_user)
    logout_user()
    flash(_("You are signed out everywhere (%(count)s sessions ended).", count=ended), "success")
    return redirect(url_for("stories.index"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | tuple[str, int] | str:
    """The writer's settings: the language of the interface (saved on the account)."""
    form = AccountForm()
    if form.validate_on_submit():
        set_locale(current_user, form.locale.data)
        # Said in the language just chosen, which this request has not picked yet.
        with force_locale(supported(form.locale.data) or select_locale()):
            flash(_("Your settings are saved."), "success")
        return redirect(url_for("accounts.account"))
    if not form.is_submitted():
        form.locale.data = current_user.locale or ""
    status = 422 if form.is_submitted() else 200
    return render_template("accounts/account.html", form=form), status


@bp.route("/language", methods=["POST"])
@csrf.exempt
def switch_language() -> Response:
    """The header's language switch: kept in a cookie, and on the account when signed in.

    A signed-in writer's switch saves their preference, so it needs the CSRF token; an
    anonymous reader's only sets a cookie, so their pages need no token (and stay cacheable).
    """
    if current_user.is_authenticated:
        csrf.protect()
    lang = supported(request.form.get("lang"))
    response = redirect(_safe_next() or url_for("stories.index"))
    if lang is None:
        return response
    response.set_cookie(
        COOKIE,
        lang,
        max_age=COOKIE_MAX_AGE,
        samesite="Lax",
        httponly=True,
        secure=request.is_secure,
    )
    if current_user.is_authenticated:
        set_locale(current_user, lang)
    return response


def _safe_next() -> str | None:
    """The ?next= target if it stays on this site (no open redirects)."""
    return local_path(request.args.get("next") or request.form.get("next"))
