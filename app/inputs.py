"""Reading numbers, paths and text from requests without tripping the database or the codecs.

Shared by the API and the browser views: ids in URLs stop at the largest value
an INTEGER column holds on PostgreSQL (past it PostgreSQL answers "integer out
of range", and past 2**63 SQLite raises OverflowError), query
numbers are ASCII digits only (`int()` also takes "٣" and "²"-like digits that
`str.isdigit()` lets through), redirect targets stay on this site, and JSON
text with unpaired UTF-16 surrogates ("\\ud800", legal JSON but not Unicode
text) or NUL characters (PostgreSQL text cannot hold, or even search for, one)
is refused before it reaches a hash, a query or a commit.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from app.errors import BadRequest

ID_MAX = 2**31 - 1  # the largest INTEGER on PostgreSQL (ids and positions are INTEGER columns)
PAGE_MAX = 1_000_000  # keeps the offset (page - 1) * per_page inside a 64-bit integer


class IdConverter(IntegerConverter):
    """`<int:...>` in routes: no match (404) past ID_MAX."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = ID_MAX, signed: bool = False) -> None:  # fmt: skip
        super().__init__(map, fixed_digits, min, max, signed)


DIGITS_MAX = 30  # longer is past every bound here (and int() refuses over 4,300 digits)


def decimal(raw: str | None) -> int | None:
    """An optionally signed ASCII decimal integer of at most DIGITS_MAX digits, else None."""
    if raw is None:
        return None
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > DIGITS_MAX:
        return None
    return int(text)


def arg_int(name: str, default: int | None, low: int = 0, high: int = ID_MAX) -> int | None:
    """A browser page's query number: anything unreadable gives `default`, the rest is
    clamped into [low, high] (pages are forgiving; the API answers 422 instead)."""
    number = decimal(request.args.get(name))
    if number is None:
        return default
    return min(max(number, low), high)


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site (no scheme, host, backslash or control
    character that a browser or Werkzeug would strip into "//elsewhere"), else None."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def unstorable(text: str) -> str | None:
    """What in `text` no database column can hold, or None."""
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "an unpaired UTF-16 surrogate (\\ud800-\\udfff)"
    return None


def unstorable_field(data: Any, field: str | None = None) -> tuple[str, str] | None:
    """(top-level field, what is wrong) for the first unstorable string in parsed JSON."""
    if isinstance(data, str):
        problem = unstorable(data)
        return (field or "body", problem) if problem else None
    items: list[tuple[Any, str | None]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = field or str(key)
            items += [(key, name), (value, name)]
    elif isinstance(data, list):
        items = [(value, field) for value in data]
    for value, name in items:
        found = unstorable_field(value, name)
        if found is not None:
            return found
    return None


def refuse_nul_characters() -> None:
    """Before every request: a NUL in the query string or a form field is a 400 (PostgreSQL
    raised on it mid-query: a search box or a reason with %00 was a 500)."""
    fields = [*request.args.lists(), *(request.form.lists() if request.form else [])]
    if any("\x00" in key or any("\x00" in v for v in values) for key, values in fields):
        raise BadRequest(
            _("The request contains a NUL character (\\u0000), which text here cannot hold."),
            code="nul_character",
        )
