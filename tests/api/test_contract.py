"""The API keeps the contract it publishes: schemathesis, every check, every operation.

Over real HTTP against the app with its runner on (a tiny model answers), on
SQLite and PostgreSQL: the writer's operations, the token-revoking operation
with a throwaway token, and the admin operations as an admin (who cannot
suspend or demote themselves). 0 failures: no server error, every status and
content type documented, every response valid against its schema (nullable
where null, enums where enums), schema-valid requests accepted and
schema-violating ones refused, and 405 with Allow for undeclared methods.
"""

from __future__ import annotations

import pytest

from tests.api.contract import ALL_BUT_ADMIN, Server, schemathesis, seed
from tests.conftest import build_app, close_app


@pytest.fixture
def live_app(db_url, tiny_model_dir):
    application = build_app(db_url, tiny_model_dir, SSE_MAX_SECONDS=1)
    yield application
    close_app(application)


@pytest.mark.timeout(1800)
def test_every_operation_keeps_the_published_contract(live_app):
    tokens = seed(live_app)
    runs = [
        (tokens.writer, "--exclude-path-regex", ALL_BUT_ADMIN),
        (tokens.throwaway, "--include-path-regex", "^/auth/tokens/current$"),
        (tokens.admin, "--include-path-regex", "^/admin/"),
    ]
    with Server(live_app) as server:
        for token, *filters in runs:
            code, report = schemathesis(server.url, token, *filters)
            assert code == 0, f"exit {code}\n{report[-6000:]}"
            assert "❌" not in report, report[-6000:]
