"""Swagger models for the API's requests and responses (documentation only).

Input is validated by the service functions, not by flask-restx, so every error
keeps the one shape documented here as `Error`.
"""

from __future__ import annotations

from flask_restx import Model, fields

ErrorDetail = Model(
    "ErrorDetail",
    {
        "code": fields.String(required=True, example="stale_position"),
        "message": fields.String(required=True),
        "field": fields.String(description="The offending field, for 422"),
    },
)
Error = Model("Error", {"error": fields.Nested(ErrorDetail, required=True)})

Credentials = Model(
    "Credentials",
    {
        "username": fields.String(
            required=True, example="ada", description="3-40 of A-Z a-z 0-9 . _ -"
        ),
        "password": fields.String(
            required=True, example="correct horse", description="8-200 chars"
        ),
    },
)
UserOut = Model(
    "User",
    {"id": fields.Integer, "username": fields.String, "role": fields.String},
)
TokenOut = Model(
    "Token",
    {
        "token": fields.String(description="Send as 'Authorization: Bearer <token>'; shown once"),
        "user": fields.Nested(UserOut),
    },
)

StoryIn = Model(
    "StoryIn",
    {
        "title": fields.String(required=True, example="The Lighthouse"),
        "language": fields.String(required=True, enum=["en", "ko"]),
        "opening": fields.String(required=True, example="The lamp went out at midnight."),
        "policy": fields.String(enum=["open", "round_robin"], default="open"),
        "preset": fields.String(enum=["careful", "balanced", "wild"], default="balanced"),
        "model": fields.String(description="A key of GET /models; default: the language's"),
        "max_new_tokens": fields.Integer(description="Length of the model's turns, bounded"),
    },
)
StoryPatch = Model(
    "StoryPatch",
    {
        "title": fields.String,
        "opening": fields.String,
        "language": fields.String(enum=["en", "ko"]),
        "policy": fields.String(enum=["open", "round_robin"]),
        "preset": fields.String(enum=["careful", "balanced", "wild"]),
        "max_new_tokens": fields.Integer,
        "status": fields.String(enum=["open", "locked", "finished"]),
    },
)
StoryOut = Model(
    "Story",
    {
        "id": fields.Integer,
        "title": fields.String,
        "language": fields.String,
        "model": fields.String,
        "opening": fields.String,
        "policy": fields.String,
        "preset": fields.String,
        "max_new_tokens": fields.Integer,
        "status": fields.String,
        "owner": fields.String,
        "last_position": fields.Integer(description="Turns ever appended, hidden ones included"),
        "turn_count": fields.Integer(description="Visible turns"),
        "participants": fields.List(fields.String),
        "created_at": fields.DateTime,
        "updated_at": fields.DateTime,
    },
)
StoryPage = Model(
    "StoryPage",
    {
        "stories": fields.List(fields.Nested(StoryOut)),
        "page": fields.Integer,
        "per_page": fields.Integer,
        "pages": fields.Integer,
        "total": fields.Integer,
    },
)
Participants = Model(
    "Participants",
    {
        "story_id": fields.Integer,
        "participants": fields.List(fields.String, description="In join (round-robin) order"),
        "next_writer": fields.String(description="Round robin: whose turn it is"),
    },
)

TurnOut = Model(
    "Turn",
    {
        "id": fields.Integer,
        "story_id": fields.Integer,
        "position": fields.Integer(
            description="The turn's identity: stored, gap-free over every turn ever appended "
            "(hidden ones too); URLs and expected_position use it"
        ),
        "number": fields.Integer(
            description="The paragraph number readers see: visible paragraphs only, no gaps; "
            "null for a hidden or held turn"
        ),
        "kind": fields.String(enum=["human", "ai"]),
        "text": fields.String(description="Raw text: escape it on output"),
        "author": fields.String,
        "credit": fields.String,
        "model": fields.String,
        "reply_to_id": fields.Integer,
        "hidden": fields.Boolean(description="Only moderators and admins see hidden turns"),
        "hidden_reason": fields.String,
        "created_at": fields.DateTime,
    },
)
JobOut = Model(
    "Job",
    {
        "id": fields.Integer,
        "story_id": fields.Integer,
        "reply_to_id": fields.Integer,
        "status": fields.String(enum=["queued", "running", "done", "failed"]),
        "attempts": fields.Integer,
        "error": fields.String,
        "turn_id": fields.Integer,
        "created_at": fields.DateTime,
        "started_at": fields.DateTime,
        "finished_at": fields.DateTime,
    },
)
TurnIn = Model(
    "TurnIn",
    {
        "text": fields.String(required=True, example="She lit a candle instead."),
        "expected_position": fields.Integer(
            required=True, description="The story's last_position as you saw it"
        ),
    },
)
TurnList = Model(
    "TurnList",
    {
        "story_id": fields.Integer,
        "last_position": fields.Integer(description="Send this as expected_position"),
        "pending_job": fields.Nested(JobOut, allow_null=True),
        "turns": fields.List(fields.Nested(TurnOut)),
    },
)
TurnAccepted = Model("TurnAccepted", {"turn": fields.Nested(TurnOut), "job": fields.Nested(JobOut)})
JobAccepted = Model("JobAccepted", {"job": fields.Nested(JobOut)})

ModelInfo = Model(
    "ModelInfo",
    {
        "key": fields.String,
        "language": fields.String(description="The language it is the default for, if any"),
        "source": fields.String(description="Local directory or hub id"),
        "loadable": fields.Boolean,
        "ready": fields.Boolean(description="Loaded in this process"),
    },
)

ALL = [value for value in list(globals().values()) if isinstance(value, Model)]
