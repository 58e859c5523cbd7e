"""Domain errors shared by every edge (browser, API, admin, CLI).

Each carries an HTTP status and a stable machine code; the API renders them as
{"error": {"code", "message", ...details}}, the browser as a flashed message.
"""

from __future__ import annotations

from typing import Any


class RelayError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class BadRequest(RelayError):
    status, code = 400, "bad_request"


class Unauthorized(RelayError):
    status, code = 401, "unauthorized"


class Forbidden(RelayError):
    status, code = 403, "forbidden"


class NotFound(RelayError):
    status, code = 404, "not_found"


class Conflict(RelayError):
    status, code = 409, "conflict"


class TooLarge(RelayError):
    status, code = 413, "too_large"


class Invalid(RelayError):
    status, code = 422, "invalid"


class Unavailable(RelayError):
    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after: int = 5, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after
