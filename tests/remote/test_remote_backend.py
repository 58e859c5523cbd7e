"""The relay against a real llama.cpp server over HTTP: streaming, the filter, failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from transformers import AutoTokenizer

from app.extensions import db
from app.generation.remote import client_for
from app.generation.remote_config import parse_remote_models
from app.stories.models import GenerationJob
from tests.asgi_server import AsgiServer
from tests.conftest import Factory, build_app, close_app
from tests.generation.test_jobs import ai_turns, append, drain, wait_for, wait_job
from tests.http_client import http_json
from tests.remote.conftest import API_KEY, LlamaServer
from tests.remote.gateway import Gateway
from tests.scaled.stack import SseClient

# The first test may build llama-server (5-20 minutes on 2 cores) when .ci/run has not.
pytestmark = [pytest.mark.remote_backend, pytest.mark.timeout(1800)]

SENTENCES = [
    "Once upon a time there was a lighthouse keeper.",
    "The waves answered in salt and foam, and nobody believed him!",
    "옛날 옛적에 바다에 편지를 쓰는 등대지기가 살았습니다.",
    "파도는 소금과 거품으로 대답했습니다 — 123 ...",
]


@pytest.fixture
def remote_app(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Any]:
    """build(entries) -> an app (SQLite, runner on) whose remote models are `entries`."""
    built = []

    def build(entries: dict[str, Any], **overrides: Any) -> Any:
        remotes = parse_remote_models(entries)
        models = {"en": str(tiny_model_dir), "ko": str(tiny_model_dir)}
        application = build_app(
            f"sqlite:///{tmp_path / f'relay{len(built)}.sqlite3'}", tiny_model_dir,
            RELAY_MODELS=models | {key: m.source for key, m in remotes.items()},
            RELAY_REMOTE_MODELS=remotes, **overrides,
        )  # fmt: skip
        built.append(application)
        return application

    yield build
    for application in built:
        close_app(application)


def test_server_token_ids_match_the_hf_tokenizer(llama_server, served_model_dir):
    """Does llama-server's /tokenize give the Hugging Face tokenizer's ids (English, Korean)?"""
    tokenizer = AutoTokenizer.from_pretrained(served_model_dir)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    for sentence in SENTENCES:
        answer = httpx.post(
            f"{llama_server.url}/tokenize", json={"content": sentence}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["tokens"] == tokenizer.encode(sentence, add_special_tokens=False)


def test_a_streamed_remote_turn_reaches_a_second_reader(remote_app, llama_server):
    """Does a writer's paragraph get one AI turn from the server, streamed over SSE to a
    reader who is not the writer, while /models and /ready show it without its key?"""
    application = remote_app(llama_server.spec("remote-en"), SSE_COALESCE_MS=0)
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-en", max_new_tokens=40)
    server = AsgiServer(application).start()
    try:
        status, listing, _ = http_json(server.port, "GET", "/api/v1/models")
        (remote,) = [m for m in listing["models"] if m["key"] == "remote-en"]
        assert status == 200 and remote["source"] == "remote" and remote["loadable"]
        assert remote["name"] == "Served GPT-2" and remote["language"] == "en"
        ready = http_json(server.port, "GET", "/api/v1/ready")
        assert ready[0] == 200 and API_KEY not in str(listing) + str(ready)
        reader = SseClient(server.port, story_id)
        seen: list[dict[str, Any]] = []
        thread = threading.Thread(target=_read_until_done, args=(reader, seen), daemon=True)
        thread.start()
        wait_for(lambda: server.hub.reader_count == 1, 10)
        body = {"text": "The keeper wrote to the sea.", "expected_position": 0}
        status, answer, _ = http_json(
            server.port, "POST", f"/api/v1/stories/{story_id}/turns", body,
            token=factory.token(writer),
        )  # fmt: skip
        assert status == 202, answer
        thread.join(60)
        reader.close()
    finally:
        server.stop()
    assert seen[-1]["type"] == "generation_done"
    last = max(e.get("attempt", 0) for e in seen)  # an unusable try is tried again
    deltas = [e for e in seen if e["type"] == "generation_delta" and e["attempt"] == last]
    assert len(deltas) > 3
    assert "".join(e["delta"] for e in deltas) == deltas[-1]["text_so_far"]
    (ai,) = ai_turns(application, story_id)
    assert ai.text.strip() and ai.model_key == "remote-en"
    assert ai.text.split()[0] in deltas[-1]["text_so_far"]  # cleaned, not rewritten


def _read_until_done(sse: SseClient, into: list[dict[str, Any]]) -> None:
    for event in sse.events():
        into.append(event)
        if event["type"] in ("generation_done", "generation_failed"):
            return


def test_the_content_filter_holds_remote_output_unseen(remote_app, llama_server):
    """Is remote output the filter catches regenerated, then held, with no delta shown?"""
    from app.moderation.models import FilterRule
    from app.runners.execute import run_job

    application = remote_app(llama_server.spec("remote-filtered"), RELAY_START_RUNNER=False)
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-filtered", max_new_tokens=20)
    subscription = application.extensions["relay.events"].subscribe(story_id)
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    with application.app_context():  # after the writer's paragraph, which it would refuse
        db.session.add(FilterRule(language="*", kind="pattern", value=r"\S"))  # catches anything
        db.session.commit()
        assert run_job(job_id) == "held"  # the runner's one entry point, on this thread
    types = [e["type"] for e in drain(subscription)]
    assert "generation_delta" not in types and "turn_held" in types
    (ai,) = ai_turns(application, story_id)
    assert ai.held and ai.held_reason.startswith("filter")


def test_a_server_killed_mid_stream_is_retried_and_the_turn_appears_once(
    remote_app, own_llama_server: LlamaServer
):
    """Killed while streaming, restarted: do readers get a reset, then one whole turn?"""
    spec = own_llama_server.spec("remote-killed", retry_backoff=1.5)
    application = remote_app(spec)
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-killed", max_new_tokens=200)
    subscription = application.extensions["relay.events"].subscribe(story_id)
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    events = [wait_for(lambda: _first_delta(subscription), 60)]
    own_llama_server.kill()
    own_llama_server.start()
    assert wait_job(application, job_id) == "done"
    events += drain(subscription)
    types = [e["type"] for e in events]
    reset = types.index("generation_reset")
    assert events[reset]["job_id"] == job_id and events[reset]["attempt"] == 1
    later = [e for e in events[reset:] if e["type"] == "generation_delta"]
    assert later and len({e["attempt"] for e in later}) == 1 and later[0]["attempt"] > 1
    assert types.count("turn_created") == 1 and len(ai_turns(application, story_id)) == 1


def test_a_server_that_stalls_mid_stream_times_out_and_is_retried(
    remote_app, own_llama_server: LlamaServer
):
    """Frozen mid-stream (SIGSTOP) past read_timeout, then thawed: do readers get a reset,
    and is the turn written once, by the next try?"""
    spec = own_llama_server.spec("remote-stalled", read_timeout=1.0, retry_backoff=0.5)
    application = remote_app(spec)
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-stalled", max_new_tokens=200)
    subscription = application.extensions["relay.events"].subscribe(story_id)
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    wait_for(lambda: _first_delta(subscription), 60)
    with own_llama_server.frozen():
        reset = wait_for(lambda: _next_of(subscription, "generation_reset"), 30)
    assert reset["job_id"] == job_id and reset["attempt"] == 1
    assert wait_job(application, job_id) == "done"
    assert len(ai_turns(application, story_id)) == 1


def _next_of(subscription: Any, kind: str) -> dict[str, Any] | None:
    event = subscription.get(timeout=0.1)
    return event if event is not None and event["type"] == kind else None


def _first_delta(subscription: Any) -> dict[str, Any] | None:
    event = subscription.get(timeout=0.1)
    return event if event is not None and event["type"] == "generation_delta" else None


def test_a_server_down_at_start_is_not_ready_and_fails_the_job(remote_app, llama_binary):
    """With no server listening: does /ready say so, and does the job fail with a message
    the writer sees after its tries, leaving no turn?"""
    down = LlamaServer(llama_binary, Path("unused.gguf"))  # never started
    application = remote_app(down.spec("remote-down", retry_backoff=0.05))
    client = application.test_client()
    answer = client.get("/api/v1/ready")
    assert answer.status_code == 503
    problem = answer.get_json()["error"]["checks"]["model:remote-down"]
    assert "unreachable" in problem and API_KEY not in answer.get_data(as_text=True)
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-down")
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    assert wait_job(application, job_id) == "failed"
    with application.app_context():
        error = db.session.get(GenerationJob, job_id).error
    assert "the model server is not reachable" in error and not ai_turns(application, story_id)


def test_concurrent_jobs_respect_the_per_process_bound(remote_app, llama_server):
    """Four stories at once on a model bounded to 1 request (and one bounded to 4): is the
    bound kept, and are all answered?"""
    entries = llama_server.spec("remote-one", max_concurrent=1)
    entries |= llama_server.spec("remote-four", max_concurrent=4)
    application = remote_app(entries, RELAY_RUNNER_THREADS=4)
    factory = Factory(application)
    writer = factory.user()
    for key in ("remote-one", "remote-four"):
        stories = [factory.story(writer, model=key, max_new_tokens=60) for _ in range(4)]
        jobs = [append(application, s, writer, "The keeper wrote.")[1] for s in stories]
        assert [wait_job(application, job) for job in jobs] == ["done"] * 4
    remotes = application.config["RELAY_REMOTE_MODELS"]
    assert client_for(remotes["remote-one"]).peak_in_flight == 1
    assert client_for(remotes["remote-four"]).peak_in_flight > 1


def test_regenerating_a_remote_turn_asks_the_server_again(remote_app, llama_server):
    """Is a regenerated remote turn hidden and answered anew, one visible AI turn left?"""
    from app.accounts.models import User
    from app.stories.relay import regenerate

    application = remote_app(llama_server.spec("remote-regen"))
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-regen", max_new_tokens=30)
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    assert wait_job(application, job_id) == "done"
    (first,) = ai_turns(application, story_id)
    with application.app_context():
        again = regenerate(story_id, first.position, db.session.get(User, writer)).id
    assert wait_job(application, again) == "done"
    turns = ai_turns(application, story_id)
    assert len(turns) == 2 and turns[0].hidden and not turns[1].hidden
    assert turns[1].text.strip()


def test_hiding_the_paragraph_cancels_its_in_flight_request(
    remote_app, own_llama_server: LlamaServer
):
    """A moderator hides the paragraph while its answer streams: is the request closed
    (readers get no more of it, no slot stays taken), the job withdrawn, no turn written?

    The server is frozen (SIGSTOP) while the hide lands, so the answer cannot finish
    before the runner notices; thawed, it would stream ~200 more tokens if the relay
    kept reading."""
    from app.accounts.models import User
    from app.stories.relay import set_hidden

    spec = own_llama_server.spec("remote-hidden", read_timeout=30.0)
    application = remote_app(spec)
    factory = Factory(application)
    writer, moderator = factory.user(), factory.user(role="moderator")
    story_id = factory.story(writer, model="remote-hidden", max_new_tokens=200)
    subscription = application.extensions["relay.events"].subscribe(story_id)
    turn_id, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    wait_for(lambda: _first_delta(subscription), 60)
    with own_llama_server.frozen():
        with application.app_context():
            set_hidden(turn_id, db.session.get(User, moderator), True, "off topic")
        drain(subscription)  # what streamed before the hide, and generation_failed
        threading.Event().wait(1.0)  # past the runner's next look at the job
    client = client_for(application.config["RELAY_REMOTE_MODELS"]["remote-hidden"])
    wait_for(lambda: client.in_flight == 0, 30)
    later = [e for e in drain(subscription) if e["type"] == "generation_delta"]
    assert len(later) <= 2  # at most what was already in flight when the stream resumed
    with application.app_context():
        job = db.session.get(GenerationJob, job_id)
        assert (job.status, job.finish_reason) == ("failed", "withdrawn")
    assert not ai_turns(application, story_id)


@pytest.fixture
def gateway(tmp_path: Path, llama_server: LlamaServer) -> Iterator[Any]:
    """gateway(rate, status, retry_after) -> a started nginx Gateway before the server."""
    started = []

    def start(rate: str, status: int, retry_after: int) -> Gateway:
        root = tmp_path / f"nginx{len(started)}"
        started.append(Gateway(root, llama_server.url, rate, status, retry_after).start())
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def _spend_the_allowance(proxy: Gateway) -> None:
    """One completion through the gateway, so that the next one within its rate is refused."""
    answer = httpx.post(
        f"{proxy.url}/v1/completions", json={"prompt": "The sea", "max_tokens": 1},
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_a_429_with_retry_after_is_waited_out_and_the_turn_appears_once(
    remote_app, llama_server, gateway
):
    """Behind nginx allowing one completion per 3 s: is the job's first request refused
    with 429 + Retry-After: 3, the next one sent after that wait (not after the 20 s
    back-off the model is configured with), and the turn written once?"""
    proxy = gateway("20r/m", 429, 3)
    application = remote_app(llama_server.spec("remote-429", base_url=proxy.url, retry_backoff=20))
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-429", max_new_tokens=40)
    _spend_the_allowance(proxy)
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    assert wait_job(application, job_id) == "done"
    log = proxy.completions()
    assert [status for _, status in log] == [200, 429, 200]
    waited = log[2][0] - log[1][0]
    assert 2.9 <= waited < 20, waited
    assert len(ai_turns(application, story_id)) == 1


def test_a_server_answering_503_on_every_try_fails_the_job_with_its_reason(
    remote_app, llama_server, gateway
):
    """Behind nginx refusing every completion after the first with 503 + Retry-After: 1:
    does the job try MAX_JOB_ATTEMPTS times, then fail with a message naming the answer,
    leaving no turn?"""
    from app.stories.jobs import MAX_JOB_ATTEMPTS

    proxy = gateway("1r/m", 503, 1)
    application = remote_app(llama_server.spec("remote-503", base_url=proxy.url))
    factory = Factory(application)
    writer = factory.user()
    story_id = factory.story(writer, model="remote-503")
    _spend_the_allowance(proxy)
    _, job_id = append(application, story_id, writer, "The keeper wrote to the sea.")
    assert wait_job(application, job_id) == "failed"
    with application.app_context():
        error = db.session.get(GenerationJob, job_id).error
    assert "HTTP 503" in error and not ai_turns(application, story_id)
    assert [status for _, status in proxy.completions()] == [200] + [503] * MAX_JOB_ATTEMPTS
