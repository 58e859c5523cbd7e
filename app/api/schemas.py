"""Every shape of the API, defined once (see app/api/contract.py for how each is used).

Output models are marshalled (`contract.returns`), request schemas validate the
body (`contract.body`), and both are what /api/v1/swagger.json publishes.
Limits come from the app's settings and the relay's own constants.
"""

from __future__ import annotations

from typing import Any

from flask_restx import Model, fields

from app.accounts.models import ROLES
from app.accounts.service import PASSWORD_MAX, PASSWORD_MIN
from app.api.contract import NO_NUL, Bool, Int, ListOf, Nested, Obj, RequestSchema, Str, When
from app.moderation.audit import REASON_MAX_CHARS
from app.moderation.filter import ACTIONS, KINDS, RULE_MAX_CHARS, STORY_STRICTNESS
from app.moderation.filter import LANGUAGES as RULE_LANGUAGES
from app.moderation.models import REPORT_STATES
from app.stories.models import (
    JOB_STATES,
    LANGUAGES,
    POLICIES,
    SKIP_ACTIONS,
    STATUSES,
    VISIBILITIES,
    WRITE_ACCESS,
    FinishReason,
)
from app.stories.validation import (
    BANNED_PHRASE_MAX_CHARS,
    BANNED_PHRASES_MAX,
    CANDIDATES_MAX,
    CHOICE_MODES,
    CHOICE_SECONDS_MAX,
    CHOICE_SECONDS_MIN,
    PRESETS,
    SKIP_LIMIT_MAX,
    TAG_MAX_CHARS,
    TAGS_MAX,
    TEXT_PATTERN,
    TITLE_PATTERN,
    TURN_SECONDS_MAX,
)

# --- errors ----------------------------------------------------------------------

ErrorDetail = Model(
    "ErrorDetail",
    {
        "code": fields.String(required=True, example="stale_position"),
        "message": fields.String(required=True),
        "field": fields.String(description="The offending field, for 422"),
    },
)
Error = Model("Error", {"error": fields.Nested(ErrorDetail, required=True)})

# --- requests ------------------------------------------------------------------------


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return schema | ({"required": list(required)} if required else {})


def _text(max_chars: int, pattern: str = TEXT_PATTERN, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_chars, "pattern": pattern, **extra}


def _reason(required: bool = False) -> dict[str, Any]:
    if required:
        return _text(REASON_MAX_CHARS, description="must be 1-500 characters with visible text")
    return {"type": "string", "maxLength": REASON_MAX_CHARS, "pattern": NO_NUL}


Credentials = RequestSchema(
    "Credentials",
    lambda cfg: _object(
        {
            "username": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9_.-]{3,40}(?!\n)$",
                "description": "must be 3-40 of A-Z a-z 0-9 . _ -",
                "example": "ada",
            },
            "password": {
                "type": "string",
                "minLength": PASSWORD_MIN,
                "maxLength": PASSWORD_MAX,
                "pattern": NO_NUL,
                "description": f"must be {PASSWORD_MIN}-{PASSWORD_MAX} characters",
                "example": "correct horse",
            },
        },
        ("username", "password"),
    ),
)


_STRICTNESS = (
    "What the content filter does to a writer's paragraph in this story: 'site' follows each "
    "rule's action (GET /admin/filters); 'hold' holds for review what the site would allow "
    "in fiction; 'reject' refuses every caught paragraph. Stricter than the site, never looser"
)
_ACTION = (
    "What the rule does to a writer's paragraph: 'reject' (422 content_rejected), 'hold' "
    "(stored for a moderator's review; the story waits) or 'allow_in_fiction' (accepted; "
    "words only). The model's output is checked against every rule whatever its action"
)


_BANNED = (
    "Phrases the model must not write (whole phrases, any case, at a word start): the "
    "local samplers never complete one's tokens, and a finished turn is cut before one "
    "spelt with other tokens; a remote model gets single-token bans only"
)


def _story_fields(cfg: Any) -> dict[str, Any]:
    return {
        "title": _text(cfg["TITLE_MAX_CHARS"], TITLE_PATTERN, example="The Lighthouse"),
        "opening": _text(cfg["OPENING_MAX_CHARS"], example="The lamp went out at midnight."),
        "policy": {"type": "string", "enum": list(POLICIES), "default": "open"},
        "preset": {"type": "string", "enum": list(PRESETS), "default": "balanced"},
        "max_new_tokens": {
            "type": "integer",
            "minimum": cfg["AI_TOKENS_MIN"],
            "maximum": cfg["AI_TOKENS_MAX"],
            "description": "Length of the model's turns in tokens, not words: on the shipped "
            "models a token is about 0.72 English words (3.9 characters) or 0.44 Korean words "
            "(1.8 characters), as `flask model eval` measured; the new-story page asks for "
            "words and converts them with the chosen model's measured figure",
        },
        "filter_strictness": {
            "type": "string",
            "enum": list(STORY_STRICTNESS),
            "default": "site",
            "description": _STRICTNESS,
        },
        **_room_fields(),
        "banned_phrases": {
            "type": "array",
            "items": {"type": "string", "maxLength": BANNED_PHRASE_MAX_CHARS},
            "maxItems": BANNED_PHRASES_MAX,
            "description": _BANNED,
        },
        **_candidate_fields(),
    }


def _candidate_fields() -> dict[str, Any]:
    """Candidates per model turn and their choice (app/stories/candidates.py)."""
    return {
        "candidates": {
            "type": "integer",
            "minimum": 1,
            "maximum": CANDIDATES_MAX,
            "default": 1,
            "description": "Continuations the model writes per turn, in one batched pass; "
            "more than one waits for a choice (local models only: a remote model writes one)",
        },
        "choice_mode": {
            "type": "string",
            "enum": list(CHOICE_MODES),
            "default": "writer",
            "description": "writer: the writer of the answered paragraph picks; vote: the "
            "participants vote (ties to the writer)",
        },
        "choice_seconds": {
            "type": "integer",
            "minimum": CHOICE_SECONDS_MIN,
            "maximum": CHOICE_SECONDS_MAX,
            "multipleOf": 60,
            "default": 600,
            "description": "Seconds a choice waits, whole minutes; then the first candidate "
            "(or the vote's winner) is taken",
        },
    }


def _room_fields() -> dict[str, Any]:
    """Who reads, who writes, the round's deadline, the tags (app/stories/validation.py)."""
    return {
        "visibility": {
            "type": "string",
            "enum": list(VISIBILITIES),
            "default": "public",
            "description": _VISIBILITY,
        },
        "write_access": {
            "type": "string",
            "enum": list(WRITE_ACCESS),
            "default": "anyone",
            "description": _WRITE_ACCESS,
        },
        "turn_seconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": TURN_SECONDS_MAX,
            "multipleOf": 60,
            "description": "Round robin: seconds per turn before the writer is skipped, "
            "whole minutes (0: no deadline)",
        },
        "skip_limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": SKIP_LIMIT_MAX,
            "default": 3,
            "description": "Skips in a row before skip_action applies",
        },
        "skip_action": {
            "type": "string",
            "enum": list(SKIP_ACTIONS),
            "default": "move",
            "description": "move: to the end of the round; remove: out of it",
        },
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": TAG_MAX_CHARS},
            "maxItems": TAGS_MAX,
            "description": "Chosen by the owner; stored lower-case",
        },
    }


_VISIBILITY = (
    "public: listed and readable by all; unlisted: not listed, readable with the link "
    "(share_url, which carries a secret key: send it as ?key= or X-Story-Key); private: "
    "participants and moderators only. A story you may not read is a 404"
)
_WRITE_ACCESS = (
    "anyone: anyone signed in (writing joins); participants: those who joined; "
    "invited: those who joined through an invitation"
)


def _story_in(cfg: Any) -> dict[str, Any]:
    return _object(
        {
            **_story_fields(cfg),
            "language": {"type": "string", "enum": list(LANGUAGES)},
            "model": {
                "type": "string",
                "enum": sorted(cfg["RELAY_MODELS"]),
                "description": "A key of GET /models (default: the language's); one that "
                "writes another language is a 409 model_language",
            },
        },
        ("title", "language", "opening"),
    )


StoryIn = RequestSchema("StoryIn", _story_in)
StoryPatch = RequestSchema(
    "StoryPatch",
    lambda cfg: _object(
        {**_story_fields(cfg), "status": {"type": "string", "enum": list(STATUSES)}}
    ),
)
TurnIn = RequestSchema(
    "TurnIn",
    lambda cfg: _object(
        {
            "text": _text(cfg["PARAGRAPH_MAX_CHARS"], example="She lit a candle instead."),
            "expected_position": {
                "type": "integer",
                "minimum": 0,
                "description": "The story's last_position as you saw it",
            },
        },
        ("text", "expected_position"),
    ),
)
ForkIn = RequestSchema(
    "ForkIn",
    lambda cfg: _object(
        {
            "position": {
                "type": "integer",
                "minimum": 0,
                "maximum": 2**31 - 1,
                "description": "The position of the last turn to copy (0: the opening alone); "
                "a turn readers see, else 404",
            },
            "title": _text(
                cfg["TITLE_MAX_CHARS"],
                TITLE_PATTERN,
                description="The new story's title (default: the source's)",
            ),
        },
        ("position",),
    ),
)
ReportIn = RequestSchema("ReportIn", lambda cfg: _object({"reason": _reason(True)}, ("reason",)))
Reason = RequestSchema("Reason", lambda cfg: _object({"reason": _reason()}), optional=True)
ReasonRequired = RequestSchema(
    "ReasonRequired", lambda cfg: _object({"reason": _reason(True)}, ("reason",))
)
StatusIn = RequestSchema(
    "StoryStatusIn",
    lambda cfg: _object(
        {"status": {"type": "string", "enum": list(STATUSES)}, "reason": _reason()}, ("status",)
    ),
)
RoleIn = RequestSchema(
    "RoleIn",
    lambda cfg: _object(
        {"role": {"type": "string", "enum": list(ROLES)}, "reason": _reason()}, ("role",)
    ),
)
RuleIn = RequestSchema(
    "FilterRuleIn",
    lambda cfg: (
        _object(
            {
                "language": {"type": "string", "enum": list(RULE_LANGUAGES)},
                "word": _text(RULE_MAX_CHARS, example="scoundrel", description="A whole word"),
                "pattern": _text(
                    RULE_MAX_CHARS,
                    format="regex",
                    example="sc[o0]undrel",
                    description="A regular expression (case-insensitive)",
                ),
            },
            ("language",),
        )
        | {
            "minProperties": 2,
            "maxProperties": 2,
            "x-field": "word",
            "description": "needs exactly one of word or pattern",
        }
    ),
)

RuleActionIn = RequestSchema(
    "FilterRuleActionIn",
    lambda cfg: _object(
        {"action": {"type": "string", "enum": list(ACTIONS), "description": _ACTION}},
        ("action",),
    ),
)

# --- responses -----------------------------------------------------------------------

UserOut = Model("User", {"id": Int(), "username": Str(), "role": Str(enum=list(ROLES))})
TokenOut = Model(
    "Token",
    {
        "token": Str(description="Send as 'Authorization: Bearer <token>'; shown once"),
        "user": Nested(UserOut),
    },
)
ForkedFrom = Model(
    "ForkedFrom",
    {
        "id": Int(description="The story this one was forked from"),
        "position": Int(description="The position of its turn the fork starts after (0: opening)"),
    },
)
StoryOut = Model(
    "Story",
    {
        "id": Int(),
        "title": Str(),
        "language": Str(enum=list(LANGUAGES)),
        "model": Str(),
        "opening": Str(),
        "policy": Str(enum=list(POLICIES)),
        "preset": Str(enum=list(PRESETS)),
        "max_new_tokens": Int(),
        "filter_strictness": Str(enum=list(STORY_STRICTNESS), description=_STRICTNESS),
        "status": Str(enum=list(STATUSES)),
        "owner": Str(nullable=True),
        "last_position": Int(description="Turns ever appended, hidden ones included"),
        "turn_count": Int(description="Paragraphs readers see (not hidden, not held)"),
        "participants": ListOf(fields.String),
        "tags": ListOf(fields.String, description="The owner's tags, by name"),
        "banned_phrases": ListOf(fields.String, description=_BANNED),
        "forked_from": Nested(
            ForkedFrom, nullable=True, description="A fork: where it began; else null"
        ),
        "visibility": Str(enum=list(VISIBILITIES), description=_VISIBILITY),
        "write_access": Str(enum=list(WRITE_ACCESS), description=_WRITE_ACCESS),
        "turn_seconds": Int(nullable=True, description="Round robin: seconds per turn"),
        "turn_due_at": When(
            nullable=True, description="Round robin: when the writer whose turn it is is skipped"
        ),
        "skip_limit": Int(),
        "skip_action": Str(enum=list(SKIP_ACTIONS)),
        "candidates": Int(description="Continuations the model writes per turn (1-4)"),
        "choice_mode": Str(enum=list(CHOICE_MODES), description="Who picks a candidate"),
        "choice_seconds": Int(description="Seconds a choice waits before the first is taken"),
        "share_url": Str(
            nullable=True, description="The unlisted link; only for the owner and moderators"
        ),
        "created_at": When(),
        "updated_at": When(),
    },
)
StoryPage = Model(
    "StoryPage",
    {
        "stories": ListOf(fields.Nested(StoryOut)),
        "page": Int(),
        "per_page": Int(),
        "pages": Int(),
        "total": Int(),
    },
)
Participants = Model(
    "Participants",
    {
        "story_id": Int(),
        "participants": ListOf(fields.String, description="In join (round-robin) order"),
        "next_writer": Str(nullable=True, description="Round robin: whose turn it is"),
    },
)
TurnOut = Model(
    "Turn",
    {
        "id": Int(),
        "story_id": Int(),
        "position": Int(
            description="The turn's identity: stored, gap-free over every turn ever appended "
            "(hidden ones too); URLs and expected_position use it"
        ),
        "number": Int(
            nullable=True,
            description="The paragraph number readers see: visible paragraphs only, no gaps; "
            "null for a hidden or held turn",
        ),
        "kind": Str(enum=["human", "ai"]),
        "text": Str(description="Raw text: escape it on output"),
        "author": Str(nullable=True),
        "credit": Str(),
        "model": Str(nullable=True),
        "reply_to_id": Int(nullable=True, description="An AI turn: the paragraph it answers"),
        "hidden": Bool(description="Only moderators and admins see hidden turns"),
        "hidden_reason": Str(nullable=True),
        "held": Bool(description="Held by the content filter: its writer and moderators see it"),
        "held_reason": Str(nullable=True),
        "edited_at": When(
            nullable=True,
            description="When its writer edited it (the text before is kept, hidden, as a "
            "turn of its own)",
        ),
        "chapter_title": Str(nullable=True, description="A chapter the owner marked here"),
        "flag": Str(
            nullable=True,
            enum=["loop"],
            description="loop: the model's turn largely repeats earlier text of the story "
            "(regenerated once, then kept and marked)",
        ),
        "created_at": When(),
    },
)
JobOut = Model(
    "Job",
    {
        "id": Int(),
        "story_id": Int(),
        "reply_to_id": Int(description="The paragraph it answers"),
        "status": Str(enum=[str(state) for state in JOB_STATES]),
        "finish_reason": Str(nullable=True, enum=[str(reason) for reason in FinishReason]),
        "attempts": Int(),
        "error": Str(nullable=True, description="Why it failed, for the writer"),
        "turn_id": Int(nullable=True, description="Its AI turn, once appended"),
        "created_at": When(),
        "started_at": When(nullable=True),
        "finished_at": When(nullable=True),
    },
)
TurnList = Model(
    "TurnList",
    {
        "story_id": Int(),
        "last_position": Int(description="Send this as expected_position"),
        "pending_job": Nested(JobOut, nullable=True),
        "turns": ListOf(fields.Nested(TurnOut)),
    },
)
TurnAccepted = Model(
    "TurnAccepted",
    {
        "turn": Nested(TurnOut),
        "job": Nested(JobOut, nullable=True, description="null when the paragraph is held"),
    },
)
JobAccepted = Model("JobAccepted", {"job": Nested(JobOut)})
ModelInfo = Model(
    "ModelInfo",
    {
        "key": Str(),
        "language": Str(nullable=True, description="The language it is the default for"),
        "source": Str(enum=["local", "hub", "remote"]),
        "name": Str(description="Its directory or hub id"),
        "loadable": Bool(),
        "loaded": Bool(description="Loaded in this process"),
        "problem": Str(nullable=True, description="Why it cannot be loaded"),
    },
)
ModelList = Model("ModelList", {"models": ListOf(fields.Nested(ModelInfo))})
HealthOut = Model("Health", {"status": Str(enum=["ok"])})
ReadyOut = Model("Ready", {"status": Str(enum=["ready"]), "checks": Obj()})
ReportOut = Model(
    "Report",
    {"id": Int(), "turn_id": Int(), "reason": Str(), "status": Str(enum=list(REPORT_STATES))},
)

# --- admin -----------------------------------------------------------------------------

RuleOut = Model(
    "FilterRule",
    {
        "id": Int(),
        "language": Str(enum=list(RULE_LANGUAGES)),
        "kind": Str(enum=list(KINDS)),
        "value": Str(),
        "action": Str(enum=list(ACTIONS), description=_ACTION),
    },
)
RuleList = Model("FilterRuleList", {"rules": ListOf(fields.Nested(RuleOut))})
AdminUser = Model(
    "AdminUser",
    {
        "id": Int(),
        "username": Str(),
        "role": Str(enum=list(ROLES)),
        "is_suspended": Bool(),
        "created_at": When(),
    },
)
UserList = Model("AdminUserList", {"users": ListOf(fields.Nested(AdminUser))})
QueueItem = Model(
    "QueueItem",
    {
        "turn": Nested(TurnOut),
        "story": Obj(example={"id": 1, "title": "The Lighthouse"}),
        "since": When(),
        "report_count": Int(),
        "reports": ListOf(fields.Raw(example={"reporter": "ada", "reason": "spam"})),
        "context": ListOf(fields.Nested(TurnOut), description="Turns around it"),
    },
)
Queue = Model("Queue", {"items": ListOf(fields.Nested(QueueItem))})
TurnResult = Model("ModeratedTurn", {"turn": Nested(TurnOut)})
Dismissed = Model("Dismissed", {"turn_id": Int(), "reports_closed": Int()})
AuditOut = Model(
    "AuditEntry",
    {
        "id": Int(),
        "actor": Str(nullable=True),
        "action": Str(example="turn.hide"),
        "target_type": Str(enum=["turn", "story", "user", "filter_rule"]),
        "target_id": Int(nullable=True),
        "reason": Str(),
        "details": Obj(),
        "created_at": When(),
    },
)
AuditPage = Model(
    "AuditPage",
    {"entries": ListOf(fields.Nested(AuditOut)), "page": Int(), "per_page": Int(), "total": Int()},
)
Stats = Model("Stats", {"stats": Obj(description="Counts, jobs by state, latency")})

# --- notifications (issue 18) ------------------------------------------------

NotificationOut = Model(
    "Notification",
    {
        "id": Int(),
        "kind": Str(enum=["your_turn", "continued", "invite_used"]),
        "story_id": Int(),
        "story_title": Str(),
        "actor": Str(nullable=True, description="Who did it; null for the model"),
        "position": Int(nullable=True, description="The turn's position, for 'continued'"),
        "message": Str(description="The sentence, in the request's language"),
        "created_at": When(),
        "read": Bool(),
    },
)
NotificationPage = Model(
    "NotificationPage",
    {"unread": Int(), "notifications": ListOf(fields.Nested(NotificationOut))},
)
MarkReadIn = RequestSchema(
    "MarkReadIn",
    lambda cfg: _object(
        {
            "ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "maxItems": 100,
                "description": "Which to mark read; leave out to mark every one",
            }
        }
    ),
    optional=True,
)
MarkedOut = Model("MarkedRead", {"marked": Int(), "unread": Int()})

ALL = [value for value in list(globals().values()) if isinstance(value, Model | RequestSchema)]
