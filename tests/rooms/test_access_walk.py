"""The access walk: every route and API operation that names a story, for a private and
an unlisted story, as each role, against the table in tests/rooms/access_table.py (which
the README shows). Both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import session_user_id
from tests.rooms.access_table import ROLES, TABLE, markdown

# Routes a story's access does not decide: moderators' own pages (they read every story),
# and the holder's side of a link, whose token is the permission (tests/rooms/test_rooms.py).
NOT_WALKED = ("/admin", "/api/v1/admin", "/s/<token>", "/invite/<token>", "/api/v1/invitations")
STORY_PARTS = ("<int:story_id>", "<int:turn_id>", "<int:job_id>", "<int:position>")


@pytest.fixture
def app(quiet_app: Any) -> Any:
    return quiet_app  # no runner: the walk writes the model's answers itself


class Room:
    """One story set up for one row and role, written straight into the tables (one
    transaction; the relay's own paths to this state are tested elsewhere): an owner, two
    participants who joined through an invitation, paragraph 1 by the first of them and
    the model's answer to it at 2, its job done."""

    def __init__(self, app: Any, users: dict[str, int], visibility: str) -> None:
        from app.extensions import db
        from app.stories.access import new_share_token
        from app.stories.models import (
            Candidate,
            GenerationJob,
            Invitation,
            Participant,
            Story,
            Turn,
        )
        from app.stories.tool_models import LoreEntry

        self.app = app
        with app.app_context():
            story = Story(
                title="A Test Story",
                language="en",
                model_key="en",
                opening="It was dark.",
                owner_id=users["owner"],
                visibility=visibility,
                share_token=new_share_token(),
                last_position=2,
            )
            db.session.add(story)
            db.session.flush()
            invite = Invitation(
                story_id=story.id, token=new_share_token(), created_by_id=users["owner"], uses=2
            )
            db.session.add(invite)
            db.session.flush()
            db.session.add(Participant(story_id=story.id, user_id=users["owner"]))
            for name in ("participant", "other"):
                seat = Participant(story_id=story.id, user_id=users[name], invitation_id=invite.id)
                db.session.add(seat)
            human = Turn(
                story_id=story.id,
                position=1,
                kind="human",
                text="The lamp went out.",
                author_id=users["participant"],
            )
            db.session.add(human)
            db.session.flush()
            answer = Turn(
                story_id=story.id,
                position=2,
                kind="ai",
                text="The sea answered.",
                reply_to_id=human.id,
                model_key="en",
            )
            db.session.add(answer)
            db.session.flush()
            job = GenerationJob(
                story_id=story.id,
                reply_to_id=human.id,
                requested_by_id=users["participant"],
                status="done",
                finish_reason="answered",
                turn_id=answer.id,
                attempts=1,
                context=json.dumps({"prompt": "It was dark.\n\nThe lamp went out.\n\n"}),
            )
            db.session.add(job)
            db.session.flush()
            db.session.add(  # the answer, kept as its alternate (app/stories/jobs.py)
                Candidate(job_id=job.id, story_id=story.id, index=0, text=answer.text,
                          turn_id=answer.id)
            )  # fmt: skip
            entry = LoreEntry(story_id=story.id, keys="lamp", text="A brass lamp.")
            db.session.add(entry)
            db.session.commit()
            self.sid, self.tid, self.job, self.invite = story.id, answer.id, job.id, invite.id
            self.lore = entry.id
            self.key = story.share_token
        self.other = "other"

    def last_position(self) -> int:
        from app.extensions import db
        from app.stories.models import Story

        with self.app.app_context():
            return db.session.get(Story, self.sid).last_position


def settle(story_id: int) -> None:
    """Write the model's pending answer, as the runner would."""
    from app.extensions import db
    from app.stories.jobs import claim_job, complete_job
    from app.stories.models import PENDING_STATES, GenerationJob

    for job_id in db.session.scalars(
        db.select(GenerationJob.id).where(
            GenerationJob.story_id == story_id, GenerationJob.status.in_(PENDING_STATES)
        )
    ).all():
        if claim_job(job_id, "walk") is not None:
            complete_job(job_id, "The sea answered.")


def payload(method: str, path: str, room: Room, visibility: str) -> dict[str, Any]:
    """The request's body for a row: what a client of that operation sends."""
    api = path.startswith("/api/")
    position = room.last_position()
    bodies = {
        "/reports": {"reason": "spam"},
        "/report": {"reason": "spam"},
        "/turns": {"text": "Another paragraph.", "expected_position": position},
        "/fork": {"position": 2},
        "/choose": {"index": 0},
        "/switch": {"index": 0},
        "/invitations": {} if api else {"expires_in": "0"},
        "/settings": _settings_form(visibility),
        "/settings/status": {"status": "locked"},
        "/delete": {"confirm": "y"},
        "/memory": {"memory": "Remember the lamp."},
        "/lore": {"keys": ["lamp"] if api else "lamp", "text": "A brass lamp."},
        "/{lore}": {"text": "A brass lamp, dented."},
        "/edit": {"text": "An edited paragraph.", "expected_position": position},
        "/chapter": {"title": "Chapter One"},
        "/chapters": {"number": "1", "title": "Chapter One"},
    }
    if method == "PATCH" and "/turns/" in path:
        return {"json": {"text": "An edited paragraph.", "expected_position": position}}
    if method == "PATCH" and "/lore/" in path:
        return {"json": {"text": "A brass lamp, dented."}}
    if method == "PATCH":
        return {"json": {"title": "Renamed"}}
    if method in ("GET", "DELETE"):
        return {}
    for suffix, data in bodies.items():
        if path.endswith(suffix):
            return {"json": data} if api else {"data": data}
    return {"json": {}} if api else {"data": {}}


def _settings_form(visibility: str) -> dict[str, str]:
    return {
        "title": "Renamed",
        "opening": "It was dark.",
        "policy": "open",
        "turn_minutes": "",
        "skip_limit": "3",
        "skip_action": "move",
        "visibility": visibility,
        "write_access": "anyone",
        "preset": "balanced",
        "model": "en",
        "tags": "",
        "filter_strictness": "site",
    }


def outcome(response: Any, row_path: str, room: Room) -> str:
    status = response.status_code
    if row_path in ("/api/v1/stories", "/"):
        if status != 200:
            return str(status)
        if row_path == "/":
            return (
                "listed" if f'href="/stories/{room.sid}"' in response.get_data(True) else "absent"
            )
        ids = [s["id"] for s in response.get_json()["stories"]]
        return "listed" if room.sid in ids else "absent"
    if status in (301, 302, 303):
        return "login" if "/login" in response.headers.get("Location", "") else "ok"
    if 200 <= status < 300:
        return "ok"
    return str(status)


def call(client: Any, method: str, path: str, role: str, room: Room, headers, kwargs) -> str:
    url = path.format(
        sid=room.sid,
        pos=room.last_position(),
        para=1,
        tid=room.tid,
        job=room.job,
        other=room.other,
        invite=room.invite,
        lore=room.lore,
    )
    if url.endswith("/events"):
        response = client.open(url, method=method, headers=headers, buffered=False)
        response.close()
        return outcome(response, path, room)
    response = client.open(url, method=method, headers=headers, **kwargs)
    got = outcome(response, path, room)
    if got == "ok" and response.status_code in (302, 303):
        with client.session_transaction() as session:  # the page's message: refused?
            if any(category == "error" for category, _ in session.get("_flashes", [])):
                return "refused"
    return got


class Credentials:
    """Each user's API token and browser session, made once."""

    def __init__(self, app: Any, users: dict[str, int]) -> None:
        from tests.conftest import Factory

        self.app, self.users = app, users
        self.tokens = {name: Factory(app).token(uid) for name, uid in users.items()}
        self.sessions = {name: session_user_id(app, uid) for name, uid in users.items()}

    def client(self, role: str, room: Room, api: bool) -> tuple[Any, dict[str, str]]:
        """A test client as `role`, and the headers it sends."""
        client = self.app.test_client()
        headers: dict[str, str] = {}
        user = {"linked": "outsider"}.get(role, role)
        if role == "anon":
            return client, headers
        if api:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
            if role == "linked":
                headers["X-Story-Key"] = room.key
            return client, headers
        with client.session_transaction() as session:
            session["_user_id"] = self.sessions[user]
        if role == "linked":
            client.get(f"/s/{room.key}")
        return client, headers


@pytest.mark.parametrize("visibility", ["private", "unlisted"])
def test_access_walk(app, factory, visibility) -> None:
    """Does every operation answer each role as the table says, for a private and an
    unlisted story?"""
    users = {
        name: factory.user(name, role="moderator" if name == "moderator" else "writer")
        for name in ("owner", "participant", "other", "outsider", "moderator")
    }
    column = 0 if visibility == "private" else 1
    wrong = []
    credentials = Credentials(app, users)
    for index, role in enumerate(ROLES):
        room = None
        for name, method, path, *expected in TABLE:
            if room is None or method != "GET":  # a change gets a story of its own
                room = Room(app, users, visibility)
            api = path.startswith("/api/")
            client, headers = credentials.client(role, room, api)
            if not api and method == "POST" and ("/turns" in path or "/regenerate" in path):
                headers = {**headers, "Accept": "application/json"}
            got = call(
                client, method, path, role, room, headers, payload(method, path, room, visibility)
            )
            want = expected[column][index]
            if got != want:
                wrong.append(f"{name} ({method} {path}) as {role}: {got}, table says {want}")
    assert not wrong, "\n".join(wrong)


def test_every_story_route_is_in_the_table(app) -> None:
    """Is every route that names a story, a turn or a job walked (or knowingly not)?"""
    walked = {(method, _pattern(path)) for _, method, path, *_ in TABLE}
    missing = []
    for rule in app.url_map.iter_rules():
        if not any(part in rule.rule for part in STORY_PARTS) or rule.rule.startswith(NOT_WALKED):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (method, _pattern(rule.rule)) not in walked:
                missing.append(f"{method} {rule.rule}")
    assert not missing, "walk these too (tests/rooms/access_table.py):\n" + "\n".join(missing)


def _pattern(path: str) -> str:
    """A path with its variables blanked: /stories/{sid} and /stories/<int:story_id> alike."""
    import re

    path = path.replace("export.<fmt>", "export.txt")
    return re.sub(r"\{[a-z]+\}|<[^>]+>", "*", path)


def test_readme_shows_the_table() -> None:
    """Does the README show the same table the walk checks?"""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown() in readme
