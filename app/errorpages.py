"""Errors rendered by what the client wants: JSON under /api (or Accept: JSON), HTML otherwise."""

from __future__ import annotations

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.errors import RelayError

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


# Werkzeug's own descriptions are English; these say the same in the request's language.
_DEFAULT_MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Sign in first."),
    403: _l("You do not have permission to do that."),
    404: _l("There is nothing at this address."),
    405: _l("This address does not take that method."),
    413: _l("The request is too large."),
    415: _l("Send the body as JSON (Content-Type: application/json)."),
    429: _l("Too many requests; wait a minute and try again."),
    500: _l("Something went wrong on our side."),
    503: _l("The service is unavailable right now; try again shortly."),
}


def _http_message(exc: HTTPException, status: int) -> str:
    """The exception's own description, unless it is Werkzeug's stock English one."""
    stock = type(exc).description
    if exc.description and exc.description != stock:
        return exc.description
    if status in _DEFAULT_MESSAGES:
        return str(_DEFAULT_MESSAGES[status])
    return exc.description or exc.name


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(status: int, code: str, message: str, headers: dict | None = None, **details):
    """One error, as JSON {"error": {...}} or as the error page."""
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message, **details}})
    else:
        response = make_response(_error_page(status, message))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _error_page(status: int, message: str) -> str:
    """The styled error page; a bare one when the page itself cannot render (database down)."""
    try:
        return render_template("error.html", status=status, message=message)
    except Exception:
        from markupsafe import escape

        title = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
        return f"{title}<p>{escape(message)}</p>"


def init_error_handlers(app: Flask) -> None:
    @app.errorhandler(RelayError)
    def _relay_error(exc: RelayError):
        headers = {}
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(exc.status, exc.code, exc.message, headers, **exc.details)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return error_response(
            400,
            "csrf_failed",
            _("The form expired or its CSRF token is missing; reload the page and try again."),
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}  # 405: RFC 9110
        if status == 429:
            headers["Retry-After"] = "60"
        message = _http_message(exc, status)
        return error_response(status, _CODES.get(status, "error"), message, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", _("Something went wrong on our side."))
