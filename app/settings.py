"""The operator's settings: every environment variable the app reads, typed, checked once.

`load_settings()` reads the environment (pydantic-settings) and refuses a malformed
value with a `SettingsError` that names the variable, so a typo stops the app at
start-up instead of failing every request later (`RATELIMIT_DEFAULT=100/min` used
to start fine and then answer each request with a 500). A well-formed model entry
whose folder or hub id cannot be loaded is not an error here: `/api/v1/ready` says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
MODEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class SettingsError(RuntimeError):
    """A malformed environment variable; the message names it and says what is expected."""


def _rate_limit(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a rate limit; write e.g. '300 per minute' or '20/minute'"
        ) from exc
    return value


def _url(schemes: tuple[str, ...]):
    def check(value: str) -> str:
        if not value:  # unset: the app derives it (RATELIMIT_STORAGE_URI)
            return value
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if not any(scheme == s or scheme.startswith(s + "+") for s in schemes):
            raise ValueError(f"{value!r} is not a URL with scheme {' or '.join(schemes)}")
        return value

    return check


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


RateLimit = Annotated[str, AfterValidator(_rate_limit)]
Choice = BeforeValidator(_lower)
Count = Annotated[int, Field(ge=0)]  # an empty variable is the default (env_ignore_empty)
Positive = Annotated[int, Field(ge=1)]


def parse_models(value: str) -> dict[str, str]:
    """RELAY_MODELS="key=path_or_hub_id,key2=..." on top of the shipped defaults."""
    registry = {
        "en": str(ROOT / "models" / "default-en"),
        "ko": str(ROOT / "models" / "default-ko"),
    }
    for item in (value or "").split(","):
        if not item.strip():
            continue
        key, sep, target = item.partition("=")
        key, target = key.strip(), target.strip()
        if not sep or not MODEL_KEY.match(key) or not target:
            raise ValueError(
                f"entry {item.strip()!r} is not key=folder_or_hub_id (a key of letters, "
                "digits, '_', '-' or '.', then '=', then a folder or a hub id)"
            )
        registry[key] = target
    return registry


def _models(value: str) -> str:
    parse_models(value)
    return value


def _remote_models(value: str) -> str:
    from app.generation.remote_config import parse_remote_models

    try:
        parse_remote_models(value)
    except OSError as exc:
        raise ValueError(f"cannot read the models file: {exc}") from exc
    return value


class Settings(BaseSettings):
    """Every variable, with its type and default (README's configuration table)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_ignore_empty=True)

    SECRET_KEY: str = "dev-only-change-me"
    DATABASE_URL: Annotated[str, AfterValidator(_url(("sqlite", "postgresql", "postgres")))] = (
        f"sqlite:///{ROOT / 'instance' / 'relay.sqlite3'}"
    )
    DB_POOL_SIZE: Positive = 10
    DB_MAX_OVERFLOW: Count = 30
    MAX_CONTENT_LENGTH: Positive = 64 * 1024
    TITLE_MAX_CHARS: Positive = 120
    PARAGRAPH_MAX_CHARS: Positive = 2000
    OPENING_MAX_CHARS: Positive = 4000
    TURNS_PER_STORY_MAX: Positive = 1000
    AI_TOKENS_MIN: Positive = 16
    AI_TOKENS_MAX: Positive = 200
    QUEUE_MAX: Positive = 64
    RATELIMIT_DEFAULT: RateLimit = "300 per minute"
    RATELIMIT_TURNS: RateLimit = "20 per minute"
    RATELIMIT_LOGIN: RateLimit = "10 per minute"
    RATELIMIT_STORAGE_URI: Annotated[str, AfterValidator(_url(("memory", "redis", "rediss")))] = ""
    RATELIMIT_ENABLED: bool = True
    FILTER_MODEL_ACTION: Annotated[Literal["regenerate", "hold"], Choice] = "regenerate"
    FILTER_MODEL_RETRIES: Count = 2
    LOOP_GUARD_OVERLAP: Annotated[float, Field(ge=0, le=1)] = 0.5
    RELAY_MODELS: Annotated[str, AfterValidator(_models)] = ""
    # Remote OpenAI-compatible models: a JSON object or a .json file's path (README).
    RELAY_REMOTE_MODELS: Annotated[str, AfterValidator(_remote_models)] = ""
    RELAY_RUN_MODE: Annotated[Literal["embedded", "scaled"], Choice] = "embedded"
    RELAY_DEVICE: str = ""
    RELAY_TORCH_THREADS: Count = 0
    RELAY_START_RUNNER: bool = True
    RELAY_RUNNER_THREADS: Count = 0
    RELAY_ENGINE: Annotated[Literal["batched", "hf"], Choice] = "batched"
    RELAY_PRECISION: Annotated[Literal["int8", "fp32", "bf16", "fp16"], Choice] = "int8"
    RELAY_MAX_BATCH: Positive = 16
    RELAY_KV_CACHE: Annotated[Literal["auto", "fp32", "bf16"], Choice] = "auto"
    RELAY_RUNNER_POLL_SECONDS: Annotated[float, Field(gt=0)] = 5.0
    REDIS_URL: Annotated[str, AfterValidator(_url(("redis", "rediss", "unix")))] = (
        "redis://127.0.0.1:6379/0"
    )
    SSE_KEEPALIVE_SECONDS: Positive = 15
    # Scaled mode (app/runners/celery_queue.py, app/runners/worker.py).
    RELAY_VISIBILITY_TIMEOUT: Positive = 3600
    RELAY_JOB_STALE_SECONDS: Positive = 900
    RELAY_SWEEP_SECONDS: Annotated[float, Field(gt=0)] = 30.0
    # How often the relay's deadlines (turn time limits, candidate choices) are settled.
    RELAY_DEADLINE_SECONDS: Annotated[float, Field(gt=0)] = 15.0
    RELAY_WORKER_START_TIMEOUT: Annotated[float, Field(gt=0)] = 600.0
    RELAY_WORKERS_PER_HOST: Positive = 1
    # A stream ends after this long; the browser's EventSource reconnects at once with
    # Last-Event-ID and misses nothing (a proxy's idle timeout never cuts it mid-word).
    SSE_MAX_SECONDS: Annotated[float, Field(gt=0)] = 600.0
    # Stream caps (app/live/limits.py): per process (0 = auto: under the event-driven
    # server, the open-file limit less SSE_RESERVED_FILES, at most 10,000; under a plain
    # threaded server such as `make dev`, WEB_THREADS - SSE_RESERVED_THREADS), per client
    # address and per user; TRUSTED_PROXIES in front of the app set the address.
    WEB_THREADS: Positive = 32
    SSE_MAX_STREAMS: Count = 0
    SSE_RESERVED_THREADS: Positive = 8
    SSE_RESERVED_FILES: Positive = 256
    # The event-driven streams (app/live/hub.py): the model's text reaches each reader at
    # most once per SSE_COALESCE_MS (0: every delta), and a reader that falls
    # SSE_READER_BACKLOG frames behind is closed (it reconnects and replays).
    SSE_COALESCE_MS: Count = 50
    SSE_READER_BACKLOG: Positive = 512
    SSE_MAX_PER_ADDRESS: Positive = 8
    SSE_MAX_PER_USER: Positive = 8
    TRUSTED_PROXIES: Count = 0


def load_settings() -> Settings:
    """The settings from the environment, or SettingsError naming each bad variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            given = error.get("input")
            shown = f"={given!r}" if isinstance(given, str | int | float) else ""
            problems.append(f"{name}{shown}: {error['msg']}")
        raise SettingsError("bad configuration: " + "; ".join(problems)) from None
    if settings.AI_TOKENS_MIN > settings.AI_TOKENS_MAX:
        raise SettingsError(
            f"bad configuration: AI_TOKENS_MIN={settings.AI_TOKENS_MIN} is above "
            f"AI_TOKENS_MAX={settings.AI_TOKENS_MAX}"
        )
    return settings
