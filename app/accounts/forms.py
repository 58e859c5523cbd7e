"""Browser forms for accounts: registration and sign-in (Flask-WTF, CSRF-protected).

The rules on names and passwords live in app.accounts.service; these forms only
collect the fields and carry the CSRF token, and show the service's messages.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import EqualTo, InputRequired

from app.accounts.locale import LANGUAGE_NAMES
from app.accounts.service import PASSWORD_MAX, PASSWORD_MIN


class RegisterForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[InputRequired()],
        description=_l("3–40 letters, digits, '.', '_' or '-'."),
        render_kw={"autocomplete": "username", "maxlength": 40, "autocapitalize": "none"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired()],
        description=_l("%(low)s–%(high)s characters.", low=PASSWORD_MIN, high=PASSWORD_MAX),
        render_kw={"autocomplete": "new-password", "maxlength": PASSWORD_MAX},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The passwords differ."))],
        render_kw={"autocomplete": "new-password", "maxlength": PASSWORD_MAX},
    )


class LoginForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[InputRequired()],
        render_kw={"autocomplete": "username", "autocapitalize": "none"},
    )
    password = PasswordField(
        _l("Password"), validators=[InputRequired()], render_kw={"autocomplete": "current-password"}
    )
    remember = BooleanField(_l("Keep me signed in"))


class AccountForm(FlaskForm):
    """The writer's own settings: for now, the language of the interface."""

    locale = SelectField(
        _l("Language of the site"),
        choices=[("", _l("Follow my browser"))] + list(LANGUAGE_NAMES.items()),
        default="",
        description=_l(
            "Stories keep their own language; this changes buttons, hints and messages."
        ),
    )
