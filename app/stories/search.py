"""Finding stories: the filtered, searched, sorted story query behind every story list.

The browser's index and the API's list both call `parse_filters` (the request's
arguments, or a 422 naming the bad one) and `story_query` (the SELECT). The
query always applies app/stories/access.py's readable_clause: a private or
unlisted story is listed only for those who take part in it.

Search is a case-insensitive substring match of the query against a story's
title, its opening and the text of its visible turns (not hidden, not held), so
"민준" finds "민준이는" and "민준을" (Korean names carry their particles).
Both databases give the same answer:

- PostgreSQL: `ILIKE '%q%'` (wildcards in q escaped), accelerated by pg_trgm
  GIN indexes on stories.title, stories.opening and turns.text;
- SQLite: FTS5 tables with the trigram tokenizer (story_search over title and
  opening, turn_search over visible turns' text), kept in sync by triggers; a
  quoted phrase MATCH is a case-insensitive substring match there (Unicode
  case folding, as ILIKE's). Queries under three characters (no trigram to
  look up) use LIKE on the tables, once per upper/lower-case spelling.

The search objects are created with the tables (metadata hooks below, for
`db.create_all()`) and by the migration a1d5c9e3f7b2; they are not in the
models' metadata, so `is_search_object` keeps them out of schema comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import DDL, Select, event, exists, func, literal_column, or_, select, union
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table

from app.accounts.models import User
from app.errors import Invalid, Unauthorized
from app.extensions import db
from app.stories.access import readable_clause
from app.stories.models import LANGUAGES, STATUSES, Participant, Story, StoryTag, Turn
from app.stories.validation import clean_tags

QUERY_MAX_CHARS = 100
SORTS = ("activity", "newest", "title")
TRIGRAM = 3  # the shortest query the trigram indexes can look up

# --- the search objects (SQLite FTS5 tables and triggers, PostgreSQL trigram indexes) ---

SQLITE_STORY_SEARCH = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS story_search "
    "USING fts5(title, opening, tokenize='trigram')",
    "INSERT INTO story_search (rowid, title, opening) SELECT id, title, opening FROM stories",
    "CREATE TRIGGER IF NOT EXISTS story_search_insert AFTER INSERT ON stories BEGIN "
    "INSERT INTO story_search (rowid, title, opening) VALUES (new.id, new.title, new.opening); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS story_search_update AFTER UPDATE OF title, opening "
    "ON stories BEGIN DELETE FROM story_search WHERE rowid = old.id; "
    "INSERT INTO story_search (rowid, title, opening) VALUES (new.id, new.title, new.opening); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS story_search_delete AFTER DELETE ON stories BEGIN "
    "DELETE FROM story_search WHERE rowid = old.id; END",
]
# Only visible turns are indexed: hiding or holding a turn takes it out of search.
SQLITE_TURN_SEARCH = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS turn_search "
    "USING fts5(story_id UNINDEXED, text, tokenize='trigram')",
    "INSERT INTO turn_search (rowid, story_id, text) "
    "SELECT id, story_id, text FROM turns WHERE NOT hidden AND NOT held",
    "CREATE TRIGGER IF NOT EXISTS turn_search_insert AFTER INSERT ON turns "
    "WHEN NOT new.hidden AND NOT new.held BEGIN "
    "INSERT INTO turn_search (rowid, story_id, text) VALUES (new.id, new.story_id, new.text); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS turn_search_update AFTER UPDATE OF text, hidden, held, "
    "story_id ON turns BEGIN DELETE FROM turn_search WHERE rowid = old.id; "
    "INSERT INTO turn_search (rowid, story_id, text) SELECT new.id, new.story_id, new.text "
    "WHERE NOT new.hidden AND NOT new.held; END",
    "CREATE TRIGGER IF NOT EXISTS turn_search_delete AFTER DELETE ON turns BEGIN "
    "DELETE FROM turn_search WHERE rowid = old.id; END",
]
SQLITE_DROP = ["DROP TABLE IF EXISTS story_search", "DROP TABLE IF EXISTS turn_search"]
POSTGRES_EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
POSTGRES_STORY_INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_stories_title_trgm ON stories USING gin (title gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_stories_opening_trgm "
    "ON stories USING gin (opening gin_trgm_ops)",
]
POSTGRES_TURN_INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_turns_text_trgm ON turns USING gin (text gin_trgm_ops)",
]
_FTS_TABLES = ("story_search", "turn_search")
_FTS_SHADOWS = ("data", "idx", "content", "docsize", "config")
SEARCH_OBJECTS = frozenset(
    [*_FTS_TABLES, *(f"{t}_{s}" for t in _FTS_TABLES for s in _FTS_SHADOWS)]
    + ["ix_stories_title_trgm", "ix_stories_opening_trgm", "ix_turns_text_trgm"]
)


def is_search_object(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """Alembic include_name hook: False for the search objects (not in the models)."""
    return name not in SEARCH_OBJECTS


def _listen(table: Any, sqlite: list[str], postgres: list[str]) -> None:
    for statement in sqlite:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    for statement in postgres:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="postgresql"))


_listen(Story.__table__, SQLITE_STORY_SEARCH, [POSTGRES_EXTENSION, *POSTGRES_STORY_INDEXES])
_listen(Turn.__table__, SQLITE_TURN_SEARCH, POSTGRES_TURN_INDEXES)
for _statement in SQLITE_DROP:  # a virtual table outlives the table it indexes
    event.listen(Story.__table__, "after_drop", DDL(_statement).execute_if(dialect="sqlite"))

_story_fts = sql_table("story_search", sql_column("rowid"))
_turn_fts = sql_table("turn_search", sql_column("story_id"))


# --- filters -------------------------------------------------------------------


@dataclass(frozen=True)
class StoryFilters:
    """What a story list asks for; the defaults list every readable story by activity."""

    q: str = ""
    language: str | None = None
    status: str | None = None
    mine: bool = False
    tag: str | None = None
    sort: str = "activity"

    @property
    def active(self) -> bool:
        """Whether anything narrows the list (the sort alone does not)."""
        return bool(self.q or self.language or self.status or self.mine or self.tag)


def parse_filters(args: Mapping[str, str]) -> StoryFilters:
    """StoryFilters from query arguments q, language, status, mine, tag, sort (blank ones
    are absent); Invalid (422) naming the first bad one."""
    q = " ".join((args.get("q") or "").split())
    if len(q) > QUERY_MAX_CHARS:
        raise Invalid(
            _("A search is at most %(limit)s characters.", limit=QUERY_MAX_CHARS), field="q"
        )
    return StoryFilters(
        q=q,
        language=_choice(args, "language", LANGUAGES),
        status=_choice(args, "status", STATUSES),
        mine=_choice(args, "mine", ("0", "1")) == "1",
        tag=_tag(args.get("tag") or ""),
        sort=_choice(args, "sort", SORTS) or "activity",
    )


def _choice(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if value not in choices:
        raise Invalid(
            _("%(field)s must be one of: %(choices)s.", field=name, choices=", ".join(choices)),
            field=name,
        )
    return value


def _tag(raw: str) -> str | None:
    if "," in raw:
        raise Invalid(_("Filter by one tag at a time."), field="tag")
    try:
        names = clean_tags([raw])
    except Invalid as error:
        raise Invalid(error.message, field="tag") from None
    return names[0] if names else None


# --- the query -----------------------------------------------------------------


def story_query(filters: StoryFilters, user: User | None) -> Select[tuple[Story]]:
    """Stories `user` (None: anonymous) may see in lists, narrowed by `filters` and sorted;
    Unauthorized (401) for "I take part" without a user."""
    query = select(Story).where(readable_clause(user))
    if filters.q:
        query = query.where(Story.id.in_(_matching_story_ids(filters.q)))
    if filters.language:
        query = query.where(Story.language == filters.language)
    if filters.status:
        query = query.where(Story.status == filters.status)
    if filters.tag:
        query = query.where(
            exists().where(StoryTag.story_id == Story.id, StoryTag.name == filters.tag)
        )
    if filters.mine:
        if user is None:
            raise Unauthorized(_("Sign in to list the stories you take part in."))
        member = exists().where(Participant.story_id == Story.id, Participant.user_id == user.id)
        query = query.where(or_(Story.owner_id == user.id, member))
    return query.order_by(*_order(filters.sort))


def count_of(query: Select[tuple[Story]]) -> int:
    """How many stories `query` lists (for pagination)."""
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def _order(sort: str) -> list[Any]:
    if sort == "newest":
        return [Story.created_at.desc(), Story.id.desc()]
    if sort == "title":
        # Code point order on both databases (PostgreSQL's locale collation would differ).
        key = func.lower(Story.title)
        if _dialect() == "postgresql":
            key = key.collate("C")
        return [key, Story.id]
    return [Story.updated_at.desc(), Story.id.desc()]


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _matching_story_ids(q: str) -> Any:
    """A SELECT of the ids of stories whose title, opening or a visible turn contains q."""
    if _dialect() == "sqlite" and len(q) >= TRIGRAM:
        phrase = '"' + q.replace('"', '""') + '"'  # an FTS5 string: no operators inside
        return union(
            select(literal_column("rowid"))
            .select_from(_story_fts)
            .where(literal_column("story_search").op("MATCH")(phrase)),
            select(_turn_fts.c.story_id).where(literal_column("turn_search").op("MATCH")(phrase)),
        )
    # SQLite's LIKE folds ASCII letters only: a short query (no FTS) tries each case of
    # its letters, as PostgreSQL's ILIKE and FTS5's folding match "É" to "é".
    variants = _case_variants(q) if _dialect() == "sqlite" else [q]
    patterns = ["%" + escape_like(variant) + "%" for variant in variants]

    def contains(col: Any) -> Any:
        return or_(*(col.ilike(pattern, escape="\\") for pattern in patterns))

    return union(
        select(Story.id).where(or_(contains(Story.title), contains(Story.opening))),
        select(Turn.story_id).where(
            Turn.hidden.is_(False), Turn.held.is_(False), contains(Turn.text)
        ),
    )


def _case_variants(q: str) -> list[str]:
    """Every upper/lower-case spelling of a short query (at most 2**len(q) of them)."""
    return sorted({"".join(p) for p in product(*({c.lower(), c.upper()} for c in q))})


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards (% and _) and the escape character taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
