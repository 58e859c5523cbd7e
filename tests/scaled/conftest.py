"""Fixtures for the scaled-mode tests: a PostgreSQL database of their own (migrated
with `flask db upgrade`, as `make run-scaled` does), the word-only tiny model, and an
in-process app on the same database to seed users and stories and read job rows.

Run them alone with `pytest -m scaled`; `make test` runs them too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL, make_app
from tests.scaled.stack import build_word_model


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scaled: real gunicorn + Celery + PostgreSQL + Redis processes (slow)"
    )


@pytest.fixture(scope="session")
def word_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_word_model(tiny_model_dir, tmp_path_factory.mktemp("scaled-word-gpt2"))


@pytest.fixture(scope="module")
def scaled_database() -> Iterator[str]:
    """An empty PostgreSQL database for one test module, dropped at its end."""
    import psycopg

    name = f"relay_scaled_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_app(database_url: str, word_model: Path) -> Any:
    """The app in this process (embedded mode, runner off): seeding and reading rows only."""
    return make_app(database_url, word_model, RELAY_START_RUNNER=False)
