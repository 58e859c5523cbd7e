"""The interface language of a request: which one, and where it comes from.

In order: the signed-in writer's preference (User.locale), else the switch kept
in the RELAY_LANG cookie, else the browser's Accept-Language, else English.
The API is stateless: its messages follow Accept-Language alone (its error
codes never change). Story text keeps the story's own language whatever the
interface speaks.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, has_request_context, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.extensions import babel

LANGUAGES = ("en", "ko")
DEFAULT_LOCALE = "en"
COOKIE = "relay_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Each language named in itself, so a reader who cannot read the page still finds theirs.
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}
ROLE_NAMES = {"writer": _l("writer"), "moderator": _l("moderator"), "admin": _l("admin")}
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def supported(value: str | None) -> str | None:
    """The language code if this site speaks it ("ko-KR" and "KO" count as "ko"), else None."""
    if not value:
        return None
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else None


def select_locale() -> str:
    """The locale for this request (Flask-Babel's locale selector)."""
    if not has_request_context():
        return DEFAULT_LOCALE
    if not request.path.startswith("/api/"):
        user = _signed_in_user()
        preferred = supported(user.locale) if user is not None else None
        chosen = preferred or supported(request.cookies.get(COOKIE))
        if chosen:
            return chosen
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LOCALE


def current_locale() -> str:
    """The language code this request's pages and messages are in ("en" or "ko").

    Anything cached per response (an ETag, a rendered page) must vary by it.
    """
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LOCALE


def _signed_in_user():
    """The session's user, without making Flask-Login load one outside a request's flow."""
    try:
        user = current_user._get_current_object()
    except Exception:  # no login manager bound (a bare app context)
        return None
    return user if getattr(user, "is_authenticated", False) else None


def init_locale(app: Flask) -> None:
    """Bind Flask-Babel with our selector and catalogues, and give templates the switch."""
    babel.init_app(
        app,
        default_locale=DEFAULT_LOCALE,
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=select_locale,
    )

    from app.labels import register_labels

    register_labels(app)

    @app.context_processor
    def _locale_globals() -> dict:
        lang = current_locale()
        return {
            "current_locale": lang,
            "language_names": LANGUAGE_NAMES,
            "other_languages": [code for code in LANGUAGES if code != lang],
            "role_names": ROLE_NAMES,
        }

    @app.after_request
    def _vary_on_language(response):
        if response.mimetype == "text/html":
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response
