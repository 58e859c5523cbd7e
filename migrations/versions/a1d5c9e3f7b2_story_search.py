"""story search: FTS5 trigram tables and triggers (SQLite), pg_trgm GIN indexes (PostgreSQL)

Revision ID: a1d5c9e3f7b2
Revises: f3b8d2a61c47
Create Date: 2026-12-02 16:10:00

The same objects app/stories/search.py creates with the tables (db.create_all); they are
not in the models' metadata. On SQLite, a later batch migration that recreates `stories`
or `turns` drops their triggers with them: it must create them again.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "a1d5c9e3f7b2"
down_revision = "f3b8d2a61c47"
branch_labels = None
depends_on = None

SQLITE_UP = [
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
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS story_search_insert",
    "DROP TRIGGER IF EXISTS story_search_update",
    "DROP TRIGGER IF EXISTS story_search_delete",
    "DROP TRIGGER IF EXISTS turn_search_insert",
    "DROP TRIGGER IF EXISTS turn_search_update",
    "DROP TRIGGER IF EXISTS turn_search_delete",
    "DROP TABLE IF EXISTS story_search",
    "DROP TABLE IF EXISTS turn_search",
]
POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_stories_title_trgm ON stories USING gin (title gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_stories_opening_trgm "
    "ON stories USING gin (opening gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_turns_text_trgm ON turns USING gin (text gin_trgm_ops)",
]
POSTGRES_DOWN = [  # the extension stays: other databases' objects may use it
    "DROP INDEX IF EXISTS ix_stories_title_trgm",
    "DROP INDEX IF EXISTS ix_stories_opening_trgm",
    "DROP INDEX IF EXISTS ix_turns_text_trgm",
]


def _run(statements):
    for statement in statements:
        op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_UP)
    elif dialect == "postgresql":
        _run(POSTGRES_UP)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_DOWN)
    elif dialect == "postgresql":
        _run(POSTGRES_DOWN)
