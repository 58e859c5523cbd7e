"""What PostgreSQL is strict about (column lengths, unique constraints under concurrent
requests): found by fuzzing the app on PostgreSQL, run here on both databases.

A concurrent request is simulated exactly: a second connection commits the clashing row
between the service's own check and its write, as a request on another worker would. That
interleaving exists on PostgreSQL only: on SQLite the first statement of a write takes the
database's write lock (BEGIN IMMEDIATE), so the other connection waits and the race cannot
happen; those tests run on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert

from tests.api.conftest import answer, first_paragraph
from tests.api.test_bad_input_api import error_of

on_postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@contextmanager
def beaten_to_it(model) -> Iterator[None]:
    """Inside, the first INSERT of a `model` row is preceded by the same row committed
    through a connection of its own: another worker's request won the race."""
    from app.extensions import db

    fired = []

    def hook(mapper, _connection, target) -> None:
        if fired:
            return
        fired.append(True)
        row = {a.key: getattr(target, a.key) for a in mapper.column_attrs}
        with db.engine.begin() as other:
            other.execute(insert(model.__table__).values(
                **{k: v for k, v in row.items() if v is not None}))  # fmt: skip

    event.listen(model, "before_insert", hook)
    try:
        yield
    finally:
        event.remove(model, "before_insert", hook)
    assert fired, "the service never inserted"


def test_a_hide_reason_longer_than_the_turns_column(app, client, factory):
    """Is a 300-character reason accepted, shown shortened on the turn and kept whole in the
    audit log (PostgreSQL refused it: the column holds 200)?"""
    mod = factory.headers(factory.user(role="moderator"))
    sid, owner, job = first_paragraph(client, factory)
    answer(app, job["id"])
    reason = "r" * 300
    hidden = client.post(
        f"/api/v1/admin/turns/{job['reply_to_id']}/hide", json={"reason": reason}, headers=mod
    )
    assert hidden.status_code == 200
    shown = hidden.get_json()["turn"]["hidden_reason"]
    assert len(shown) == 200 and shown.endswith("…")
    audit = client.get("/api/v1/admin/audit?action=turn.hide", headers=mod).get_json()
    assert audit["entries"][0]["reason"] == reason


def test_a_held_answer_names_a_long_rule(app, client, factory):
    """Is a model answer held by a 200-character rule stored (its reason fitted to the column),
    not failed?"""
    from app.stories.jobs import claim_job, complete_job

    sid, owner, job = first_paragraph(client, factory)
    with app.app_context():
        claim_job(job["id"], "test")
        turn = complete_job(job["id"], "Held text.", held_reason="filter: " + "q" * 200)
        assert turn is not None and turn.held and len(turn.held_reason) == 200


@on_postgresql
def test_registering_a_name_taken_a_moment_ago_is_a_409(app, client):
    """When another request registers the same name between the check and the insert, is
    the loser told the name is taken (it was a 500 on the unique index)?"""
    from app.accounts.models import User

    account = {"username": "dupname", "password": "password123"}
    with beaten_to_it(User):
        error_of(client.post("/api/v1/auth/register", json=account), 409, "username_taken")


def test_a_username_cannot_end_in_a_newline(app, client):
    """Is "name\\n" refused ("$" in the pattern matched before a final newline)?"""
    for name in ("nlname\n", "a" * 40 + "\n"):
        response = client.post(
            "/api/v1/auth/register", json={"username": name, "password": "p" * 9}
        )
        assert error_of(response, 422)["field"] == "username"


@on_postgresql
def test_the_same_rule_added_twice_at_once_is_a_409(app, client, factory):
    """Is the second of two identical rules a 409 even when both passed the duplicate check?"""
    from app.moderation.models import FilterRule

    admin = factory.headers(factory.user(role="admin"))
    rule = {"language": "en", "word": "zzdup"}
    with beaten_to_it(FilterRule):
        response = client.post("/api/v1/admin/filters", json=rule, headers=admin)
    error_of(response, 409, "duplicate_rule")


@on_postgresql
def test_the_same_report_sent_twice_at_once_counts_once(app, client, factory):
    """Does a report racing its twin come back as the one stored report, not a 500?"""
    from app.moderation.models import Report

    reader = factory.user()
    _, _, job = first_paragraph(client, factory)

    url = f"/api/v1/turns/{job['reply_to_id']}/reports"
    with beaten_to_it(Report):
        sent = client.post(url, json={"reason": "spam"}, headers=factory.headers(reader))
    assert sent.status_code in (200, 201) and sent.get_json()["reason"] == "spam"


def test_filter_words_match_however_their_accents_were_typed(app, client, factory):
    """Does a rule typed with a combining accent (NFD) catch the composed word (NFC)?"""
    admin = factory.headers(factory.user(role="admin"))
    rule = {"language": "en", "word": "cafe\u0301x"}
    assert client.post("/api/v1/admin/filters", json=rule, headers=admin).status_code == 201
    owner = factory.user()
    sid = factory.story(owner)
    turn = {"text": "a caf\u00e9x here", "expected_position": 0}
    refused = client.post(f"/api/v1/stories/{sid}/turns", json=turn, headers=factory.headers(owner))
    assert refused.status_code == 422


def test_a_wrong_token_is_a_401_on_public_reads_too(app, client, factory):
    """Is a wrong bearer token refused on public endpoints, while signing in for a new token
    with one still works?"""
    sid = factory.story(factory.user(username="reader1"))
    bad = {"Authorization": "Bearer revoked-or-wrong"}
    assert client.get("/api/v1/stories").status_code == 200
    for url in ("/api/v1/stories", f"/api/v1/stories/{sid}", f"/api/v1/stories/{sid}/export"):
        error_of(client.get(url, headers=bad), 401, "bad_token")
    fresh = client.post(
        "/api/v1/auth/tokens", json={"username": "reader1", "password": "password123"}, headers=bad
    )
    assert fresh.status_code == 201
