"""Story export (txt/md): credits, escaping, hidden turns left out, download routes."""

from __future__ import annotations

from app.accounts.models import User
from app.extensions import db
from app.stories import reads, relay
from app.stories.export import export_story
from app.stories.jobs import claim_job, complete_job


def _story_with_turns(app, factory):
    alice = factory.user("alice")
    bob = factory.user("bob")
    title = "The *Lighthouse* <b>Keeper</b>"
    story_id = factory.story(alice, title=title, opening="The sea was loud.")
    with app.app_context():
        a, b = db.session.get(User, alice), db.session.get(User, bob)
        turn, job = relay.append_human_turn(story_id, a, "Alice wrote a letter.", 0)
        claim_job(job.id, "test")
        complete_job(job.id, "The waves answered in salt.")
        relay.append_human_turn(story_id, b, "# Bob <script>x()</script> [link](http://x)", 2)
    return story_id, alice, bob


def test_txt_export_credits_each_turn(app, factory):
    """Does the plain-text export hold the opening and every turn, each credited?"""
    story_id, _, _ = _story_with_turns(app, factory)
    with app.app_context():
        text, mimetype, filename = export_story(reads.get_story(story_id), "txt")
    assert mimetype.startswith("text/plain")
    assert filename == f"story-{story_id}-the-lighthouse-b-keeper-b.txt"
    assert text.startswith("The *Lighthouse* <b>Keeper</b>\n")
    assert "The sea was loud.\n    [opening, alice]" in text
    assert "Alice wrote a letter.\n    [1, written by alice]" in text
    assert "The waves answered in salt.\n    [2, written by the model" in text
    assert "[3, written by bob]" in text
    assert text.index("Alice wrote") < text.index("The waves") < text.index("# Bob")


def test_md_export_escapes_markup(app, factory):
    """Does the Markdown export credit turns and keep writers' text from becoming markup?"""
    story_id, _, _ = _story_with_turns(app, factory)
    with app.app_context():
        text, mimetype, filename = export_story(reads.get_story(story_id), "md")
    assert mimetype.startswith("text/markdown") and filename.endswith(".md")
    assert text.startswith("# The \\*Lighthouse\\* \\<b\\>Keeper\\</b\\>\n")
    assert "<script>" not in text and "<b>" not in text
    assert "\\# Bob \\<script\\>x()\\</script\\> \\[link\\](http://x)" in text
    assert "<sub>1, written by alice</sub>" in text
    assert "<sub>3, written by bob</sub>" in text


def test_hidden_turns_left_out_of_exports(app, factory):
    """Are hidden turns absent from both export formats?"""
    story_id, alice, _ = _story_with_turns(app, factory)
    mod = factory.user("mod", role="moderator")
    with app.app_context():
        story = reads.get_story(story_id)
        hidden = next(t for t in story.turns if t.position == 2)
        relay.set_hidden(hidden.id, db.session.get(User, mod), True, "spam")
        for fmt in ("txt", "md"):
            text, _, _ = export_story(reads.get_story(story_id), fmt)
            assert "waves answered" not in text
            assert "Alice wrote a letter" in text


def test_export_routes_download(app, client, factory):
    """Do /stories/<id>/export.txt and .md download the story as an attachment?"""
    story_id, _, _ = _story_with_turns(app, factory)
    for fmt, mime in (("txt", "text/plain"), ("md", "text/markdown")):
        response = client.get(f"/stories/{story_id}/export.{fmt}")
        assert response.status_code == 200
        assert response.mimetype == mime
        assert "attachment" in response.headers["Content-Disposition"]
        assert "Alice wrote a letter." in response.get_data(as_text=True)
    assert client.get("/stories/9999/export.txt").status_code == 404


def test_unknown_export_format_is_invalid(app, factory):
    """Does an unknown format raise Invalid instead of guessing?"""
    import pytest

    from app.errors import Invalid

    story_id, _, _ = _story_with_turns(app, factory)
    with app.app_context(), pytest.raises(Invalid):
        export_story(reads.get_story(story_id), "pdf")
