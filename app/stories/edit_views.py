"""Browser views for changing turns already written: edit or withdraw your latest
paragraph, undo the last pair and mark chapters (the owner's settings page).

Its routes join the stories blueprint (imported by app/__init__.py), signed in only.
Every change goes through app/stories/edits.py, as the API's do; a story the viewer may
not read is a 404, one they may read but not change this way a 403, and an action
that is not allowed now (409) or bad input (422) comes back as a message on the page.
"""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from app.errorpages import wants_json
from app.errors import Invalid, RelayError
from app.extensions import limiter
from app.formerrors import form_message
from app.inputs import decimal
from app.stories import edits, reads, rules
from app.stories.access import readable_story
from app.stories.forms import TurnForm
from app.stories.models import Story
from app.stories.serialize import job_dict, paragraph_numbers, turn_dict
from app.stories.views import _turn_limit, bp, signed_in

Page = Response | tuple[Any, int] | str


@bp.route("/stories/<int:story_id>/turns/<int:position>/edit", methods=["GET", "POST"])
@limiter.limit(_turn_limit, methods=["POST"])
@signed_in
def edit_turn(story_id: int, position: int) -> Page:
    """The edit form for the writer's latest paragraph; posting it replaces the paragraph
    (the old text stays, hidden, in the history) and the model answers the new one."""
    story = readable_story(story_id, current_user)
    form = TurnForm()
    if request.method == "GET":
        try:
            turn = rules.check_editable(story, position, current_user)
        except RelayError as exc:
            return _refused(story_id, exc)
        form.text.data = turn.text
        form.expected_position.data = str(story.last_position)
        return render_template("stories/edit.html", story=story, turn=turn, form=form)
    try:
        turn, job = edits.edit_paragraph(
            story_id, position, current_user, form.text.data, form.expected_position.data or None
        )
    except RelayError as exc:
        if wants_json() or exc.status in (403, 404) or not isinstance(exc, Invalid):
            return _refused(story_id, exc)
        flash(form_message(form, exc), "error")
        old = reads.turn_at(readable_story(story_id, current_user), position)
        page = render_template("stories/edit.html", story=story, turn=old, form=form)
        return page, exc.status
    if wants_json():
        return jsonify({"turn": turn_dict(turn), "job": job_dict(job) if job else None}), 202
    if job is None:
        flash(_("Your paragraph is waiting for a moderator's review before the story goes on."))
    else:
        flash(_("Your paragraph was changed; the model answers the new text."), "success")
    return redirect(url_for("stories.show", story_id=story_id, _anchor=f"turn-{turn.position}"))


@bp.route("/stories/<int:story_id>/turns/<int:position>/withdraw", methods=["POST"])
@signed_in
def withdraw_turn(story_id: int, position: int) -> Page:
    """Withdraw the writer's latest paragraph before the model's answer is final."""
    try:
        turn = edits.withdraw_paragraph(story_id, position, current_user)
    except RelayError as exc:
        return _refused(story_id, exc)
    if wants_json():
        return jsonify({"turn": turn_dict(turn)})
    flash(_("Your paragraph was withdrawn."), "success")
    return redirect(url_for("stories.show", story_id=story_id, _anchor="story-end"))


@bp.route("/stories/<int:story_id>/undo", methods=["POST"])
@signed_in
def undo(story_id: int) -> Response:
    """The owner (or a moderator) withdraws the last paragraph and the model's answer."""
    _managed_story(story_id)
    try:
        hidden = edits.withdraw_last_pair(story_id, current_user)
    except RelayError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The last turn was undone (%(count)s hidden).", count=len(hidden)), "success")
    return redirect(url_for("stories.settings", story_id=story_id))


@bp.route("/stories/<int:story_id>/chapters", methods=["POST"])
@signed_in
def mark_chapter(story_id: int) -> Response:
    """Mark a chapter at the paragraph readers number `number` (an empty title clears it)."""
    story = _managed_story(story_id)
    try:
        turn = _numbered_turn(story, request.form.get("number"))
        title = (request.form.get("title") or "").strip() or None
        edits.set_chapter(story_id, turn.position, current_user, title)
    except RelayError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
    else:
        done = _("Chapter marked.") if title else _("Chapter mark removed.")
        flash(done, "success")
    return redirect(url_for("stories.settings", story_id=story_id, _anchor="chapters"))


@bp.app_template_global("story_edits")
def story_edits(story: Story) -> dict[str, Any]:
    """What the settings page shows of undo and chapters: whether undo is possible now,
    the paragraph it would take back, and the chapters marked so far."""
    turns = reads.visible_turns(story)
    numbers = paragraph_numbers(turns)
    last = rules.last_human_turn(story)
    return {
        "may_undo": rules.may_undo(story, current_user),
        "last_number": numbers.get(last.id) if last else None,
        "chapters": [(numbers[t.id], t.chapter_title) for t in turns if t.chapter_title],
        "paragraphs": len(turns),
    }


def _numbered_turn(story: Story, value: Any):  # noqa: ANN202
    """The visible turn readers number `value` (§N); 422 for a bad number."""
    number = decimal(value) if isinstance(value, str) else None
    turns = reads.visible_turns(story)
    if number is None or not 1 <= number <= len(turns):
        raise Invalid(
            _("Give the number of a paragraph (1 to %(count)s).", count=len(turns)),
            field="number",
        )
    return turns[number - 1]


def _managed_story(story_id: int) -> Story:
    """The story, if the signed-in user may read (else 404) and manage it (else 403)."""
    story = readable_story(story_id, current_user)
    rules.require_manager(story, current_user)
    return story


def _refused(story_id: int, exc: RelayError) -> Response:
    """A 404 or 403 as such (and every error for the page's script, as JSON); anything
    else back on the story page with the reason."""
    if wants_json() or exc.status in (403, 404):
        raise exc
    flash(exc.message, "error")
    return redirect(url_for("stories.show", story_id=story_id, _anchor="story-end"))
