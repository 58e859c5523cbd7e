"""What every API resource shares: the JSON body, query numbers, CSRF, rate-limit keys.

Resources stay thin: they read input here, call the service modules
(app/stories/relay.py for writes, reads.py and rules.py for reads and checks,
app/accounts/service.py) and serialise with
app/stories/serialize.py. Every error is an app.errors.RelayError, rendered by
app/errorpages.py as {"error": {"code", "message", ...}}.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_babel import gettext as _

from app.accounts.auth import bearer_token, current_user_or_none
from app.errors import BadRequest, Invalid, Unauthorized
from app.extensions import csrf
from app.inputs import ID_MAX, decimal, unstorable_field

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PER_PAGE_DEFAULT, PER_PAGE_MAX = 20, 100


def json_body() -> dict[str, Any]:
    """The request's JSON object; 400 for a wrong content type, bad JSON or a non-object
    (app.api.contract.body then checks it against its schema)."""
    request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH, whatever the content type
    if not request.is_json:
        raise BadRequest(
            _("Send a JSON object with Content-Type: application/json."), code="not_json"
        )
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested thousands deep
        data = None
    if data is None:
        raise BadRequest(_("The body is not valid JSON."), code="malformed_json")
    if not isinstance(data, dict):
        raise BadRequest(_("The body must be a JSON object."), code="not_an_object")
    found = unstorable_field(data)
    if found is not None:
        field, problem = found
        raise Invalid(
            _(
                "%(field)s contains %(problem)s; send plain Unicode text.",
                field=field,
                problem=problem,
            ),
            field=field,
        )
    return data


def query_int(name: str, default: int, low: int, high: int = ID_MAX) -> int:
    """An integer query argument (ASCII digits) within bounds, or 422 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    number = decimal(raw)
    if number is None:
        raise Invalid(_("%(field)s must be an integer.", field=name), field=name)
    if not low <= number <= high:
        raise Invalid(
            _("%(field)s must be between %(low)s and %(high)s.", field=name, low=low, high=high),
            field=name,
        )
    return number


def turns_limit() -> str:
    return current_app.config["RATELIMIT_TURNS"]


def login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


SIGN_IN_ENDPOINTS = frozenset({"api.auth_register", "api.auth_token_list"})


def refuse_bad_token() -> None:
    """A request that carries a bearer token is that token's: a wrong or revoked one is a 401
    on every endpoint, public ones included (signing in for a new token excepted)."""
    if request.endpoint in SIGN_IN_ENDPOINTS or bearer_token(request) is None:
        return
    if current_user_or_none() is None:
        raise Unauthorized(_("The API token is invalid or revoked."), code="bad_token")


def csrf_for_session_users() -> None:
    """Unsafe calls made with the browser's session cookie must carry X-CSRFToken.

    Bearer-token calls are exempt (a cross-site page cannot set Authorization),
    and so are calls with no session user: they can only act through the
    credentials in their own JSON body, which a cross-site form cannot send.
    """
    if request.method in SAFE_METHODS or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    if bearer_token(request) is not None or current_user_or_none() is None:
        return
    csrf.protect()
