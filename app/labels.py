"""How the interface names the domain's codes, and the story script's words, in the
request's language.

The codes themselves (`ko`, `round_robin`, `locked`, `queued`) stay what the API
and the database say; only pages show these words. Templates get every function
here as a global (see register_labels).
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_babel import lazy_gettext as _l

LANGUAGES = {"en": _l("English"), "ko": _l("Korean")}
STATUSES = {"open": _l("open"), "locked": _l("locked"), "finished": _l("finished")}
POLICIES = {"open": _l("open"), "round_robin": _l("round robin")}
PRESETS = {"careful": _l("careful"), "balanced": _l("balanced"), "wild": _l("wild")}
FILTER_ACTIONS = {
    "reject": _l("Reject: the writer is asked to put it another way"),
    "hold": _l("Hold for review: kept, and the story waits for a moderator"),
    "allow_in_fiction": _l("Allow in fiction: accepted (a character may say it)"),
}
JOB_STATES = {
    "queued": _l("queued"),
    "running": _l("running"),
    "done": _l("done"),
    "failed": _l("failed"),
}


def language_label(code: str) -> str:
    """ "Korean" for "ko" (in the interface's language); an unknown code as it is."""
    return str(LANGUAGES.get(code, code))


def status_label(status: str) -> str:
    return str(STATUSES.get(status, status))


def policy_label(policy: str) -> str:
    return str(POLICIES.get(policy, policy))


def preset_label(preset: str) -> str:
    return str(PRESETS.get(preset, preset))


def filter_action_label(action: str) -> str:
    return str(FILTER_ACTIONS.get(action, action))


def job_state_label(state: str) -> str:
    return str(JOB_STATES.get(state, state))


def from_isoformat(value: str | datetime) -> datetime:
    """A datetime from an ISO string (as the moderation queries hand them to templates)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.removesuffix("Z"))


def register_labels(app: Flask) -> None:
    app.jinja_env.globals.update(
        language_label=language_label,
        status_label=status_label,
        policy_label=policy_label,
        preset_label=preset_label,
        job_state_label=job_state_label,
        filter_action_label=filter_action_label,
        story_script_strings=story_script_strings,
    )
    app.jinja_env.filters["fromisoformat"] = from_isoformat


def story_script_strings() -> dict[str, str]:
    """The story page script's words, in the request's language ({name} marks a value).

    The same messages as the templates', so each sentence is translated once.
    """
    from flask_babel import gettext as _

    return {
        "model": _("✦ model"),
        "writing": _("writing…"),
        "paragraph": _("Paragraph %(number)s", number="{number}"),
        "notShown": _("Not shown to readers"),
        "held": _("Waiting for a moderator's review."),
        "heldReason": _("Waiting for a moderator's review (%(reason)s).", reason="{reason}"),
        "report": _("Report"),
        "reportLabel": _("Report §%(number)s, %(who)s", number="{number}", who="{who}"),
        "theModel": _("the model"),
        "hidden": _("Hidden: %(reason)s", reason="{reason}"),
        "noReason": _("no reason given"),
        "failed": _("The model could not write its turn: %(error)s", error="{error}"),
        "unknownError": _("unknown error"),
        "reconnecting": _("Live updates paused; reconnecting…"),
        "serverAnswered": _("The server answered %(status)s.", status="{status}"),
        "didNotWork": _("That did not work; your text is still here."),
        "unreachable": _("Could not reach the server; your text is still here."),
        "cannotRegenerate": _("Could not regenerate."),
        "modelAdded": _("The model added §%(number)s.", number="{number}"),
        "saw": _("What the model saw"),
        "fork": _("Fork from here"),
        "forkLabel": _("Start a new story from this paragraph"),
        "edit": _("Edit"),
        "withdraw": _("Withdraw"),
        **candidate_script_strings(),
    }


def candidate_script_strings() -> dict[str, str]:
    """The candidate picker's words (static/js/candidates.js)."""
    from flask_babel import gettext as _

    return {
        "candidatesTitle": _("The model wrote several candidates"),
        "candidateLabel": _("Candidate %(number)s", number="{number}"),
        "chooseNote": _(
            "The writer of the paragraph they answer chooses one; at %(time)s the first is taken.",
            time="{time}",
        ),
        "voteNote": _(
            "The participants vote; at %(time)s the most voted is taken (a tie goes to the "
            "writer).",
            time="{time}",
        ),
        "chooseThis": _("Choose this"),
        "voteThis": _("Vote for this"),
        "votes": _("Votes: %(count)s", count="{count}"),
        "alternates": _("Alternates (%(count)s)", count="{count}"),
        "shownNow": _("Shown in the story now."),
        "useThis": _("Use this one"),
    }
