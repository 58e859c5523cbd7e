"""Browser views of a story's memory, author's note and lorebook, and of what the model saw.

Its routes join the stories blueprint (imported by app/__init__.py). Readers of the
story read the memory page and each AI turn's context; those app/stories/lore.py lets
edit get the forms. Every change goes through app.stories.lore, as the API's do: bad
input comes back on the page (422) with nothing changed; a story the viewer may not
read is a 404, one they may read but not edit a 403.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import IntegerField, RadioField, StringField, TextAreaField
from wtforms.validators import Optional

from app.accounts.auth import current_user_or_none
from app.errors import Invalid
from app.formerrors import attach_error
from app.stories import lore
from app.stories.access import readable_story
from app.stories.context import turn_context
from app.stories.models import Story
from app.stories.rules import can_manage
from app.stories.views import bp, signed_in

Page = Response | tuple[str, int] | str

ACCESS_CHOICES = [
    ("owner", _l("Only the owner (and moderators)")),
    ("participants", _l("Every participant")),
]


class MemoryForm(FlaskForm):
    memory = TextAreaField(
        _l("Memory"),
        description=_l("Pinned at the top of every prompt, right after the opening."),
        render_kw={"maxlength": lore.MEMORY_MAX_CHARS, "rows": 6},
    )
    authors_note = TextAreaField(
        _l("Author's note"),
        description=_l("Put in the prompt a few paragraphs above its end: style, tone, mood."),
        render_kw={"maxlength": lore.NOTE_MAX_CHARS, "rows": 3},
    )
    note_depth = IntegerField(
        _l("Paragraphs above the end"),
        validators=[Optional()],
        render_kw={"min": 0, "max": lore.NOTE_DEPTH_MAX},
    )
    memory_access = RadioField(_l("Who edits the memory and lore"), choices=ACCESS_CHOICES)


class LoreEntryForm(FlaskForm):
    keys = StringField(
        _l("Keys"),
        description=_l("Comma-separated names or words; any one of them brings the entry in."),
        render_kw={"maxlength": lore.KEYS_MAX_CHARS},
    )
    text = TextAreaField(
        _l("Entry"),
        description=_l("What the model reads when a key appears in the latest turns."),
        render_kw={"maxlength": lore.ENTRY_MAX_CHARS, "rows": 3},
    )


@bp.route("/stories/<int:story_id>/memory")
def memory(story_id: int) -> Page:
    """The memory, the note and the lorebook: forms for those who may edit, else read only."""
    return _render(readable_story(story_id, current_user_or_none()))


@bp.route("/stories/<int:story_id>/memory", methods=["POST"])
@signed_in
def save_memory(story_id: int) -> Page:
    """Save the memory form's fields (those sent; the access choice only from a manager)."""
    form = MemoryForm()
    data = {name: request.form[name] for name in lore.MEMORY_FIELDS if name in request.form}
    try:
        _expired(form)
        lore.set_memory(story_id, current_user, data)
    except Invalid as exc:
        attach_error(form, exc)
        return _render(readable_story(story_id, current_user), memory_form=form), exc.status
    flash(_("Memory and author's note saved."), "success")
    return redirect(url_for("stories.memory", story_id=story_id))


@bp.route("/stories/<int:story_id>/lore", methods=["POST"])
@signed_in
def add_lore(story_id: int) -> Page:
    """Add a lore entry."""
    form = LoreEntryForm()
    try:
        _expired(form)
        lore.add_entry(story_id, current_user, form.keys.data or "", form.text.data or "")
    except Invalid as exc:
        attach_error(form, exc)
        return _render(readable_story(story_id, current_user), entry_form=form), exc.status
    flash(_("Lore entry added."), "success")
    return redirect(url_for("stories.memory", story_id=story_id, _anchor="lore"))


@bp.route("/stories/<int:story_id>/lore/<int:entry_id>", methods=["POST"])
@signed_in
def edit_lore(story_id: int, entry_id: int) -> Page:
    """Change a lore entry (a bad value is the flashed reason; nothing changes)."""
    form = LoreEntryForm()
    data = {name: request.form[name] for name in ("keys", "text") if name in request.form}
    try:
        _expired(form)
        lore.update_entry(story_id, entry_id, current_user, data)
    except Invalid as exc:
        flash(exc.message, "error")
        return _render(readable_story(story_id, current_user)), exc.status
    flash(_("Lore entry saved."), "success")
    return redirect(url_for("stories.memory", story_id=story_id, _anchor=f"lore-{entry_id}"))


@bp.route("/stories/<int:story_id>/lore/<int:entry_id>/delete", methods=["POST"])
@signed_in
def delete_lore(story_id: int, entry_id: int) -> Response:
    """Delete a lore entry."""
    lore.delete_entry(story_id, entry_id, current_user)
    flash(_("Lore entry deleted."), "success")
    return redirect(url_for("stories.memory", story_id=story_id, _anchor="lore"))


@bp.route("/stories/<int:story_id>/turns/<int:position>/context")
def context(story_id: int, position: int) -> str:
    """What the model saw when it wrote the AI turn at `position`, part by part."""
    viewer = current_user_or_none()
    seen = turn_context(story_id, position, viewer)
    story = readable_story(story_id, viewer)
    return render_template("stories/context.html", story=story, context=seen)


def _expired(form: FlaskForm) -> None:
    """A form whose CSRF token is missing or old is refused before anything changes (its
    fields are the relay's to check)."""
    token = getattr(form, "csrf_token", None)
    if token is not None and not token.validate(form):
        raise Invalid(_("The form expired; please submit it again."))


def _render(
    story: Story, memory_form: MemoryForm | None = None, entry_form: LoreEntryForm | None = None
) -> str:
    viewer = current_user_or_none()
    if memory_form is None:
        memory_form = MemoryForm(formdata=None, obj=story)
    return render_template(
        "stories/memory.html",
        story=story,
        entries=lore.lore_entries(story),
        can_edit=lore.can_edit_memory(story, viewer),
        can_change_access=can_manage(story, viewer),
        memory_form=memory_form,
        entry_form=entry_form or LoreEntryForm(formdata=None),
        entries_max=lore.ENTRIES_MAX,
    )
