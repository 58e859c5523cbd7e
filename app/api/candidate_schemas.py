"""The shapes of a job's candidates over the API: the job with its candidates, and the
choice sent back (registered with the others in app/api/__init__.py)."""

from __future__ import annotations

from flask_restx import Model, fields

from app.api.contract import Bool, Int, ListOf, RequestSchema, Str, When
from app.api.schemas import JobOut
from app.stories.candidates import CANDIDATES_MAX, CHOICE_MODES

CandidateOut = Model(
    "Candidate",
    {
        "index": Int(description="Send this as index to choose it"),
        "text": Str(),
        "votes": Int(description="Votes cast for it (choice_mode vote)"),
        "chosen": Bool(description="It is the text of the job's AI turn"),
    },
)
JobDetail = JobOut.inherit(
    "JobDetail",
    {
        "candidates": ListOf(
            fields.Nested(CandidateOut),
            description="Once written: the candidates readers may read (the content filter's "
            "held ones left out); empty for a plain job still running",
        ),
        "choice_mode": Str(enum=list(CHOICE_MODES), description="Who picks: writer or vote"),
        "choose_by": When(
            nullable=True, description="While choosing: when the first candidate (or the "
            "vote's winner) is taken if nobody chose",
        ),
        "may_choose": Bool(description="Whether the caller may choose (or vote) now"),
    },
)  # fmt: skip
ChoiceIn = RequestSchema(
    "ChoiceIn",
    lambda cfg: {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "index": {
                "type": "integer",
                "minimum": 0,
                "maximum": CANDIDATES_MAX - 1,
                "description": "The candidate's index",
            }
        },
        "required": ["index"],
    },
)

ALL = [CandidateOut, JobDetail, ChoiceIn]
