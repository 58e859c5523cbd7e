"""Migrations build the models' schema; the users CLI creates the first admin."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import select, text

from app.accounts.models import User
from app.extensions import db
from app.moderation.filter import DEFAULT_RULES
from app.moderation.models import FilterRule
from app.stories.search import is_search_object
from tests.conftest import make_app


def test_migrations_match_the_models(db_url, tiny_model_dir):
    """Does `flask db upgrade` on an empty database give exactly the models' schema (the
    search tables and indexes, which are not in the models, aside)?"""
    app = make_app(db_url, tiny_model_dir, RELAY_START_RUNNER=False)
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": is_search_object})
            diff = compare_metadata(context, db.metadata)
        rules = db.session.scalar(select(db.func.count(FilterRule.id)))
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.engine.dispose()
    assert diff == []
    assert rules == len(DEFAULT_RULES)


def test_create_admin_command(app, cli_runner):
    """Does `flask users create-admin` create an admin, and refuse a bad name?"""
    result = cli_runner.invoke(
        args=["users", "create-admin", "root_admin"], input="s3cret-pass\ns3cret-pass\n"
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "root_admin")).one()
        assert user.role == "admin" and user.check_password("s3cret-pass")
    bad = cli_runner.invoke(args=["users", "create-admin", "x"], input="s3cret-pass\ns3cret-pass\n")
    assert bad.exit_code != 0 and "username" in bad.output
