"""Shared fixtures: the app on SQLite and PostgreSQL, a tiny GPT-2, users and stories.

The tiny model is randomly initialised and its byte-level BPE tokenizer is
trained here, in the test session: nothing is downloaded.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
TINY_TEXT = (
    "Once upon a time there was a lighthouse keeper who wrote letters to the sea. "
    "The waves answered in salt and foam, and nobody believed him. "
    "옛날 옛적에 바다에 편지를 쓰는 등대지기가 살았습니다. 파도는 소금과 거품으로 대답했습니다. "
    'She said: "Come in, it\'s cold!" 🙂 He laughed.\n\n'
) * 20


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer GPT-2 with a byte-level BPE tokenizer trained on TINY_TEXT."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TINY_TEXT], vocab_size=400, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of our own for this test session, dropped at the end."""
    import psycopg

    name = f"relay_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(db_url: str, tiny_model_dir: Path, **overrides: Any):
    from app import create_app
    from app.config import TestConfig

    models = {"en": str(tiny_model_dir), "ko": str(tiny_model_dir), "tiny": str(tiny_model_dir)}
    overrides.setdefault("RELAY_MODELS", models)
    overrides.setdefault("RELAY_TORCH_THREADS", 1)
    return create_app(TestConfig(db_url, **overrides))


def _reset_schema(app) -> None:
    from app.extensions import db

    with app.app_context():
        db.drop_all()
        db.create_all()


def build_app(db_url: str, tiny_model_dir: Path, seed_filters: bool = False, **overrides: Any):
    """An app on a fresh schema; seed_filters adds the default content-filter lists."""
    from app.extensions import db
    from app.moderation.filter import seed_default_rules

    application = make_app(db_url, tiny_model_dir, **overrides)
    _reset_schema(application)
    if seed_filters:
        with application.app_context():
            seed_default_rules()
            db.session.remove()
    return application


def set_filter_action(application, action: str) -> None:
    """Give every content-filter rule `action`, as an admin would one by one at /admin/filters."""
    from flask import has_app_context

    from app.extensions import db
    from app.moderation.models import FilterRule

    if not has_app_context():
        with application.app_context():
            return set_filter_action(application, action)
    db.session.execute(db.update(FilterRule).values(action=action))
    db.session.commit()
    return None


def close_app(application) -> None:
    """Stop the runner threads and release every database connection."""
    from app.extensions import db

    shutdown = application.extensions.get("relay.shutdown")
    if shutdown:
        shutdown()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs once on SQLite (a file, WAL) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.sqlite3'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def app(db_url: str, tiny_model_dir: Path) -> Iterator[Any]:
    application = build_app(db_url, tiny_model_dir)
    yield application
    close_app(application)


@pytest.fixture
def quiet_app(db_url: str, tiny_model_dir: Path) -> Iterator[Any]:
    """The app with its runner off: jobs stay queued; tests play the runner's part."""
    application = build_app(db_url, tiny_model_dir, RELAY_START_RUNNER=False)
    yield application
    close_app(application)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cli_runner(app):
    return app.test_cli_runner()


def session_user_id(app, user_id: int) -> str:
    """A value for a test client's session "_user_id": a live browser session of the user
    (what signing in stores), for tests that put a session cookie together by hand."""
    from app.accounts.models import User
    from app.accounts.service import start_session
    from app.extensions import db

    with app.app_context():
        user = db.session.get(User, user_id)
        start_session(user)
        return user.get_id()


class Factory:
    """Test data through the same service functions the app uses."""

    def __init__(self, app) -> None:
        self.app = app
        self._n = 0

    def user(
        self, username: str | None = None, role: str = "writer", password: str = "password123"
    ):
        from app.accounts.service import register_user
        from app.extensions import db

        self._n += 1
        with self.app.app_context():
            user = register_user(username or f"writer{self._n}", password)
            user.role = role
            db.session.commit()
            return user.id

    def token(self, user_id: int) -> str:
        from app.accounts.models import User
        from app.accounts.service import issue_token
        from app.extensions import db

        with self.app.app_context():
            return issue_token(db.session.get(User, user_id))

    def headers(self, user_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def story(self, owner_id: int, **fields: Any) -> int:
        from app.accounts.models import User
        from app.extensions import db
        from app.stories.relay import create_story

        data = {"title": "A Test Story", "language": "en", "opening": "It was a dark night."}
        data.update(fields)
        with self.app.app_context():
            return create_story(db.session.get(User, owner_id), data).id


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


def pytest_configure(config: pytest.Config) -> None:
    """Compile the interface's message catalogues when `make venv` has not (a bare pytest run
    in a fresh clone), so that Korean pages are Korean in every run."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in Path(__file__).resolve().parent.parent.glob("app/translations/*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            with mo.open("wb") as target:
                write_mo(target, catalog)
