"""Configuration classes: everything an operator can set comes from the environment."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _model_registry() -> dict[str, str]:
    """Parse RELAY_MODELS="key=path_or_hub_id,key2=..." on top of the shipped defaults."""
    registry = {
        "en": str(ROOT / "models" / "default-en"),
        "ko": str(ROOT / "models" / "default-ko"),
    }
    for item in os.environ.get("RELAY_MODELS", "").split(","):
        if "=" in item:
            key, target = item.split("=", 1)
            registry[key.strip()] = target.strip()
    return registry


class Config:
    """Production/default settings, read from the environment at instantiation."""

    def __init__(self) -> None:
        self.SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-change-me")
        self.SQLALCHEMY_DATABASE_URI = os.environ.get(
            "DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'relay.sqlite3'}"
        )
        # pool_pre_ping: connections survive a database restart. The pool is sized for a
        # threaded gunicorn worker (WEB_THREADS) so requests don't queue for a connection.
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": True,
            "pool_size": _env_int("DB_POOL_SIZE", 10),
            "max_overflow": _env_int("DB_MAX_OVERFLOW", 30),
        }
        if self.SQLALCHEMY_DATABASE_URI in ("sqlite://", "sqlite:///:memory:"):
            self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}  # a single-connection pool
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.WTF_CSRF_TIME_LIMIT = None
        self.MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 64 * 1024)

        # Relay limits.
        self.TITLE_MAX_CHARS = _env_int("TITLE_MAX_CHARS", 120)
        self.PARAGRAPH_MAX_CHARS = _env_int("PARAGRAPH_MAX_CHARS", 2000)
        self.OPENING_MAX_CHARS = _env_int("OPENING_MAX_CHARS", 4000)
        self.TURNS_PER_STORY_MAX = _env_int("TURNS_PER_STORY_MAX", 1000)
        self.AI_TOKENS_MIN = _env_int("AI_TOKENS_MIN", 16)
        self.AI_TOKENS_MAX = _env_int("AI_TOKENS_MAX", 200)
        self.QUEUE_MAX = _env_int("QUEUE_MAX", 64)
        self.RATELIMIT_DEFAULT = os.environ.get("RATELIMIT_DEFAULT", "300 per minute")
        self.RATELIMIT_TURNS = os.environ.get("RATELIMIT_TURNS", "20 per minute")
        self.RATELIMIT_LOGIN = os.environ.get("RATELIMIT_LOGIN", "10 per minute")
        # Scaled mode: limits shared by every web worker, in Redis (in memory while it is down).
        self.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or (
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
            if os.environ.get("RELAY_RUN_MODE") == "scaled"
            else "memory://"
        )
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_HEADERS_ENABLED = True

        # Content filter: human text "reject" (422) or "hold" (story waits for review);
        # model output "regenerate" (up to FILTER_MODEL_RETRIES times, then hold) or "hold".
        self.FILTER_HUMAN_ACTION = os.environ.get("FILTER_HUMAN_ACTION", "reject")
        self.FILTER_MODEL_ACTION = os.environ.get("FILTER_MODEL_ACTION", "regenerate")
        self.FILTER_MODEL_RETRIES = _env_int("FILTER_MODEL_RETRIES", 2)

        # Generation.
        self.RELAY_MODELS = _model_registry()
        self.RELAY_RUN_MODE = os.environ.get("RELAY_RUN_MODE", "embedded")
        self.RELAY_DEVICE = os.environ.get("RELAY_DEVICE", "")  # "" = cuda if present else cpu
        self.RELAY_TORCH_THREADS = _env_int("RELAY_TORCH_THREADS", 0)  # 0 = torch default
        self.RELAY_START_RUNNER = _env_bool("RELAY_START_RUNNER", True)
        # Embedded runner: generation threads in the web process (0 = 4 with the batching
        # engine, whose batch they share; 1 with RELAY_ENGINE=hf), and how often an
        # idle one polls the database for queued jobs whose hand-off was lost.
        self.RELAY_RUNNER_THREADS = _env_int("RELAY_RUNNER_THREADS", 0)
        # Generation engine (issue 6): batched = continuous batching, hf = one HF generate per job.
        self.RELAY_ENGINE = os.environ.get("RELAY_ENGINE", "batched")
        self.RELAY_PRECISION = os.environ.get("RELAY_PRECISION", "int8")  # fp32, bf16; GPU: fp16
        self.RELAY_MAX_BATCH = _env_int("RELAY_MAX_BATCH", 16)
        # KV cache dtype: auto (the weights'; for int8 on a CPU with native bf16, bf16 if one
        # decode attention timed at start ran faster on it), fp32, bf16
        self.RELAY_KV_CACHE = os.environ.get("RELAY_KV_CACHE", "auto")
        self.RELAY_RUNNER_POLL_SECONDS = float(os.environ.get("RELAY_RUNNER_POLL_SECONDS", "5"))
        self.REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.SSE_KEEPALIVE_SECONDS = _env_int("SSE_KEEPALIVE_SECONDS", 15)


class TestConfig(Config):
    """Settings for the test suite: a throwaway database, no CSRF by default."""

    TESTING = True

    def __init__(self, database_url: str | None = None, **overrides: object) -> None:
        super().__init__()
        self.TESTING = True
        self.SECRET_KEY = "test-secret"
        self.SQLALCHEMY_DATABASE_URI = database_url or "sqlite://"
        if self.SQLALCHEMY_DATABASE_URI == "sqlite://":
            self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.WTF_CSRF_ENABLED = False
        self.RATELIMIT_ENABLED = False
        for key, value in overrides.items():
            setattr(self, key, value)
