"""Remote model settings, request bodies and the estimate tokenizer (no server needed)."""

from __future__ import annotations

import json

import pytest

from app.generation.remote import _retry_after, _sse_pieces, backoff_seconds, completion_payload
from app.generation.remote_config import parse_remote_models
from app.generation.remote_tokens import EstimateTokenizer
from app.generation.sampling import params_for
from app.generation.window import trim_to_window
from app.settings import SettingsError, load_settings


def test_entries_parse_from_inline_json_and_from_a_file(tmp_path):
    """Does RELAY_REMOTE_MODELS take a JSON object or a file, with defaults filled in?"""
    entry = {"base_url": "http://gpu1:8000/v1/", "model": "m", "api_key_env": "K", "stop": ["\n"]}
    inline = parse_remote_models(json.dumps({"big": entry}))
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"big": entry}))
    assert parse_remote_models(str(path)) == inline
    spec = inline["big"]
    assert spec.base_url == "http://gpu1:8000" and spec.stop == ("\n",)
    assert spec.source == "remote:big" and spec.display_name == "m" and spec.max_concurrent == 4


@pytest.mark.parametrize(
    "value",
    ['{"x": {"model": "m"}}', '{"x": {"base_url": "http://a", "colour": 1}}',
     '{"x": {"base_url": "http://a", "max_concurrent": 0}}', "[1]"],
)  # fmt: skip
def test_a_malformed_entry_stops_the_app_naming_the_variable(monkeypatch, value):
    """Is a bad entry a SettingsError that names RELAY_REMOTE_MODELS?"""
    monkeypatch.setenv("RELAY_REMOTE_MODELS", value)
    with pytest.raises(SettingsError, match="RELAY_REMOTE_MODELS"):
        load_settings()


def test_the_api_key_is_read_from_its_variable_at_call_time(monkeypatch):
    """Is the key taken from the named variable when a request is made, never stored?"""
    spec = parse_remote_models({"x": {"base_url": "http://a", "api_key_env": "MY_KEY"}})["x"]
    monkeypatch.delenv("MY_KEY", raising=False)
    assert spec.headers() == {}
    monkeypatch.setenv("MY_KEY", "s3cret")
    assert spec.headers() == {"Authorization": "Bearer s3cret"} and "s3cret" not in repr(spec)


def test_presets_map_to_the_servers_parameters():
    """Does a preset become temperature, top_p, max_tokens, stop and the extensions?"""
    spec = parse_remote_models({"x": {"base_url": "http://a", "stop": ["\n\n"], "min_p": 0.05}})
    body = completion_payload(spec["x"], "Once", params_for("wild", 50))
    assert body["stream"] is True and body["max_tokens"] == 50 and body["stop"] == ["\n\n"]
    assert body["temperature"] == 1.05 and body["top_p"] == 0.97 and body["top_k"] == -1
    assert body["repeat_penalty"] == body["repetition_penalty"] == 1.1 and body["min_p"] == 0.05


def test_back_off_doubles_and_honours_retry_after():
    """Is the wait the server's Retry-After (capped), else doubling from the base?"""
    assert [backoff_seconds(n, None, 0.5) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_seconds(1, 7.0, 0.5) == 7.0 and backoff_seconds(1, 3600.0, 0.5) == 30.0
    assert _retry_after({"retry-after": "3"}) == 3.0
    assert _retry_after({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None


def test_server_sent_events_yield_text_and_the_finish_reason():
    """Are data lines read in order up to [DONE], comments skipped?"""
    lines = [
        ": keep-alive",
        'data: {"choices": [{"text": "Once", "finish_reason": null}]}',
        "",
        'data: {"choices": [{"text": " upon", "finish_reason": "length"}]}',
        "data: [DONE]",
        'data: {"choices": [{"text": "never"}]}',
    ]
    assert list(_sse_pieces(lines)) == [("Once", None), (" upon", "length")]


def test_the_estimate_keeps_the_opening_pinned_within_the_window():
    """With no tokenizer, does the window still pin the opening and keep the latest turns?"""
    tokenizer = EstimateTokenizer(3.0)
    turns = [f"Turn number {i} of the story." for i in range(40)]
    window = trim_to_window(tokenizer, "The opening.", turns, 120, 40)
    assert window.text.startswith("The opening.\n\n") and len(window.ids) <= 80
    assert window.text.endswith("Turn number 39 of the story.\n\n") and window.dropped_turn_chars


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(429, {"Retry-After": "3"}, 3.0), (503, {}, None), (502, {"Retry-After": "x"}, None)],
)
def test_busy_or_failing_servers_are_tried_again_others_are_refused(status, headers, retry_after):
    """Are 429 and 5xx worth another try (after Retry-After), and 401 / 404 not?"""
    import httpx

    from app.generation.remote import RemoteRefused, RemoteUnavailable, _raise_for_status

    with pytest.raises(RemoteUnavailable) as caught:
        _raise_for_status(httpx.Response(status, headers=headers))
    assert caught.value.retry_after == retry_after
    for refused in (400, 401, 404):
        with pytest.raises(RemoteRefused):
            _raise_for_status(httpx.Response(refused))
