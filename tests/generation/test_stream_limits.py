"""Caps on live streams: an answer instead of a hang, slots released when clients go."""

from __future__ import annotations

import pytest

from tests.conftest import build_app, close_app


@pytest.fixture
def capped(db_url, tiny_model_dir):
    application = build_app(
        db_url,
        tiny_model_dir,
        RELAY_START_RUNNER=False,
        SSE_MAX_STREAMS=3,
        SSE_MAX_PER_ADDRESS=2,
        SSE_MAX_PER_USER=2,
        TRUSTED_PROXIES=1,
    )
    yield application
    close_app(application)


def _open(client, story_id: int, address: str, headers: dict | None = None):
    response = client.get(
        f"/api/v1/stories/{story_id}/events",
        headers={"X-Forwarded-For": address, **(headers or {})},
        buffered=False,
    )
    if response.status_code == 200:
        next(response.response)  # the stream is running: its slot is taken
    return response


def test_streams_beyond_a_cap_get_an_answer_and_closed_ones_free_their_slot(capped):
    """Past the per-address cap a 429, past the process's cap a 503 (both with Retry-After);
    does closing a stream let the next one in?"""
    from tests.conftest import Factory

    factory = Factory(capped)
    story_id = factory.story(factory.user())
    client = capped.test_client()
    first = [_open(client, story_id, "10.0.0.1") for _ in range(2)]
    assert [r.status_code for r in first] == [200, 200]
    third = _open(client, story_id, "10.0.0.1")
    assert third.status_code == 429 and third.headers["Retry-After"]
    assert third.get_json()["error"]["code"] == "too_many_streams"
    other = _open(client, story_id, "10.0.0.2")
    assert other.status_code == 200  # another address, within the process's 3
    full = _open(client, story_id, "10.0.0.3")
    assert full.status_code == 503 and full.headers["Retry-After"]
    assert full.get_json()["error"]["code"] == "streams_full"
    first[0].close()  # the client goes away
    assert capped.extensions["relay.streams"].open == 2
    again = _open(client, story_id, "10.0.0.3")
    assert again.status_code == 200
    for response in (first[1], other, again):
        response.close()
    assert capped.extensions["relay.streams"].open == 0


def test_one_user_is_capped_across_addresses(capped):
    """Does a signed-in user's third stream get 429 even from a new address?"""
    from tests.conftest import Factory

    factory = Factory(capped)
    owner = factory.user()
    story_id = factory.story(owner)
    headers = factory.headers(owner)
    client = capped.test_client()
    opened = [_open(client, story_id, f"10.0.1.{n}", headers) for n in (1, 2)]
    assert [r.status_code for r in opened] == [200, 200]
    assert _open(client, story_id, "10.0.1.3", headers).status_code == 429
    for response in opened:
        response.close()
    assert _open(client, story_id, "10.0.1.3", headers).status_code == 200


def test_a_cap_answers_in_the_readers_language_with_the_same_code(capped):
    """Does a Korean client past the per-address cap read why in Korean, code unchanged?"""
    from tests.conftest import Factory

    factory = Factory(capped)
    story_id = factory.story(factory.user())
    client = capped.test_client()
    korean = {"Accept-Language": "ko-KR"}
    open_ = [_open(client, story_id, "10.0.0.9", korean) for _ in range(2)]
    third = _open(client, story_id, "10.0.0.9", korean)
    assert third.status_code == 429
    error = third.get_json()["error"]
    assert error["code"] == "too_many_streams" and "실시간 연결 2개" in error["message"]
    for response in open_:
        response.close()
