"""Browser views for a story's owner (and moderators): its settings page, lock, finish,
reopen and delete; and forking a story from one of its paragraphs.

Its routes join the stories blueprint (imported by app/__init__.py), signed in only. Every
change goes through the same functions as the API (app.stories.relay,
app.stories.fork): a RelayError is shown on the page with nothing changed. A story
the viewer may not read is a 404 (app.stories.access); one they may read but not
manage, a 403.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from app.errors import Invalid, RelayError
from app.formerrors import attach_error, form_message
from app.inputs import decimal
from app.labels import status_label
from app.stories import relay, rules
from app.stories.access import readable_story
from app.stories.fork import fork_story
from app.stories.forms import DeleteStoryForm, ForkForm, StorySettingsForm, StoryStatusForm
from app.stories.models import STATUSES, Story
from app.stories.validation import choice
from app.stories.views import bp, signed_in

Page = Response | tuple[str, int] | str


@bp.route("/stories/<int:story_id>/settings", methods=["GET", "POST"])
@signed_in
def settings(story_id: int) -> Page:
    """The settings page; a good form changes the story, a bad one shows why (422, 409,
    403) and changes nothing."""
    story = _managed_story(story_id)
    form = StorySettingsForm(story)
    if form.validate_on_submit():
        try:
            changes = form.changes(story)
            if changes:
                relay.update_story(story_id, current_user, changes)
        except RelayError as exc:
            attach_error(form, exc)
            return _render(readable_story(story_id, current_user), form), exc.status
        flash(_("Settings saved.") if changes else _("Nothing changed."), "success")
        return redirect(url_for("stories.settings", story_id=story_id))
    return _render(story, form), 422 if form.is_submitted() else 200


@bp.route("/stories/<int:story_id>/settings/status", methods=["POST"])
@signed_in
def settings_status(story_id: int) -> Response:
    """Lock, finish or reopen the story (the button pressed names the status)."""
    _managed_story(story_id)
    form = StoryStatusForm()
    try:
        status = choice(form.status.data, "status", STATUSES)
        relay.set_status(story_id, current_user, status)
    except RelayError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The story is now %(status)s.", status=status_label(status)), "success")
    return redirect(url_for("stories.settings", story_id=story_id))


@bp.route("/stories/<int:story_id>/delete", methods=["POST"])
@signed_in
def delete(story_id: int) -> Page:
    """Delete the story, once its box is ticked to confirm."""
    story = _managed_story(story_id)
    form = DeleteStoryForm()
    if not (form.validate_on_submit() and form.confirm.data):
        flash(_("Tick the box to confirm that the story should be deleted."), "error")
        return _render(story, delete_form=form), 422
    relay.delete_story(story_id, current_user)
    flash(_("The story was deleted."), "success")
    return redirect(url_for("stories.index"))


@bp.route("/stories/<int:story_id>/fork", methods=["POST"])
@signed_in
def fork(story_id: int) -> Response:
    """Start a new story from a paragraph of this one (its position, 0: the opening) and
    open it; the forker owns it."""
    form = ForkForm()
    try:
        if not form.validate_on_submit():
            raise Invalid(_("The form expired; please submit it again."))
        position = decimal(form.position.data)
        new = fork_story(story_id, position, current_user, form.title.data or None)
    except RelayError as exc:
        readable_story(story_id, current_user)  # a story they may not read stays a 404
        flash(form_message(form, exc), "error")
        return redirect(url_for("stories.show", story_id=story_id))
    flash(_("Your fork has begun: write the next paragraph."), "success")
    return redirect(url_for("stories.show", story_id=new.id))


def _managed_story(story_id: int) -> Story:
    """The story, if the signed-in user may read (else 404) and manage it (else 403)."""
    story = readable_story(story_id, current_user)
    rules.require_manager(story, current_user)
    return story


def _render(
    story: Story,
    form: StorySettingsForm | None = None,
    delete_form: DeleteStoryForm | None = None,
) -> str:
    return render_template(
        "stories/settings.html",
        story=story,
        form=form or StorySettingsForm(story, formdata=None),
        delete_form=delete_form or DeleteStoryForm(formdata=None),
        share_url=share_url(story),
        statuses=STATUSES,
    )


def share_url(story: Story) -> str | None:
    """An unlisted story's link (None for others, or while the /s/ route is missing)."""
    if story.visibility != "unlisted" or not story.share_token:
        return None
    try:
        return url_for("stories.shared", token=story.share_token, _external=True)
    except BuildError:
        return None
