"""How one definition per shape validates, serialises and documents the API.

Responses: flask-restx Models (app/api/schemas.py) that `returns` marshals, so
what the spec says is what the API returns; every output field is required,
and fields that can be null say so (`x-nullable`, Swagger 2's nullable).

Requests: JSON Schemas (SchemaModels in app/api/schemas.py) that the spec
publishes and `body()` validates every request against (jsonschema-rs, in
JSON Schema's own ECMA-262 regular-expression dialect) before the relay sees
it: a body outside its schema is a 422 naming the field, so the spec's
constraints (types, enums, lengths, patterns) are exactly what is enforced.
The relay's own checks (turn order, stale position, ...) answer 409.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

import jsonschema_rs
from flask import current_app, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_restx import Model, SchemaModel, fields, marshal
from flask_restx.utils import unpack
from werkzeug.wrappers import Response

from app.api.common import json_body
from app.errors import Invalid

# Strings the relay can store: no NUL anywhere (PostgreSQL refuses it).
NO_NUL = r"^[^\x00]*$"


def _nullable_schema(schema: dict[str, Any], nullable: bool) -> dict[str, Any]:
    if nullable:
        schema["x-nullable"] = True
    return schema


class _NullableMixin:
    def __init__(self, *args: Any, nullable: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", True)
        super().__init__(*args, **kwargs)
        self.x_nullable = nullable

    def schema(self) -> dict[str, Any]:
        return _nullable_schema(super().schema(), self.x_nullable)


class Str(_NullableMixin, fields.String):
    """A string output field (required; nullable=True when it can be null)."""


class Int(_NullableMixin, fields.Integer):
    """An integer output field."""


class Bool(_NullableMixin, fields.Boolean):
    """A boolean output field."""


class When(_NullableMixin, fields.String):
    """An ISO 8601 timestamp (UTC, ending in Z), as app/stories/serialize.py writes it."""

    __schema_format__ = "date-time"


class Obj(_NullableMixin, fields.Raw):
    """A free-form JSON object (details, counts)."""

    __schema_type__ = "object"


class Nested(fields.Nested):
    """A nested model; nullable=True outputs null for a missing object."""

    def __init__(self, model: Model, nullable: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", True)
        super().__init__(model, allow_null=nullable, **kwargs)
        self.x_nullable = nullable

    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        if self.x_nullable:
            return {"$ref": f"#/definitions/{self.nested.name}", "x-nullable": True}
        return schema


class ListOf(_NullableMixin, fields.List):
    """A list output field."""


class RequestSchema(SchemaModel):
    """A request body's JSON Schema; `build(config)` makes it from the app's settings
    (length limits, configured models), so the spec and the check never differ."""

    def __init__(self, name: str, build: Any, optional: bool = False) -> None:
        super().__init__(name)
        self.build = build
        self.optional = optional  # may be sent without a body at all (every field optional)

    @property
    def _schema(self) -> dict[str, Any]:
        return self.build(current_app.config)

    @_schema.setter
    def _schema(self, value: Any) -> None:  # SchemaModel.__init__ assigns it
        pass


def body(schema: RequestSchema) -> dict[str, Any]:
    """The request's JSON object, valid against `schema`, else 400 (not JSON) or 422.

    For a schema marked optional an empty body counts as {}.
    """
    if schema.optional and not request.get_data(cache=True).strip():
        data: dict[str, Any] = {}
    else:
        data = json_body()
    spec, validator = _validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: len(e.instance_path))
    if errors:
        raise _invalid(errors[0], spec, data)
    return data


def _validator(schema: RequestSchema) -> tuple[dict[str, Any], Any]:
    """The schema for this app's settings and its compiled validator, built once per app."""
    cache = current_app.extensions.setdefault("relay.request_schemas", {})
    if schema.name not in cache:
        spec = schema._schema
        cache[schema.name] = spec, jsonschema_rs.Draft4Validator(spec, validate_formats=True)
    return cache[schema.name]


def _invalid(error: Any, spec: dict[str, Any], data: dict[str, Any]) -> Invalid:
    """The first problem as a 422 naming its field, in words a client can act on."""
    keyword = str(error.schema_path[-1]) if error.schema_path else ""
    properties = spec.get("properties", {})
    if keyword == "additionalProperties":
        field = sorted(set(data) - set(properties))[0]
        allowed = ", ".join(properties)
        return Invalid(
            _("Unknown field %(field)r; allowed: %(allowed)s.", field=field, allowed=allowed),
            field=field,
        )
    if keyword == "required":
        field = next(name for name in spec.get("required", []) if name not in data)
        return Invalid(_("%(field)s is required.", field=field), field=field)
    if error.instance_path:
        field = str(error.instance_path[0])
        rule = properties.get(field, {}).get("description") if keyword == "pattern" else None
    else:
        field, rule = spec.get("x-field", ""), spec.get("description")
    rule = rule or str(_RULES.get(keyword, _RULES["format"]))
    return Invalid(_("%(field)s %(rule)s.", field=field, rule=rule).strip(), field=field)


# In the request's language (a pattern's own rule is the schema's description, in English).
_RULES = {
    "type": _l("has the wrong type"),
    "enum": _l("is not one of the allowed values"),
    "minLength": _l("is too short"),
    "maxLength": _l("is too long"),
    "minimum": _l("is too small"),
    "maximum": _l("is too large"),
    "pattern": _l("must have visible text (and no NUL characters)"),
    "oneOf": _l("does not fit the other fields"),
    "format": _l("is not valid"),
}


class Marshalled(dict):
    """An answer already marshalled with its model (say one kept in a cache): `returns`
    sends it as it is instead of marshalling it again."""


def marshalled(data: Any, model: Model) -> Marshalled:
    return Marshalled(marshal(data, model))


def returns(ns: Any, model: Model, code: int = 200, description: str = "", **doc: Any) -> Any:
    """Document `model` as the answer with `code` and marshal what the view returns with it
    (every field, in the model's order; no field masks: the answer is always the shape).
    A Response (a 304 Not Modified, say) and a Marshalled answer go out as they are; `doc`
    (headers=...) is documented with the answer."""

    def decorate(view: Any) -> Any:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            answer = view(*args, **kwargs)
            if isinstance(answer, Response):
                return answer
            data, status, headers = unpack(answer)
            if not isinstance(data, Marshalled):
                data = marshal(data, model)
            return data, status, headers

        return ns.response(code, description, model, **doc)(wrapper)

    return decorate
