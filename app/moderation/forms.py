"""Browser forms for the admin dashboard and for reporting a turn (Flask-WTF, CSRF-protected).

The one-button actions (hide, restore, dismiss, suspend, lock...) are small forms in
templates/admin/_macros.html carrying csrf_token(); these classes serve the forms with
fields. They only collect fields and carry the CSRF token: the rules (a reason required,
its length, known roles, valid rules) live in app.moderation.service and
app.moderation.filter, whose messages the views flash.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField

from app.accounts.models import ROLES
from app.labels import FILTER_ACTIONS
from app.labels import LANGUAGES as LANGUAGE_NAMES
from app.moderation.audit import REASON_MAX_CHARS
from app.moderation.filter import ACTIONS, KINDS, LANGUAGES, RULE_MAX_CHARS

_REASON = {"maxlength": REASON_MAX_CHARS}
_FILTER_LANGUAGES = {"*": _l("every language"), **LANGUAGE_NAMES}
_KINDS = {"word": _l("word"), "pattern": _l("pattern")}


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[(role, role) for role in ROLES])
    reason = StringField(_l("Reason"), render_kw=_REASON)


class FilterRuleForm(FlaskForm):
    language = SelectField(
        _l("Language"), choices=[(la, _FILTER_LANGUAGES.get(la, la)) for la in LANGUAGES]
    )
    kind = SelectField(_l("Kind"), choices=[(k, _KINDS.get(k, k)) for k in KINDS])
    value = StringField(_l("Word or pattern"), render_kw={"maxlength": RULE_MAX_CHARS})
    action = SelectField(
        _l("What it does to a writer's paragraph"),
        choices=[(a, FILTER_ACTIONS[a]) for a in reversed(ACTIONS)],
        default="reject",
    )


class ReportForm(FlaskForm):
    reason = TextAreaField(_l("Why should a moderator look at this turn?"), render_kw=_REASON)
