"""Browser forms for accounts: registration and sign-in (Flask-WTF, CSRF-protected).

The rules on names and passwords live in app.accounts.service; these forms only
collect the fields and carry the CSRF token, and show the service's messages.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired

from app.accounts.service import PASSWORD_MAX, PASSWORD_MIN


class RegisterForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[InputRequired()],
        description="3–40 letters, digits, '.', '_' or '-'.",
        render_kw={"autocomplete": "username", "maxlength": 40, "autocapitalize": "none"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired()],
        description=f"{PASSWORD_MIN}–{PASSWORD_MAX} characters.",
        render_kw={"autocomplete": "new-password", "maxlength": PASSWORD_MAX},
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[InputRequired(), EqualTo("password", message="The passwords differ.")],
        render_kw={"autocomplete": "new-password", "maxlength": PASSWORD_MAX},
    )


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[InputRequired()],
        render_kw={"autocomplete": "username", "autocapitalize": "none"},
    )
    password = PasswordField(
        "Password", validators=[InputRequired()], render_kw={"autocomplete": "current-password"}
    )
    remember = BooleanField("Keep me signed in")
