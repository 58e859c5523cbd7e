"""Relay Novel: create_app wires extensions, blueprints, the API and the CLI."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.config import ROOT, Config


def create_app(config: Any = None) -> Flask:
    """Build the app from a config object (default: Config() from the environment)."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.from_object(config if config is not None else Config())
    from app.inputs import IdConverter, refuse_nul_characters

    app.url_map.converters["int"] = IdConverter  # ids past an INTEGER column are a 404
    app.before_request(refuse_nul_characters)
    app.instance_path and _ensure_instance(app)

    from app.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from app.accounts.locale import init_locale

    init_locale(app)

    from app.database import configure_engine
    from app.stories.revision import track_revisions

    configure_engine(app)
    track_revisions()
    from app.notifications.service import install as install_notifications

    install_notifications()

    from app.accounts.auth import init_auth
    from app.errorpages import init_error_handlers

    init_auth(app)
    init_error_handlers(app)
    _register_blueprints(app)
    _register_cli(app)

    from app.live.limits import init_stream_limits
    from app.runners.setup import init_generation

    init_stream_limits(app)
    init_generation(app)
    return app


def _ensure_instance(app: Flask) -> None:
    from pathlib import Path

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)


def _register_blueprints(app: Flask) -> None:
    from app.accounts.views import bp as accounts_bp
    from app.api import init_api
    from app.moderation.views import bp as admin_bp
    from app.stories import edit_views as edit_routes  # noqa: F401  (routes on stories_bp)
    from app.stories import lore_views, room_views, settings_views  # noqa: F401  (stories_bp)
    from app.stories.views import bp as stories_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(stories_bp)
    app.register_blueprint(admin_bp)
    from app.notifications.views import bp as notifications_bp

    app.register_blueprint(notifications_bp)
    init_api(app)


def _register_cli(app: Flask) -> None:
    from app.accounts.cli import users_cli
    from app.runners.cli import jobs_cli
    from app.workshop.cli import model_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(model_cli)
