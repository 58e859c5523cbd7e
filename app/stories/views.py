"""Browser views for stories: list, story page, new story, turns, events, export.

Every write goes through app.stories.relay; a relay error becomes a flashed
message on the story page (the writer's text stays in the form), or the JSON
error when the page's script asked for JSON. Turn text is never trusted:
templates autoescape it and static/js/story.js only ever sets textContent.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from app.accounts.auth import current_user_or_none
from app.accounts.models import User
from app.errorpages import wants_json
from app.errors import Invalid, RelayError, Unauthorized, Unavailable
from app.extensions import db, limiter, login_manager
from app.formerrors import attach_error, form_message
from app.inputs import PAGE_MAX, arg_int
from app.moderation.queries import reported_by
from app.stories import caching, reads, relay, search
from app.stories.access import readable_story
from app.stories.export import export_story
from app.stories.fork import fork_origin
from app.stories.forms import StoryForm, TurnForm
from app.stories.models import LANGUAGES, STATUSES, Story
from app.stories.rules import can_manage
from app.stories.serialize import job_dict, paragraph_numbers, turn_dict, turn_dicts
from app.stories.viewer import story_state

bp = Blueprint("stories", __name__)

STORIES_PER_PAGE = 20
TURNS_PER_PAGE = 40

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@bp.after_request
def security_headers(response: Response) -> Response:
    """A strict CSP on these pages: even an escaping bug could not run injected script."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Writers only: the login page for a browser, 401 JSON for the page's script."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            if wants_json():
                raise Unauthorized(_("Sign in to write."))
            if request.method == "POST" and "story_id" in kwargs:
                # Come back to the story page, not to a URL that only takes POSTs.
                flash(str(login_manager.login_message))
                target = url_for("stories.show", story_id=kwargs["story_id"])
                return redirect(url_for("accounts.login", next=target))
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    return wrapped


def _turn_limit() -> str:
    return current_app.config["RATELIMIT_TURNS"]


# --- reading -------------------------------------------------------------------


@bp.route("/")
def index() -> str:
    """The stories the viewer may see, with their number of visible turns: searched,
    filtered and sorted by the form's GET arguments (app/stories/search.py), most recently
    active first by default; a bad argument is a message above the unfiltered list."""
    page = arg_int("page", 1, low=1, high=PAGE_MAX)
    filters, query, error = _story_list(current_user_or_none())
    total = search.count_of(query)
    pages = max(1, -(-total // STORIES_PER_PAGE))
    page = min(max(page, 1), pages)
    stories = db.session.scalars(
        query.options(selectinload(Story.tags))
        .limit(STORIES_PER_PAGE)
        .offset((page - 1) * STORIES_PER_PAGE)
    ).all()
    counts = reads.visible_turn_counts([story.id for story in stories])
    rows = [(story, counts[story.id]) for story in stories]
    return render_template(
        "stories/index.html",
        rows=rows,
        page=page,
        pages=pages,
        total=total,
        filters=filters,
        search_error=error,
        params=_list_params(filters),
        languages=LANGUAGES,
        statuses=STATUSES,
    )


def _story_list(user: User | None) -> tuple[search.StoryFilters, Any, str | None]:
    """The request's filters and their query, or the defaults' and why the request's failed."""
    try:
        filters = search.parse_filters(request.args)
        return filters, search.story_query(filters, user), None
    except (Invalid, Unauthorized) as exc:
        filters = search.StoryFilters()
        return filters, search.story_query(filters, user), exc.message


def _list_params(filters: search.StoryFilters) -> dict[str, str]:
    """The filters as query arguments, for the page links (defaults left out)."""
    params = {"q": filters.q, "language": filters.language, "status": filters.status}
    params |= {"tag": filters.tag, "mine": "1" if filters.mine else None}
    params["sort"] = filters.sort if filters.sort != "activity" else None
    return {name: value for name, value in params.items() if value}


@bp.route("/stories/<int:story_id>")
def show(story_id: int) -> Response:
    """The story as prose: the opening, then its latest turns ("?before=N" for earlier ones);
    304 when the reader's copy is current (app/stories/caching.py)."""
    answer = caching.read_through(
        "page", story_id, current_user_or_none(), _render_story, caching.PAGE_VARY
    )
    if isinstance(answer, Response):
        return answer
    html, tag = answer
    return caching.tagged(current_app.make_response(html), tag)


@bp.route("/stories/<int:story_id>/turns.json")
def turns_json(story_id: int) -> Response:
    """Turns for the page's script: ?before=N (earlier page) or ?since=N (catch up); 304
    when the script's copy is current."""
    user = current_user_or_none()
    answer = caching.read_through(
        "turns.json", story_id, user, lambda story: _turns_body(story, user), caching.PAGE_VARY
    )
    if isinstance(answer, Response):
        return answer
    body, tag = answer
    return caching.tagged(current_app.response_class(body, mimetype="application/json"), tag)


@bp.route("/stories/<int:story_id>/state.json")
def state_json(story_id: int) -> Response:
    """Who may write next, whether the model is writing, what the viewer may regenerate."""
    return jsonify(story_state(_readable(story_id), current_user_or_none()))


@bp.route("/stories/<int:story_id>/events")
def events(story_id: int) -> Response:
    """Server-Sent Events for one story (new turns, streamed model text, hiding)."""
    _readable(story_id)
    try:
        from app.live.sse import event_stream
    except ImportError:
        raise Unavailable("Live updates are not available on this server.") from None
    return event_stream(story_id, last_event_id=request.headers.get("Last-Event-ID"))


@bp.route("/stories/<int:story_id>/export.<fmt>")
def export(story_id: int, fmt: str) -> Response:
    """Download the story as plain text (.txt), Markdown (.md) or an e-book (.epub), every
    turn credited."""
    if fmt not in ("txt", "md", "epub"):
        raise Invalid(_("Export as .txt, .md or .epub."), field="format")
    text, mimetype, filename = export_story(_readable(story_id), fmt)
    response = current_app.response_class(text, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- writing -------------------------------------------------------------------


@bp.route("/stories/new", methods=["GET", "POST"])
@signed_in
def new() -> Response | tuple[str, int] | str:
    """Start a story; bad input shows the message on the form and stores nothing."""
    form = StoryForm()
    if form.validate_on_submit():
        try:
            story = relay.create_story(current_user, form.relay_data())
        except RelayError as exc:
            attach_error(form, exc)
            return render_template("stories/new.html", form=form), exc.status
        flash(_("Your story has begun. Write the first paragraph, or wait for others."), "success")
        return redirect(url_for("stories.show", story_id=story.id))
    status = 422 if form.is_submitted() else 200
    return render_template("stories/new.html", form=form), status


@bp.route("/stories/<int:story_id>/turns", methods=["POST"])
@limiter.limit(_turn_limit, methods=["POST"])
@signed_in
def add_turn(story_id: int) -> Response | tuple[Any, int] | str:
    """Append the writer's paragraph; the model's answer follows over the event stream."""
    form = TurnForm()
    try:
        turn, job = relay.append_human_turn(
            story_id, current_user, form.text.data, form.expected_position.data
        )
    except RelayError as exc:
        if wants_json():
            raise
        flash(form_message(form, exc), "error")
        return _render_story(_readable(story_id), form=form), exc.status
    if wants_json():
        return jsonify({"turn": turn_dict(turn), "job": job_dict(job) if job else None}), 201
    if job is None:
        flash(_("Your paragraph is waiting for a moderator's review before the story goes on."))
    return redirect(url_for("stories.show", story_id=story_id, _anchor=f"turn-{turn.position}"))


@bp.route("/stories/<int:story_id>/turns/<int:position>/regenerate", methods=["POST"])
@limiter.limit(_turn_limit, methods=["POST"])
@signed_in
def regenerate(story_id: int, position: int) -> Response | tuple[Any, int]:
    """Ask the model again for the latest turn (the old text stays, hidden, in the history)."""
    try:
        job = relay.regenerate(story_id, position, current_user)
    except RelayError as exc:
        if wants_json() or exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect(url_for("stories.show", story_id=story_id))
    if wants_json():
        return jsonify({"job": job_dict(job)}), 202
    return redirect(url_for("stories.show", story_id=story_id, _anchor="story-end"))


@bp.route("/stories/<int:story_id>/join", methods=["POST"])
@signed_in
def join(story_id: int) -> Response:
    """Join a story's round (round-robin order is join order)."""
    try:
        relay.join_story(story_id, current_user)
    except RelayError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
    else:
        flash(_("You joined this story."), "success")
    return redirect(url_for("stories.show", story_id=story_id))


# --- helpers -------------------------------------------------------------------


def _room_state(story: Story, user: User | None) -> dict[str, bool]:
    from app.stories.room_views import may_join

    member = user is not None and reads.participant(story, user) is not None
    return {
        "manage": can_manage(story, user),
        "may_join": not member and may_join(story, user),
        "may_leave": member and user.id != story.owner_id,
    }


def _readable(story_id: int) -> Story:
    """The story, if the viewer may read it (app/stories/access.py); 404 otherwise."""
    return readable_story(story_id, current_user_or_none())


def _turns_body(story: Story, user: User | None) -> bytes:
    before = arg_int("before", None)
    since = arg_int("since", None)
    if since is not None:
        turns, has_earlier = reads.visible_turns(story, since=since, viewer=user), False
    else:
        turns, has_earlier = reads.turn_page(story, user, before, TURNS_PER_PAGE)
    body = {"turns": turn_dicts(turns), "has_earlier": has_earlier}
    return current_app.json.dumps(body).encode() + b"\n"


def _render_story(story: Story, form: TurnForm | None = None) -> str:
    before = arg_int("before", None)
    user = current_user_or_none()
    turns, has_earlier = reads.turn_page(story, user, before, TURNS_PER_PAGE)
    form = form or TurnForm()
    # Always the position the page shows: a stale submission comes back ready to resend.
    form.expected_position.data = str(story.last_position)
    return render_template(
        "stories/show.html",
        story=story,
        turns=turns,
        has_earlier=has_earlier,
        paged=before is not None,
        state=story_state(story, user),
        form=form,
        sees_hidden=reads.sees_hidden(user),
        is_participant=reads.participant(story, user) is not None,
        room=_room_state(story, user),
        reported=reported_by(user.id if user else None, [t.id for t in turns]),
        numbers=paragraph_numbers(turns),
        fork=fork_origin(story, user),
    )
