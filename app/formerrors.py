"""Service errors shown on browser forms, in the form's words.

The services name fields by their keys ("max_new_tokens must be between 16
and 200."), which suits API clients; a page shows the field's label instead
("Length of the model's turns (tokens) must be between 16 and 200.").
"""

from __future__ import annotations

from typing import Any

from app.errors import RelayError


def form_message(form: Any, exc: RelayError) -> str:
    """The error's message with a leading field key replaced by that field's label."""
    name = str(exc.details.get("field", ""))
    label = getattr(getattr(getattr(form, name, None), "label", None), "text", None)
    if name and label and exc.message.startswith(name + " "):
        return label + exc.message[len(name) :]
    return exc.message


def attach_error(form: Any, exc: RelayError) -> None:
    """Put the error under its field, or above the form when it names none."""
    field = getattr(form, str(exc.details.get("field", "")), None)
    message = form_message(form, exc)
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)
