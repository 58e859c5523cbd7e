"""Moderation services: filter, reports, actions and their audit rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import ApiToken, User
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.moderation import queries, reports, service
from app.moderation.filter import check_text
from app.moderation.models import AuditEntry, Report
from app.stories import jobs, reads, relay
from app.stories.models import GenerationJob, Story, Turn
from tests.conftest import Factory, build_app, close_app, set_filter_action


@pytest.fixture
def app(db_url, tiny_model_dir):
    """Runner off (the tests play its part) and the default filter lists seeded."""
    application = build_app(db_url, tiny_model_dir, seed_filters=True, RELAY_START_RUNNER=False)
    with application.app_context():
        yield application
    close_app(application)


@pytest.fixture
def f(app) -> Factory:
    return Factory(app)


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def audit_count() -> int:
    return db.session.scalar(select(func.count(AuditEntry.id)))


def write(story_id: int, user_id: int, text: str):
    story = db.session.get(Story, story_id)
    db.session.refresh(story)
    return relay.append_human_turn(story_id, user(user_id), text, story.last_position)


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "What the FUCK is this?"), ("ko", "이 병신아, 어디 가니?")],
)
def test_filter_rejects_human_text(f, language, text):
    """Is a paragraph with a listed word refused (422) with nothing stored, in both languages?"""
    a = f.user()
    sid = f.story(a, language=language, opening="Opening.")
    with pytest.raises(Invalid) as exc:
        write(sid, a, text)
    assert exc.value.code == "content_rejected"
    assert db.session.query(Turn).count() == 0


def test_filter_words_respect_english_word_boundaries(f):
    """Does 'fuck' not fire inside an unrelated English word, while Korean matches inside words?"""
    assert check_text("A scunthorpe-like harmless word: fuckless? no, 'fuchsia'.", "en") is None
    assert check_text("He said fuck.", "en") is not None
    assert check_text("씨발놈아", "ko") is not None
    assert check_text("He said fuck.", "ko") is None


def test_hold_mode_keeps_paragraph_for_its_writer_and_waits(f, app):
    """In hold mode, is the paragraph held, seen by its writer only, the story waiting?"""
    set_filter_action(app, "hold")
    a, b, mod = f.user(), f.user(), f.user(role="moderator")
    sid = f.story(a)
    turn, job = write(sid, a, "Well fuck this.")
    assert job is None and turn.held
    story = db.session.get(Story, sid)
    assert reads.visible_turns(story) == []
    assert [t.id for t in reads.visible_turns(story, viewer=db.session.get(User, a))] == [turn.id]
    with pytest.raises(Conflict) as exc:
        write(sid, b, "Next paragraph.")
    assert exc.value.code == "awaiting_review"
    service.restore_turn(turn.id, user(mod), "fine in context")
    queued = db.session.scalars(select(GenerationJob).where(GenerationJob.story_id == sid)).all()
    assert [j.reply_to_id for j in queued] == [turn.id]
    assert [t.id for t in reads.visible_turns(db.session.get(Story, sid))] == [turn.id]


def test_model_output_can_be_held(f):
    """Is a held AI turn kept from readers and the context while the story goes on?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    _, job = write(sid, a, "A clean paragraph.")
    jobs.claim_job(job.id, "t")
    ai = jobs.complete_job(job.id, "Dirty output.", held_reason="filter: fuck")
    story = db.session.get(Story, sid)
    assert ai.held and [t.kind for t in reads.visible_turns(story)] == ["human"]
    _, job2 = write(sid, b, "The story goes on.")
    assert job2 is not None
    assert [item["turn"]["id"] for item in queries.moderation_queue()] == [ai.id]


def test_reports_count_once_per_user(f):
    """Do repeated reports of one turn by one user count once?"""
    a, r1, r2 = f.user(), f.user(), f.user()
    sid = f.story(a)
    turn, _ = write(sid, a, "Something rude.")
    for _ in range(3):
        reports.report_turn(turn.id, user(r1), "rude")
    reports.report_turn(turn.id, user(r2), "spam")
    assert db.session.scalar(select(func.count(Report.id))) == 2
    [item] = queries.moderation_queue()
    assert item["report_count"] == 2 and item["turn"]["id"] == turn.id
    with pytest.raises(Invalid):
        reports.report_turn(turn.id, user(r1), "  ")


def test_reporting_again_after_a_restore_queues_the_turn_again(f):
    """Does a second report of a turn a moderator restored reach the queue again?"""
    a, r, mod = f.user(), f.user(), f.user(role="moderator")
    sid = f.story(a)
    turn, _ = write(sid, a, "Something rude.")
    reports.report_turn(turn.id, user(r), "rude")
    service.hide_turn(turn.id, user(mod), "rude")
    service.restore_turn(turn.id, user(mod), "on appeal")
    assert queries.moderation_queue() == []
    report = reports.report_turn(turn.id, user(r), "still rude")
    assert report.status == "open" and report.reason == "still rude"
    assert report.resolved_by_id is None and report.resolved_at is None
    [item] = queries.moderation_queue()
    assert item["turn"]["id"] == turn.id and item["report_count"] == 1
    assert db.session.scalar(select(func.count(Report.id))) == 1


def test_every_action_writes_exactly_one_audit_row(f):
    """Does each moderation action add exactly one audit row naming who, what and why?"""
    a, r, mod, admin = f.user(), f.user(), f.user(role="moderator"), f.user(role="admin")
    sid = f.story(a)
    turn, _ = write(sid, a, "Reported text.")
    reports.report_turn(turn.id, user(r), "bad")
    actions = [
        lambda: service.hide_turn(turn.id, user(mod), "off-topic"),
        lambda: service.restore_turn(turn.id, user(mod), "appeal"),
        lambda: reports.report_turn(turn.id, user(r), "again") and None,
        lambda: service.set_story_status(sid, user(mod), "locked", "cooling off"),
        lambda: service.set_story_status(sid, user(mod), "open", ""),
        lambda: service.suspend_user(r, user(mod), True, "abuse"),
        lambda: service.suspend_user(r, user(mod), False, ""),
        lambda: service.set_role(r, user(admin), "moderator", "trusted"),
        lambda: service.add_filter_rule(user(admin), "en", "word", "grue"),
        lambda: service.delete_story(sid, user(mod), "spam story"),
    ]
    expected = [
        "turn.hide",
        "turn.restore",
        None,
        "story.lock",
        "story.unlock",
        "user.suspend",
        "user.unsuspend",
        "user.role",
        "filter.add",
        "story.delete",
    ]
    for act, action in zip(actions, expected, strict=True):
        before = audit_count()
        act()
        if action is None:  # a report is not a moderation action
            assert audit_count() == before
            continue
        assert audit_count() == before + 1
        last = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert last.action == action


def test_permissions_are_enforced_in_the_service(f):
    """Can a writer hide turns, or a moderator change roles and filter lists?"""
    a, mod = f.user(), f.user(role="moderator")
    sid = f.story(a)
    turn, _ = write(sid, a, "Text.")
    with pytest.raises(Forbidden):
        service.hide_turn(turn.id, user(a), "mine")
    with pytest.raises(Forbidden):
        service.set_role(a, user(mod), "admin", "")
    with pytest.raises(Forbidden):
        service.add_filter_rule(user(mod), "en", "word", "x")
    assert audit_count() == 0


def test_suspension_ends_tokens_at_once(f):
    """Does suspending a user delete their API tokens and invalidate their sessions?"""
    w, mod = f.user(), f.user(role="moderator")
    f.token(w)
    version = user(w).session_version
    service.suspend_user(w, user(mod), True, "spam")
    assert db.session.scalar(select(func.count(ApiToken.id))) == 0
    assert user(w).session_version == version + 1


def test_audit_log_is_append_only(f):
    """Can an audit row be edited or deleted?"""
    a, mod = f.user(), f.user(role="moderator")
    sid = f.story(a)
    service.set_story_status(sid, user(mod), "locked", "why not")
    entry = db.session.scalars(select(AuditEntry)).first()
    entry.reason = "rewritten"
    with pytest.raises(RuntimeError):
        db.session.commit()
    db.session.rollback()
    with pytest.raises(RuntimeError):
        db.session.delete(entry)
        db.session.commit()
    db.session.rollback()


def test_bad_filter_rules_are_refused(f):
    """Are invalid regexes, unknown languages and duplicates refused?"""
    admin = f.user(role="admin")
    for language, kind, value in [
        ("en", "pattern", "(unclosed"),
        ("fr", "word", "x"),
        ("en", "glob", "x"),
        ("en", "word", "  "),
    ]:
        with pytest.raises(Invalid):
            service.add_filter_rule(user(admin), language, kind, value)
    with pytest.raises(Conflict):
        service.add_filter_rule(user(admin), "en", "word", "fuck")


def test_stats_count_what_exists(f):
    """Do the dashboard stats reflect stories, turns and jobs?"""
    a = f.user()
    sid = f.story(a)
    write(sid, a, "One.")
    data = queries.stats()
    assert data["stories"] == 1 and data["turns"] == 1
    assert data["jobs"]["queued"] == 1 and data["active_writers_7d"] == 1


def test_moderating_through_story_settings_is_audited(f):
    """Is a moderator's edit of someone else's story audited, and an owner's own edit not?"""
    a, mod = f.user(), f.user(role="moderator")
    sid = f.story(a)
    relay.update_story(sid, user(a), {"title": "Owner's title"})
    assert audit_count() == 0
    relay.update_story(sid, user(mod), {"title": "Moderated title"})
    relay.set_status(sid, user(mod), "locked")
    relay.delete_story(sid, user(mod))
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["story.update", "story.lock", "story.delete"]


def test_held_turns_cannot_be_reported_by_others(f, app):
    """Can a reader report a paragraph held for someone else (which they cannot see)?"""
    set_filter_action(app, "hold")
    a, b = f.user(), f.user()
    sid = f.story(a)
    turn, _ = write(sid, a, "Well fuck this.")
    with pytest.raises(NotFound):
        reports.report_turn(turn.id, user(b), "what is this")
