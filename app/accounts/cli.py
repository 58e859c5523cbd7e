"""`flask users ...`: create the first admin, set roles."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.accounts.models import ROLES, User
from app.accounts.service import register_user
from app.errors import RelayError
from app.extensions import db

users_cli = AppGroup("users", help="Manage users.")


@users_cli.command("create-admin")
@click.argument("username")
@click.password_option(envvar="RELAY_ADMIN_PASSWORD")
def create_admin(username: str, password: str) -> None:
    """Create USERNAME as an admin (or promote an existing user)."""
    user = db.session.scalars(db.select(User).where(User.username == username)).first()
    try:
        if user is None:
            user = register_user(username, password)
    except RelayError as exc:
        raise click.ClickException(exc.message) from exc
    user.role = "admin"
    db.session.commit()
    click.echo(f"{username} is an admin.")


@users_cli.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def set_role(username: str, role: str) -> None:
    """Give USERNAME a role."""
    user = db.session.scalars(db.select(User).where(User.username == username)).first()
    if user is None:
        raise click.ClickException(f"No user named {username!r}.")
    user.role = role
    db.session.commit()
    click.echo(f"{username} is now a {role}.")
