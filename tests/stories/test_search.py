"""Finding stories (app/stories/search.py): search, filters and sort, on SQLite and PostgreSQL,
through the service and through the API's list and the browser's index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.accounts.models import User, utcnow
from app.errors import Invalid, Unauthorized
from app.extensions import db
from app.stories import relay
from app.stories.models import Participant, Story, Turn
from app.stories.search import parse_filters, story_query
from tests.conftest import Factory, build_app, close_app


@pytest.fixture
def app(quiet_app):
    return quiet_app


@pytest.fixture
def f(app) -> Factory:
    return Factory(app)


def add_turn(app, story_id: int, text: str, held: bool = False) -> int:
    """A visible (or held) human turn, stored directly: search reads rows, not the relay."""
    with app.app_context():
        story = db.session.get(Story, story_id)
        story.last_position += 1
        turn = Turn(
            story_id=story_id, position=story.last_position, kind="human", text=text, held=held
        )
        db.session.add(turn)
        db.session.commit()
        return turn.id


def found(app, user_id: int | None = None, **args: str) -> list[int]:
    """The ids story_query lists for these query arguments, in order."""
    with app.app_context():
        user = db.session.get(User, user_id) if user_id else None
        return list(
            db.session.scalars(story_query(parse_filters(args), user).with_only_columns(Story.id))
        )


def test_a_korean_name_is_found_with_its_particles(app, f):
    """Does "민준" find "민준이는" and "민준을" (short and trigram-long queries alike)?"""
    ada = f.user()
    title = f.story(ada, title="민준이는 바다로 갔다", language="ko", opening="파도가 높았다.")
    opening = f.story(ada, title="등대", language="ko", opening="서연은 민준을 불렀다.")
    other = f.story(ada, title="서연의 편지", language="ko", opening="비가 왔다.")
    assert sorted(found(app, q="민준")) == sorted([title, opening])
    assert found(app, q="민준이") == [title]
    assert found(app, q="민준을 불렀") == [opening]
    assert found(app, q="서연") == [other, opening]


def test_english_search_ignores_case(app, f):
    """Do "LIGHTHOUSE", "lig" and "Li" all find "The Lighthouse"?"""
    ada = f.user()
    sid = f.story(ada, title="The Lighthouse", opening="The lamp went out.")
    f.story(ada, title="Salt", opening="Foam.")
    for q in ("LIGHTHOUSE", "lig", "Li", "the LAMP went"):
        assert found(app, q=q) == [sid], q
    assert found(app, q="lighthouses") == []


def test_a_visible_turn_is_found_and_a_hidden_or_held_one_is_not(app, f):
    """Is a turn's text found, and no longer once a moderator hides it (found again when
    restored); is a held turn's text never found?"""
    ada, mod = f.user(), f.user(role="moderator")
    sid = f.story(ada, title="Letters", opening="Dear sea.")
    turn = add_turn(app, sid, "The keeper found a bottle of amber glass.")
    add_turn(app, sid, "A secret about the cellar door.", held=True)
    assert found(app, q="amber glass") == [sid] and found(app, q="am") == [sid]
    assert found(app, q="cellar") == [] and found(app, q="ll") == []
    with app.app_context():
        relay.set_hidden(turn, db.session.get(User, mod), True, "spam")
    assert found(app, q="amber") == [] and found(app, q="mb") == []
    with app.app_context():
        relay.set_hidden(turn, db.session.get(User, mod), False, "fine")
    assert found(app, q="amber") == [sid]


def test_private_and_unlisted_stories_are_found_only_by_participants(app, f):
    """Are private and unlisted stories missing from others' search, and found by their
    owner and by a participant?"""
    owner, member, stranger = f.user(), f.user(), f.user()
    public = f.story(owner, title="Moonlit harbour")
    private = f.story(owner, title="Moonlit cellar", visibility="private")
    unlisted = f.story(owner, title="Moonlit attic", visibility="unlisted")
    with app.app_context():
        db.session.add(Participant(story_id=private, user_id=member))
        db.session.commit()
    assert found(app, q="moonlit") == [public]
    assert found(app, stranger, q="moonlit") == [public]
    assert found(app, stranger) == [public]
    assert sorted(found(app, owner, q="moonlit")) == sorted([public, private, unlisted])
    assert sorted(found(app, member, q="moonlit")) == sorted([public, private])


def test_wildcards_in_the_query_are_literal(app, f):
    """Do %, _ and \\ in a query match only themselves?"""
    ada = f.user()
    percent = f.story(ada, title="100% true")
    under = f.story(ada, title="snake_case tale")
    slash = f.story(ada, title="back\\slash")
    f.story(ada, title="plain words")
    assert found(app, q="%") == [percent] and found(app, q="0% t") == [percent]
    assert found(app, q="_") == [under] and found(app, q="e_c") == [under]
    assert found(app, q="\\") == [slash] and found(app, q="k\\s") == [slash]
    assert found(app, q='"') == [] and found(app, q='a "b" OR c*') == []


def test_editing_and_deleting_keep_the_search_in_step(app, f):
    """After a title changes, is the story found by its new title only; once deleted, is it
    gone from the results?"""
    ada = f.user()
    sid = f.story(ada, title="Old name")
    add_turn(app, sid, "Waves and gulls.")
    with app.app_context():
        relay.update_story(sid, db.session.get(User, ada), {"title": "New name"})
    assert found(app, q="new name") == [sid] and found(app, q="old name") == []
    with app.app_context():
        relay.delete_story(sid, db.session.get(User, ada))
    assert found(app, q="gulls") == [] and found(app, q="name") == []


def test_filters_by_language_status_tag_and_taking_part(app, f):
    """Do language, status, tag and "I take part" each narrow the list?"""
    ada, bea = f.user(), f.user()
    en = f.story(ada, title="Fog", tags=["mystery", "sea"])
    ko = f.story(ada, title="안개", language="ko", tags=["mystery"])
    joined = f.story(bea, title="Rain")
    with app.app_context():
        relay.set_status(ko, db.session.get(User, ada), "finished")
        relay.join_story(joined, db.session.get(User, ada))
    mine = f.story(bea, title="Bea's own")
    assert found(app, language="ko") == [ko]
    assert found(app, status="finished") == [ko]
    assert sorted(found(app, tag="mystery")) == sorted([en, ko])
    assert found(app, tag=" SEA ") == [en]
    assert sorted(found(app, ada, mine="1")) == sorted([en, ko, joined])
    assert sorted(found(app, bea, mine="1")) == sorted([joined, mine])
    assert found(app, ada, mine="1", language="en", tag="sea", q="fo") == [en]
    with pytest.raises(Unauthorized):
        found(app, mine="1")


def test_sorts_by_activity_newest_and_title(app, f):
    """Does sort order by last activity (default), creation, or title?"""
    ada = f.user()
    b = f.story(ada, title="banana")
    a = f.story(ada, title="Apple")
    c = f.story(ada, title="cherry")
    with app.app_context():
        now = utcnow()
        for sid, created, updated in ((b, 3, 1), (a, 2, 3), (c, 1, 2)):
            story = db.session.get(Story, sid)
            story.created_at = now - timedelta(hours=created)
            story.updated_at = now - timedelta(hours=updated)
        db.session.commit()
    assert found(app) == [b, c, a] == found(app, sort="activity")
    assert found(app, sort="newest") == [c, a, b]
    assert found(app, sort="title") == [a, b, c]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"q": "x" * 101}, "q"),
        ({"language": "fr"}, "language"),
        ({"status": "closed"}, "status"),
        ({"mine": "yes"}, "mine"),
        ({"sort": "random"}, "sort"),
        ({"tag": "t" * 40}, "tag"),
        ({"tag": "a,b"}, "tag"),
    ],
)
def test_bad_arguments_name_their_field(args: dict[str, str], field: str):
    """Is each bad argument an Invalid naming it (the API's 422)?"""
    with pytest.raises(Invalid) as caught:
        parse_filters(args)
    assert caught.value.details["field"] == field


def test_blank_arguments_are_absent():
    """Are empty arguments (an untouched form) no filter at all?"""
    filters = parse_filters({"q": "  ", "language": "", "status": "", "tag": "", "sort": ""})
    assert not filters.active and filters.sort == "activity"
    assert parse_filters({"q": "  two   words "}).q == "two words"


QUERY_SET = ["민준", "민준이", "준을", "LIGHT", "li", "amber", "%", "_", "the", "e", "바다", "xyz"]
QUERY_SET += ["É", "é", "fé", "CAFÉ", "caf"]


def _fixture_stories(app) -> dict[str, int]:
    f = Factory(app)
    ada = f.user("ada")
    ids = {
        "ko1": f.story(ada, title="민준이는 바다로", language="ko"),
        "ko2": f.story(ada, title="편지", language="ko", opening="민준을 불렀다."),
        "en1": f.story(ada, title="The Lighthouse", opening="THE LAMP."),
        "en2": f.story(ada, title="100% sure", opening="snake_case"),
        "en3": f.story(ada, title="Gulls", opening="Wings."),
        "en4": f.story(ada, title="Café", opening="Crème."),
    }
    add_turn(app, ids["en3"], "Amber light on the water.")
    add_turn(app, ids["ko1"], "바다는 조용했다.")
    add_turn(app, ids["en1"], "hidden amber", held=True)
    return ids


def test_sqlite_and_postgresql_give_the_same_results(tmp_path, pg_database, tiny_model_dir):
    """For a fixed set of queries, do both databases list the same stories in the same
    order?"""
    results: dict[str, list[list[str]]] = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'same.sqlite3'}"), ("pg", pg_database)):
        application = build_app(url, tiny_model_dir, RELAY_START_RUNNER=False)
        try:
            names = {sid: key for key, sid in _fixture_stories(application).items()}
            results[name] = [
                [names[sid] for sid in found(application, q=q, sort="title")] for q in QUERY_SET
            ]
        finally:
            close_app(application)
    assert results["sqlite"] == results["pg"]
    assert results["sqlite"][0] == ["ko1", "ko2"] and results["sqlite"][11] == []
    assert results["sqlite"][12:] == [["en4"]] * 5


# --- the API and the page --------------------------------------------------------


def _titles(response: Any) -> list[str]:
    return [story["title"] for story in response.get_json()["stories"]]


def test_the_api_lists_searches_and_shows_tags(client, f):
    """Does GET /api/v1/stories take q, tag and sort, count only matches, and give tags?"""
    ada = f.user()
    f.story(ada, title="민준이의 여름", language="ko", tags=["여름", "summer"])
    f.story(ada, title="Winter", tags=["cold"])
    response = client.get("/api/v1/stories", query_string={"q": "민준", "tag": "summer"})
    assert response.status_code == 200
    body = response.get_json()
    assert _titles(response) == ["민준이의 여름"] and body["total"] == 1
    assert body["stories"][0]["tags"] == ["summer", "여름"]
    response = client.get("/api/v1/stories", query_string={"sort": "title", "language": "en"})
    assert _titles(response) == ["Winter"]
    mine = client.get("/api/v1/stories?mine=1", headers=f.headers(ada))
    assert mine.get_json()["total"] == 2


@pytest.mark.parametrize(
    "query", ["q=" + "x" * 101, "language=fr", "status=x", "mine=2", "sort=up", "tag=a,b"]
)
def test_the_api_answers_bad_arguments_with_422(client, query: str):
    """Is each bad argument a 422 JSON error naming it?"""
    response = client.get(f"/api/v1/stories?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == query.split("=")[0]


def test_the_api_wants_a_user_for_mine(client):
    """Is "I take part" without a user a 401?"""
    assert client.get("/api/v1/stories?mine=1").status_code == 401


def test_the_index_searches_filters_and_links_tags(client, f):
    """Does the index page search, keep the form's values, and show tags as filter links?"""
    ada = f.user()
    sid = f.story(ada, title="민준이의 여름", language="ko", tags=["summer"])
    f.story(ada, title="Winter")
    page = client.get("/", query_string={"q": "민준", "language": "ko"}).get_data(as_text=True)
    assert "민준이의 여름" in page and "Winter" not in page
    assert 'value="민준"' in page and 'href="/?tag=summer"' in page
    tagged = client.get("/?tag=summer").get_data(as_text=True)
    assert "민준이의 여름" in tagged and "Winter" not in tagged
    story = client.get(f"/stories/{sid}").get_data(as_text=True)
    assert 'href="/?tag=summer"' in story


@pytest.mark.parametrize("query", ["q=" + "x" * 101, "language=fr", "sort=up", "mine=1"])
def test_the_index_explains_bad_arguments(client, f, query: str):
    """Is a bad argument a message on the page, not a 500?"""
    f.story(f.user(), title="Winter")
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'class="flash flash-error search-error"' in page and "Winter" in page


def test_the_migration_indexes_existing_stories(db_url, tiny_model_dir):
    """Does upgrading a database that already holds stories make them searchable (the
    migration fills the search tables), and do later writes keep them in step?"""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from tests.conftest import make_app

    application = make_app(db_url, tiny_model_dir, RELAY_START_RUNNER=False)
    with application.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(revision="f3b8d2a61c47")
    try:
        f = Factory(application)
        sid = _old_story(application, f.user(), "민준이의 등대", ["Amber light.", "A held secret."])
        with application.app_context():
            upgrade()
        assert found(application, q="민준") == [sid] and found(application, q="amber") == [sid]
        assert found(application, q="secret") == []
        later = f.story(f.user(), title="Later lighthouse")
        assert found(application, q="lighthouse") == [later]
    finally:
        with application.app_context():
            db.session.remove()
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        close_app(application)


def _old_story(application, owner_id: int, title: str, texts: list[str]) -> int:
    """A story and its turns (the last one held) written in SQL with the columns the tables
    had at that revision (the ORM's models have more since)."""
    from sqlalchemy import text

    now = utcnow()
    with application.app_context(), db.engine.begin() as conn:
        sid = conn.execute(
            text(
                "INSERT INTO stories (title, language, model_key, opening, policy, preset, "
                "max_new_tokens, status, owner_id, last_position, created_at, updated_at) "
                "VALUES (:t, 'en', 'en', 'It was a dark night.', 'open', 'balanced', 80, "
                "'open', :o, :n, :now, :now) RETURNING id"
            ),
            {"t": title, "o": owner_id, "n": len(texts), "now": now},
        ).scalar_one()
        for position, body in enumerate(texts, start=1):
            conn.execute(
                text(
                    "INSERT INTO turns (story_id, position, kind, text, author_id, hidden, "
                    "held, created_at) VALUES (:s, :p, 'human', :x, :o, false, :h, :now)"
                ),
                {"s": sid, "p": position, "x": body, "o": owner_id,
                 "h": position == len(texts), "now": now},
            )  # fmt: skip
    return sid


def test_the_index_lists_my_stories_and_pages_keep_the_search(app, client, f):
    """Does a signed-in writer get "I take part" (checked when asked), and do the page links
    of a long result carry the search along?"""
    from tests.conftest import session_user_id

    ada, bea = f.user(), f.user()
    f.story(ada, title="Ada tale")
    f.story(bea, title="Bea tale")
    with client.session_transaction() as session:
        session["_user_id"] = session_user_id(app, ada)
    page = client.get("/?mine=1").get_data(as_text=True)
    assert "Ada tale" in page and "Bea tale" not in page
    assert 'name="mine" value="1" checked' in page
    for n in range(21):  # one more than a page
        f.story(bea, title=f"Harbour {n}")
    page = client.get("/?q=harbour&sort=title").get_data(as_text=True)
    assert 'href="/?page=2&amp;q=harbour&amp;sort=title"' in page
    second = client.get("/?page=2&q=harbour&sort=title").get_data(as_text=True)
    assert "Harbour 9" in second and "Ada tale" not in second
