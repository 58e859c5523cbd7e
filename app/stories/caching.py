"""ETags, 304s and a shared cache of rendered answers for the story read path.

The story page, its JSON turn list and the API's turn list are tagged from
tag_inputs(): the story's revision (a counter bumped in the same transaction as
every change to the story, its turns, its jobs, participants or reports; see
app/stories/revision.py), the kind of answer and its query string, who is
looking (moderators see hidden turns, a writer their own held paragraph,
signed-in writers get buttons), the session's CSRF secret on pages that embed a
token, the interface language, and the deployment (code, templates, static
files). A request whose If-None-Match holds the current tag gets 304 with no
body and no rendering; the check reads the revision alone, in one light query.

CSRF: WTF_CSRF_TIME_LIMIT is None (app/config.py), so a page's token stays
valid as long as its session; the session's CSRF secret is a tag input, so a
new session (signing in or out) never revalidates a page holding a token it
would refuse. Flashes: a response that shows a flash carries no ETag, and no
304 is answered while a flash waits to be shown.

Pages are `Cache-Control: private, no-cache` (every use revalidates; nothing
shared caches them) and vary by Cookie and Accept-Language. Answers for
anonymous readers, identical for all of them (the page then embeds no CSRF
token), are also kept rendered in a small per-process LRU keyed by the tag, so
a popular story's page is rendered once per change, not once per reader.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, request, session
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from app.accounts.locale import current_locale
from app.accounts.models import User
from app.config import ROOT
from app.stories import reads
from app.stories.access import require_readable
from app.stories.models import Story

T = TypeVar("T")
Vary = tuple[str, ...]

SHARED_ENTRIES = 256  # rendered anonymous answers kept per process (~20 kB each)
PAGE_VARY = ("Cookie", "Accept-Language")
API_VARY = ("Authorization", "Cookie", "Accept-Language")
CACHE_CONTROL = "private, no-cache"


def tag_inputs(kind: str, story_id: int, revision: int, viewer: User | None) -> tuple[Any, ...]:
    """Everything an answer of `kind` about a story at `revision` depends on, for this request."""
    return (
        kind,
        story_id,
        revision,
        sorted(request.args.items(multi=True)),
        viewer_key(viewer),
        _csrf_secret() if kind == "page" and viewer is not None else None,
        current_locale(),  # the interface language (messages in the JSON answers too)
        deployment_tag(),
    )


def viewer_key(viewer: User | None) -> str:
    """What about the viewer changes what they see: who, their role, whether suspended."""
    if viewer is None:
        return "anonymous"
    return f"{viewer.id}:{viewer.role}:{int(viewer.is_suspended)}"


def read_through(
    kind: str, story_id: int, viewer: User | None, build: Callable[[Story], T], vary: Vary
) -> Response | tuple[T, str | None]:
    """A 304 when the request's If-None-Match is current; else the answer and its tag.

    The check reads the story's revision alone (reads.story_revision); an anonymous
    viewer's answer then comes from the shared cache when it holds the tag, and otherwise
    build(story) makes it (and the cache keeps it).
    """
    require_readable(story_id, viewer)  # 404 for those who may not read it, 304 or not
    tag = story_etag(kind, story_id, reads.story_revision(story_id), viewer)
    unchanged = not_modified(tag, vary)
    if unchanged is not None:
        return unchanged
    cache = _shared_cache() if tag is not None and viewer is None else None
    found = cache.get(tag) if cache is not None else None
    if found is not None:
        return found, tag
    story = reads.get_story(story_id)
    tag = story_etag(kind, story.id, story.revision, viewer)  # what build(story) will show
    answer = build(story)
    if cache is not None and tag is not None:
        cache.put(tag, answer)
    return answer, tag


def story_etag(kind: str, story_id: int, revision: int, viewer: User | None) -> str | None:
    """The ETag of this answer, or None when it must not be revalidated (a pending flash,
    a method other than GET or HEAD)."""
    if request.method not in ("GET", "HEAD") or session.get("_flashes"):
        return None
    inputs = tag_inputs(kind, story_id, revision, viewer)
    return hashlib.blake2b(repr(inputs).encode(), digest_size=12).hexdigest()


def not_modified(tag: str | None, vary: Vary = PAGE_VARY) -> Response | None:
    """304 with no body when the request's If-None-Match holds `tag`, else None."""
    if tag is None or not request.if_none_match.contains_weak(tag):
        return None
    return tagged(current_app.response_class(status=304), tag, vary)


def tagged(response: Response, tag: str | None, vary: Vary = PAGE_VARY) -> Response:
    """Mark a read-path answer: its ETag (if any), private and always revalidated."""
    if tag is not None:
        response.set_etag(tag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    for header in vary:
        response.vary.add(header)
    return response


def tag_headers(tag: str | None) -> dict[str, str]:
    """The same marks as headers, for a flask-restx resource that returns a tuple."""
    headers = {"Cache-Control": CACHE_CONTROL, "Vary": ", ".join(API_VARY)}
    if tag is not None:
        headers["ETag"] = f'"{tag}"'
    return headers


def _shared_cache() -> _Lru:
    """Answers every anonymous reader gets alike, by tag (one per process)."""
    cache = current_app.extensions.get("relay.read_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("relay.read_cache", _Lru(SHARED_ENTRIES))
    return cache


def deployment_tag() -> str:
    """Changes when the code, templates or static files do (computed once per process)."""
    found = current_app.extensions.get("relay.deployment_tag")
    if found is None:
        digest = hashlib.blake2b(digest_size=8)
        for folder in ("app", "templates", "static"):
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file() and path.suffix != ".pyc":
                    stat = path.stat()
                    digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        found = current_app.extensions["relay.deployment_tag"] = digest.hexdigest()
    return found


def _csrf_secret() -> str:
    """A digest of the session's CSRF secret (created now if the session has none yet)."""
    generate_csrf()
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    secret = str(session.get(field, ""))
    return hashlib.blake2b(secret.encode(), digest_size=8).hexdigest()


class _Lru:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
