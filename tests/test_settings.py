"""Configuration: one typed settings object; a malformed variable stops the app at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import Config
from app.settings import ROOT, SettingsError, load_settings


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("RATELIMIT_DEFAULT", "100/min", "is not a rate limit"),
        ("RATELIMIT_TURNS", "lots", "is not a rate limit"),
        ("QUEUE_MAX", "abc", "valid integer"),
        ("QUEUE_MAX", "0", "greater than or equal to 1"),
        ("RELAY_ENGINE", "turbo", "'batched' or 'hf'"),
        ("FILTER_MODEL_ACTION", "delete", "'regenerate' or 'hold'"),
        ("RELAY_MODELS", "en", "is not key=folder_or_hub_id"),
        ("RELAY_MODELS", "my model=gpt2", "is not key=folder_or_hub_id"),
        ("REDIS_URL", "localhost:6379", "is not a URL"),
        ("DATABASE_URL", "mysql://x", "is not a URL"),
        ("RELAY_RUNNER_POLL_SECONDS", "-1", "greater than 0"),
        ("RATELIMIT_ENABLED", "perhaps", "valid boolean"),
    ],
)
def test_malformed_value_is_refused_naming_the_variable(monkeypatch, name, value, said):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as exc:
        Config()
    assert f"{name}=" in str(exc.value) and said in str(exc.value)


def test_well_formed_values_are_typed(monkeypatch):
    monkeypatch.setenv("RATELIMIT_DEFAULT", "100/minute;1000 per hour")
    monkeypatch.setenv("QUEUE_MAX", "7")
    monkeypatch.setenv("RELAY_ENGINE", "HF")
    monkeypatch.setenv("RATELIMIT_ENABLED", "off")
    monkeypatch.setenv("DB_POOL_SIZE", "")  # empty: the default
    monkeypatch.setenv("RELAY_MODELS", "gpt2=gpt2, mine=/nowhere/at/all")
    config = Config()
    assert config.QUEUE_MAX == 7 and config.RELAY_ENGINE == "hf"
    assert config.RATELIMIT_ENABLED is False
    assert config.SQLALCHEMY_ENGINE_OPTIONS["pool_size"] == 10
    # a well-formed model that cannot be loaded is not a start-up failure (ready says so)
    assert config.RELAY_MODELS["mine"] == "/nowhere/at/all" and "en" in config.RELAY_MODELS


def test_token_bounds_must_be_in_order(monkeypatch):
    monkeypatch.setenv("AI_TOKENS_MIN", "300")
    with pytest.raises(SettingsError, match="AI_TOKENS_MIN=300 is above AI_TOKENS_MAX=200"):
        load_settings()


def test_the_app_refuses_to_start_with_a_clear_message():
    """The README's RATELIMIT style typo: the server process exits at once and says why."""
    env = {**os.environ, "RATELIMIT_DEFAULT": "100/min", "RELAY_START_RUNNER": "0"}
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Relay Novel cannot start" in done.stderr
    assert "RATELIMIT_DEFAULT='100/min'" in done.stderr
    assert "Traceback" not in done.stderr
