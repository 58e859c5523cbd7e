"""A story's room: invitations (expiry, uses, withdrawal, races), who writes, leaving and
removing, the unlisted link, and who hears of a story they may not read. Both databases."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from app.accounts.models import utcnow


@pytest.fixture
def app(quiet_app: Any) -> Any:
    return quiet_app


def api_story(client, headers, **fields) -> dict:
    data = {"title": "Room", "language": "en", "opening": "It was a dark night."} | fields
    response = client.post("/api/v1/stories", json=data, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def invite(client, headers, sid: int, **fields) -> dict:
    response = client.post(f"/api/v1/stories/{sid}/invitations", json=fields, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_invitation_makes_a_participant_who_may_read_and_write(app, client, factory) -> None:
    """Does accepting an invitation to a private, invited-only story let its holder read
    and write, while others still get a 404 and the inviter hears of it?"""
    owner, guest, stranger = (factory.headers(factory.user(n)) for n in ("ann", "bob", "cyd"))
    story = api_story(client, owner, visibility="private", write_access="invited")
    sid = story["id"]
    assert client.get(f"/api/v1/stories/{sid}", headers=guest).status_code == 404
    link = invite(client, owner, sid, max_uses=1)
    assert link["url"].endswith(f"/invite/{link['token']}") and link["usable"]
    joined = client.post(f"/api/v1/invitations/{link['token']}/accept", headers=guest)
    assert joined.status_code == 201 and joined.get_json()["participants"] == ["ann", "bob"]
    assert client.get(f"/api/v1/stories/{sid}", headers=guest).status_code == 200
    wrote = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Bo opens the door.", "expected_position": 0},
        headers=guest,
    )
    assert wrote.status_code == 202, wrote.get_json()
    assert client.get(f"/api/v1/stories/{sid}", headers=stranger).status_code == 404
    again = client.post(f"/api/v1/invitations/{link['token']}/accept", headers=guest)
    assert again.status_code == 200  # already in: nothing used up
    used_up = client.post(f"/api/v1/invitations/{link['token']}/accept", headers=stranger)
    assert used_up.status_code == 409 and used_up.get_json()["error"]["code"] == (
        "invitation_unusable"
    )
    kinds = [
        n["kind"]
        for n in client.get("/api/v1/notifications", headers=owner).get_json()["notifications"]
    ]
    assert "invite_used" in kinds


def test_invited_only_refuses_joining_and_writing_without_invitation(app, client, factory):
    """Can a reader of a public, invited-only story neither join nor write?"""
    owner, reader = factory.headers(factory.user()), factory.headers(factory.user())
    sid = api_story(client, owner, write_access="invited")["id"]
    join = client.post(f"/api/v1/stories/{sid}/participants", headers=reader)
    assert join.status_code == 409 and join.get_json()["error"]["code"] == "invitation_required"
    wrote = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Hi.", "expected_position": 0},
        headers=reader,
    )
    assert wrote.status_code == 409
    assert wrote.get_json()["error"]["code"] == "invitation_required"
    assert client.get(f"/api/v1/stories/{sid}", headers=reader).status_code == 200


def test_participants_only_needs_a_join_first(app, client, factory) -> None:
    """Does a participants-only story take a paragraph only after its writer joined?"""
    owner, writer = factory.headers(factory.user()), factory.headers(factory.user())
    sid = api_story(client, owner, write_access="participants")["id"]
    turn = {"text": "A start.", "expected_position": 0}
    refused = client.post(f"/api/v1/stories/{sid}/turns", json=turn, headers=writer)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "not_a_participant"
    assert client.post(f"/api/v1/stories/{sid}/participants", headers=writer).status_code == 201
    assert client.post(f"/api/v1/stories/{sid}/turns", json=turn, headers=writer).status_code == 202


@pytest.mark.parametrize(
    "change, code",
    [
        ({"revoked_at": utcnow()}, "withdrawn"),
        ({"expires_at": utcnow() - timedelta(seconds=1)}, "expired"),
        ({"max_uses": 1, "uses": 1}, "used up"),
    ],
)
def test_unusable_invitations_say_why(app, client, factory, change, code) -> None:
    """Is a withdrawn, expired or used-up invitation refused with its reason, page and API?"""
    from app.extensions import db
    from app.stories.models import Invitation

    owner, guest = factory.headers(factory.user()), factory.headers(factory.user())
    sid = api_story(client, owner, visibility="private")["id"]
    link = invite(client, owner, sid)
    with app.app_context():
        row = db.session.get(Invitation, link["id"])
        for key, value in change.items():
            setattr(row, key, value)
        db.session.commit()
    refused = client.post(f"/api/v1/invitations/{link['token']}/accept", headers=guest)
    assert refused.status_code == 409 and code in refused.get_json()["error"]["message"]
    page = client.get(f"/invite/{link['token']}")
    assert page.status_code == 200 and code in page.get_data(as_text=True)
    assert client.get("/invite/not-a-token").status_code == 404


def test_invitation_bad_input_is_a_422(app, client, factory) -> None:
    """Are bad max_uses and expires_in refused with the field named, storing nothing?"""
    owner = factory.headers(factory.user())
    sid = api_story(client, owner)["id"]
    for body in ({"max_uses": -1}, {"expires_in": 5}, {"max_uses": "x"}, {"other": 1}):
        response = client.post(f"/api/v1/stories/{sid}/invitations", json=body, headers=owner)
        assert response.status_code == 422, (body, response.get_json())
    listed = client.get(f"/api/v1/stories/{sid}/invitations", headers=owner).get_json()
    assert listed["invitations"] == []


def test_revoked_invitation_stops_working(app, client, factory) -> None:
    """Does withdrawing an invitation stop it, while those who joined stay?"""
    owner, first, second = (factory.headers(factory.user()) for _ in range(3))
    sid = api_story(client, owner, visibility="private")["id"]
    link = invite(client, owner, sid)
    assert (
        client.post(f"/api/v1/invitations/{link['token']}/accept", headers=first).status_code == 201
    )
    gone = client.delete(f"/api/v1/stories/{sid}/invitations/{link['id']}", headers=owner)
    assert gone.status_code == 200 and gone.get_json()["revoked"] is True
    late = client.post(f"/api/v1/invitations/{link['token']}/accept", headers=second)
    assert late.status_code == 409
    assert client.get(f"/api/v1/stories/{sid}", headers=first).status_code == 200


def test_two_holders_race_for_a_single_use_link(app, factory) -> None:
    """Do two writers accepting a single-use invitation at the same moment let exactly one
    in, with the use counted once?"""
    from app.accounts.models import User
    from app.errors import Conflict
    from app.extensions import db
    from app.stories import rooms
    from app.stories.models import Invitation, Participant

    owner = factory.user()
    guests = [factory.user(), factory.user()]
    sid = factory.story(owner, visibility="private")
    with app.app_context():
        token = rooms.create_invitation(sid, db.session.get(User, owner), max_uses=1).token
    barrier, results, winners = threading.Barrier(2), [], []

    def accept(user_id: int) -> None:
        with app.app_context():
            user = db.session.get(User, user_id)
            barrier.wait()
            try:
                joined = rooms.accept_invitation(token, user)[1]
                results.append(joined)
                if joined:
                    winners.append(user_id)
            except Conflict as exc:
                results.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=accept, args=(guest,)) for guest in guests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, results)) == ["True", "invitation_unusable"]
    with app.app_context():
        assert db.session.scalars(db.select(Invitation.uses)).one() == 1
        members = db.session.scalars(
            db.select(Participant.user_id).where(Participant.story_id == sid)
        ).all()
        assert sorted(members) == sorted([owner, *winners])  # the owner and the one who won


def test_leave_and_remove(app, client, factory) -> None:
    """Can a participant leave, the owner remove another (not themselves), and a
    non-owner remove no one?"""
    owner, one, two = (factory.headers(factory.user(n)) for n in ("olga", "pat", "quinn"))
    sid = api_story(client, owner, visibility="private")["id"]
    token = invite(client, owner, sid)["token"]
    for guest in (one, two):
        client.post(f"/api/v1/invitations/{token}/accept", headers=guest)
    assert (
        client.delete(f"/api/v1/stories/{sid}/participants/quinn", headers=one).status_code == 403
    )
    stays = client.delete(f"/api/v1/stories/{sid}/participants/olga", headers=owner)
    assert stays.status_code == 409 and stays.get_json()["error"]["code"] == "owner_stays"
    assert client.delete(f"/api/v1/stories/{sid}/participants/pat", headers=one).status_code == 204
    assert client.get(f"/api/v1/stories/{sid}", headers=one).status_code == 404  # private now
    assert (
        client.delete(f"/api/v1/stories/{sid}/participants/quinn", headers=owner).status_code == 204
    )
    names = client.get(f"/api/v1/stories/{sid}/participants", headers=owner).get_json()
    assert names["participants"] == ["olga"]
    missing = client.delete(f"/api/v1/stories/{sid}/participants/nobody", headers=owner)
    assert missing.status_code == 404


def test_unlisted_link_reads_and_a_new_link_revokes_it(app, client, factory) -> None:
    """Does the unlisted link open the story in a browser (page, script, events) and over
    the API, while the bare id does not, and a new link stop the old one?"""
    owner = factory.headers(factory.user())
    story = api_story(client, owner, visibility="unlisted")
    sid, link = story["id"], story["share_url"]
    token = link.rsplit("/s/", 1)[1]
    assert len(token) >= 32 and token != str(sid)  # unguessable, not the id
    reader = app.test_client()
    assert reader.get(f"/stories/{sid}").status_code == 404
    opened = reader.get(link.replace("http://localhost", ""))
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/stories/{sid}")
    assert reader.get(f"/stories/{sid}").status_code == 200
    assert reader.get(f"/stories/{sid}/state.json").status_code == 200
    key = client.get(f"/api/v1/stories/{sid}/share-link", headers=owner).get_json()["key"]
    assert client.get(f"/api/v1/stories/{sid}?key={key}").status_code == 200
    assert client.get(f"/api/v1/stories/{sid}", headers={"X-Story-Key": key}).status_code == 200
    assert client.get(f"/api/v1/stories/{sid}?key=wrong").status_code == 404
    fresh = client.post(f"/api/v1/stories/{sid}/share-link", headers=owner).get_json()
    assert fresh["key"] != key
    assert reader.get(f"/stories/{sid}").status_code == 404  # the old link, remembered
    assert client.get(f"/api/v1/stories/{sid}?key={key}").status_code == 404
    assert client.get(f"/api/v1/stories/{sid}?key={fresh['key']}").status_code == 200
    public = client.get(f"/api/v1/stories/{sid}", headers=factory.headers(factory.user()))
    assert public.status_code == 404


def test_share_url_only_for_managers(app, client, factory) -> None:
    """Is the unlisted link in the story's JSON only for its owner (and moderators)?"""
    owner = factory.headers(factory.user())
    other = factory.headers(factory.user())
    moderator = factory.headers(factory.user(role="moderator"))
    sid = api_story(client, owner)["id"]
    assert client.get(f"/api/v1/stories/{sid}", headers=owner).get_json()["share_url"]
    assert client.get(f"/api/v1/stories/{sid}", headers=moderator).get_json()["share_url"]
    assert client.get(f"/api/v1/stories/{sid}", headers=other).get_json()["share_url"] is None
    assert client.get(f"/api/v1/stories/{sid}").get_json()["share_url"] is None


def test_no_notification_about_a_story_one_may_not_read(app, client, factory) -> None:
    """Does a writer removed from a private story stop hearing of it?"""
    owner, guest = factory.headers(factory.user("own")), factory.headers(factory.user("gus"))
    sid = api_story(client, owner, visibility="private", policy="round_robin")["id"]
    token = invite(client, owner, sid)["token"]
    client.post(f"/api/v1/invitations/{token}/accept", headers=guest)
    client.delete(f"/api/v1/stories/{sid}/participants/gus", headers=owner)
    client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Own writes on.", "expected_position": 0},
        headers=owner,
    )
    mine = client.get("/api/v1/notifications", headers=guest).get_json()["notifications"]
    assert [n for n in mine if n["story_id"] == sid] == []


def test_room_page_for_the_owner(app, client, factory) -> None:
    """Does the owner's room page list participants and invitations, make and withdraw
    one, and show the unlisted link?"""
    from tests.conftest import session_user_id

    owner = factory.user("rita")
    sid = factory.story(owner, visibility="unlisted")
    with client.session_transaction() as session:
        session["_user_id"] = session_user_id(app, owner)
    page = client.get(f"/stories/{sid}/room")
    assert page.status_code == 200 and "/s/" in page.get_data(as_text=True)
    made = client.post(f"/stories/{sid}/invitations", data={"expires_in": "86400"})
    assert made.status_code == 302
    page = client.get(f"/stories/{sid}/room").get_data(as_text=True)
    assert "/invite/" in page and "usable" in page
    bad = client.post(f"/stories/{sid}/invitations", data={"max_uses": "0", "expires_in": "0"})
    assert bad.status_code == 302  # back to the room with the reason
    assert "1 to 1000" in client.get(f"/stories/{sid}/room").get_data(as_text=True)


def test_new_story_form_sets_who_reads_and_writes(app, client, factory) -> None:
    """Does the new-story form start a private, invited-only story, shut to others, and
    refuse an unknown visibility with a message?"""
    from tests.conftest import session_user_id

    owner = factory.user("vera")
    with client.session_transaction() as session:
        session["_user_id"] = session_user_id(app, owner)
    form = {
        "title": "Behind Doors",
        "language": "en",
        "model": "",
        "opening": "The house kept its secrets.",
        "policy": "open",
        "preset": "balanced",
        "length_words": "45",
        "visibility": "private",
        "write_access": "invited",
    }
    made = client.post("/stories/new", data=form)
    assert made.status_code == 302
    story = client.get(made.headers["Location"].replace("http://localhost", ""))
    assert story.status_code == 200 and "Private: only participants read it." in story.get_data(
        as_text=True
    )
    assert app.test_client().get(made.headers["Location"]).status_code == 404
    bad = client.post("/stories/new", data={**form, "visibility": "secret"})
    assert bad.status_code == 422 and "Not a valid choice." in bad.get_data(as_text=True)
