"""Engine set-up and the write lock the relay rules rely on.

PostgreSQL: a row lock (SELECT ... FOR UPDATE) on the story serialises writers
of one story; the unique (story_id, position) constraint is the backstop.
SQLite: WAL so readers never block, a busy timeout so writers wait instead of
failing, and BEGIN IMMEDIATE for write transactions so two writers can never
both read the same last position and then race to insert.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def configure_engine(app: Flask) -> None:
    """Install the SQLite pragmas and BEGIN handling on this app's engine."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "sqlite":
            return
        _install_sqlite_hooks(engine)


def _install_sqlite_hooks(engine: Engine) -> None:
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def begin_write() -> None:
    """Start a write transaction on the session (ends any read-only one first).

    On SQLite this takes the database write lock up front (BEGIN IMMEDIATE),
    waiting up to the busy timeout; on PostgreSQL callers take row locks.
    """
    if db.session().in_transaction():
        db.session.commit()
    if is_sqlite():
        db.session.connection(execution_options={"sqlite_immediate": True})
