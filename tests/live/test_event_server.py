"""The event-driven server: live streams held on its loop, not on a request thread each."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.asgi_server import AsgiServer
from tests.conftest import Factory, build_app, close_app
from tests.http_client import http_json
from tests.scaled.stack import SseClient, build_word_model, wait_for

TOKENS = 16


@contextlib.contextmanager
def serving(application: Any) -> Iterator[tuple[int, Any]]:
    """The app behind StreamingServer on a uvicorn of its own (a thread of this process)."""
    server = AsgiServer(application).start()
    try:
        yield server.port, server.hub
    finally:
        server.stop()


def run_async(scenario: Any) -> Any:
    """asyncio.run(scenario()) on a thread of its own: Playwright's sync API, used by
    the browser tests of the same session, leaves an event loop on the main thread."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(scenario())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture(scope="module")
def word_model(tiny_model_dir, tmp_path_factory):
    """The tiny GPT-2 rewired to write whole words only: every answer succeeds."""
    return build_word_model(tiny_model_dir, tmp_path_factory.mktemp("live-word-gpt2"))


@pytest.fixture
def few_threads(db_url, word_model):
    """The app with 3 request threads, a generous stream cap and a model writing."""
    application = build_app(
        db_url, word_model, WEB_THREADS=3, SSE_MAX_PER_ADDRESS=100, SSE_COALESCE_MS=50
    )
    yield application
    close_app(application)


def _read_until_done(sse: SseClient, into: list[dict[str, Any]]) -> None:
    for event in sse.events():
        into.append(event)
        if event["type"] in ("generation_done", "generation_failed"):
            return


def test_many_readers_get_every_event_once_while_threads_stay_free(few_threads):
    """With 3 request threads, do 12 readers each get the human and the AI turn exactly
    once, in order, with the whole streamed text, while /api/v1/health still answers?"""
    factory = Factory(few_threads)
    writer = factory.user()
    story_id = factory.story(writer, max_new_tokens=TOKENS)
    with serving(few_threads) as (port, hub):
        readers = [SseClient(port, story_id) for _ in range(12)]
        seen: list[list[dict[str, Any]]] = [[] for _ in readers]
        threads = [
            threading.Thread(target=_read_until_done, args=(sse, events), daemon=True)
            for sse, events in zip(readers, seen, strict=True)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: hub.reader_count == 12, 10, "12 readers on the hub")
        assert http_json(port, "GET", "/api/v1/health", timeout=10)[0] == 200
        body = {"text": "Mara opened the door.", "expected_position": 0}
        status, answer, _ = http_json(
            port, "POST", f"/api/v1/stories/{story_id}/turns", body, token=factory.token(writer)
        )
        assert status == 202, answer
        for thread in threads:
            thread.join(120)
        for sse in readers:
            sse.close()
    for events in seen:
        kinds = [event["type"] for event in events]
        assert kinds[0] == "stream_open" and kinds[-1] == "generation_done", kinds
        created = [e["turn"]["position"] for e in events if e["type"] == "turn_created"]
        assert created == [1, 2]  # the writer's paragraph, then the model's, once each
        deltas = [e for e in events if e["type"] == "generation_delta"]
        assert "".join(e["delta"] for e in deltas) == deltas[-1]["text_so_far"]
    finals = {[e for e in events if e["type"] == "generation_delta"][-1]["text_so_far"]
              for events in seen}  # fmt: skip
    assert len(finals) == 1  # every reader ends with the same, whole text


@pytest.fixture
def capped(db_url, tiny_model_dir):
    application = build_app(
        db_url, tiny_model_dir, RELAY_START_RUNNER=False, SSE_MAX_STREAMS=3,
        SSE_MAX_PER_ADDRESS=2, SSE_MAX_PER_USER=2, TRUSTED_PROXIES=1, SSE_KEEPALIVE_SECONDS=1,
    )  # fmt: skip
    yield application
    close_app(application)


def _raw_stream(port: int, path: str, headers: str = "") -> tuple[socket.socket, int]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    return sock, int(head.split(b" ", 2)[1])


def test_caps_answer_at_once_and_a_closed_client_frees_its_reader(capped):
    """Past the per-address cap a 429, past the process's cap a 503, both with Retry-After;
    does a client that goes away release its reader and its slot?"""
    story_id = Factory(capped).story(Factory(capped).user("capper"))
    path = f"/api/v1/stories/{story_id}/events"
    limits = capped.extensions["relay.streams"]
    with serving(capped) as (port, hub):
        a1, s1 = _raw_stream(port, path, "X-Forwarded-For: 10.0.0.1\r\n")
        a2, s2 = _raw_stream(port, path, "X-Forwarded-For: 10.0.0.1\r\n")
        a3, s3 = _raw_stream(port, path, "X-Forwarded-For: 10.0.0.1\r\n")
        b1, t1 = _raw_stream(port, path, "X-Forwarded-For: 10.0.0.2\r\n")
        c1, u1 = _raw_stream(port, path, "X-Forwarded-For: 10.0.0.3\r\n")
        assert (s1, s2, s3, t1, u1) == (200, 200, 429, 200, 503)
        wait_for(lambda: hub.reader_count == 3 and limits.open == 3, 10, "three readers")
        a1.close()
        wait_for(lambda: hub.reader_count == 2 and limits.open == 2, 10, "a released reader")
        c2, u2 = _raw_stream(port, path, "X-Forwarded-For: 10.0.0.3\r\n")
        assert u2 == 200
        c2.settimeout(5)
        received = b""
        while b": keep-alive" not in received:  # an idle stream still hears from us
            received += c2.recv(4096)
        for sock in (a2, a3, b1, c1, c2):
            sock.close()
        wait_for(lambda: hub.reader_count == 0 and limits.open == 0, 10, "no reader left")


def test_last_event_id_replays_what_the_reader_missed(capped):
    """Does a reconnecting client (Last-Event-ID: 0) get the turns it missed, then the rest?"""
    from app.accounts.models import User
    from app.extensions import db
    from app.stories.relay import append_human_turn

    factory = Factory(capped)
    writer = factory.user("replayer")
    story_id = factory.story(writer)
    with capped.app_context():
        append_human_turn(story_id, db.session.get(User, writer), "First.", 0)
    with serving(capped) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/api/v1/stories/{story_id}/events", headers={"Last-Event-ID": "0"})
        response = conn.getresponse()
        assert response.status == 200
        lines = [response.readline() for _ in range(8)]
        conn.close()
    text = b"".join(lines).decode()
    assert '"type":"turn_created"' in text and '"text":"First."' in text
    assert text.index("turn_created") < text.index("stream_open")
    assert "id: 1\n" in text


def test_deltas_are_coalesced_and_flushed_before_the_next_event():
    """Do ten quick deltas reach a reader as one frame, flushed before the turn that ends
    them, with the whole text so far?"""
    from app.live.events import InMemoryEventBus
    from app.live.hub import LocalSource, StreamHub

    async def scenario() -> bytes:
        hub = StreamHub(LocalSource(InMemoryEventBus()), 15, 60, coalesce_ms=200, backlog=50)
        hub.bind(asyncio.get_running_loop())
        reader = hub.open(7, release=lambda: None)
        hub.hand_off(reader, b"", 0)
        so_far = ""
        for n in range(10):
            so_far += f"w{n} "
            hub.dispatch(7, {"type": "generation_delta", "job_id": 1, "attempt": 1,
                             "delta": f"w{n} ", "text_so_far": so_far})  # fmt: skip
        hub.dispatch(7, {"type": "turn_created", "turn": {"position": 1, "text": so_far}})
        frames = list(reader.pending)
        assert len(frames) == 2
        return b"".join(frames)

    text = run_async(scenario).decode()
    assert text.index("generation_delta") < text.index("turn_created")
    assert '"delta":"w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 "' in text
    assert text.count("id: 0\n") == 1 and text.count("id: 1\n") == 1


def test_redis_source_subscribes_while_a_story_has_readers_and_only_then():
    """Scaled mode: does a web process subscribe to a story's channel with its first
    reader, pass a published event to it, and unsubscribe when the last one goes?"""
    import json
    import os

    import redis

    from app.live.hub import StreamHub
    from app.live.redis_events import CHANNEL, RedisSource

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    story_id = 10**8 + int.from_bytes(os.urandom(3), "big")
    channel = CHANNEL.format(story_id)
    client = redis.Redis.from_url(url)

    def subscribers() -> int:
        return dict(client.pubsub_numsub(channel))[channel.encode()]

    async def until(predicate: Any) -> None:
        for _ in range(100):
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("timed out")

    async def scenario() -> bytes:
        hub = StreamHub(RedisSource(url), 15, 60, coalesce_ms=0, backlog=50)
        hub.bind(asyncio.get_running_loop())
        first = await asyncio.to_thread(hub.open, story_id, lambda: None)
        second = await asyncio.to_thread(hub.open, story_id, lambda: None)
        assert subscribers() == 1  # one connection per process, however many readers
        client.publish(channel, json.dumps({"type": "turn_hidden", "story_id": story_id}))
        await until(lambda: first.pending and second.pending)
        hub.discard(first)
        await asyncio.sleep(0.2)
        assert subscribers() == 1
        hub.discard(second)
        await until(lambda: subscribers() == 0)
        await hub.source.stop()
        return first.pending[0]

    assert b'"type":"turn_hidden"' in run_async(scenario)


def test_a_fan_out_to_many_readers_wakes_them_a_chunk_per_loop_pass_in_order():
    """With 250 waiting readers, are their writers woken 100 per pass of the loop (so the
    loop polls its sockets between), each reader's frames still in publishing order?"""
    from app.live.events import InMemoryEventBus
    from app.live.hub import WAKE_CHUNK, LocalSource, StreamHub

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        hub = StreamHub(LocalSource(InMemoryEventBus()), 15, 60, coalesce_ms=0, backlog=50)
        hub.bind(loop)
        readers = [hub.open(9, release=lambda: None) for _ in range(250)]
        for reader in readers:
            hub.hand_off(reader, b"", 0)
            reader.waiting = loop.create_future()
        hub.dispatch(9, {"type": "turn_hidden", "n": 1})
        hub.dispatch(9, {"type": "turn_restored", "n": 2})
        woken = [sum(r.waiting.done() for r in readers)]
        for _ in range(3):
            await asyncio.sleep(0)
            woken.append(sum(r.waiting.done() for r in readers))
        for reader in readers:
            first, second = reader.pending
            assert b"turn_hidden" in first and b"turn_restored" in second
        return woken

    woken = run_async(scenario)
    assert woken[0] == WAKE_CHUNK and woken[-1] == 250
