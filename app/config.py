"""Configuration classes: everything an operator can set comes from the environment."""

from __future__ import annotations

from app.generation.remote_config import parse_remote_models
from app.settings import ROOT, Settings, SettingsError, load_settings, parse_models

__all__ = ["ROOT", "Config", "SettingsError", "TestConfig"]


class Config:
    """Production/default settings, read from the environment (app.settings) at instantiation;
    a malformed value raises SettingsError naming the variable."""

    def __init__(self) -> None:
        env = load_settings()
        self.SECRET_KEY = env.SECRET_KEY
        self.SQLALCHEMY_DATABASE_URI = env.DATABASE_URL
        # pool_pre_ping: connections survive a database restart. The pool is sized for a
        # threaded gunicorn worker (WEB_THREADS) so requests don't queue for a connection.
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": True,
            "pool_size": env.DB_POOL_SIZE,
            "max_overflow": env.DB_MAX_OVERFLOW,
        }
        if self.SQLALCHEMY_DATABASE_URI in ("sqlite://", "sqlite:///:memory:"):
            self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}  # a single-connection pool
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.WTF_CSRF_TIME_LIMIT = None
        self.MAX_CONTENT_LENGTH = env.MAX_CONTENT_LENGTH
        self._relay(env)
        self._generation(env)

    def _relay(self, env: Settings) -> None:
        """Relay limits, rate limits and the content filter."""
        for name in (
            "TITLE_MAX_CHARS",
            "PARAGRAPH_MAX_CHARS",
            "OPENING_MAX_CHARS",
            "TURNS_PER_STORY_MAX",
            "AI_TOKENS_MIN",
            "AI_TOKENS_MAX",
            "QUEUE_MAX",
            "RATELIMIT_DEFAULT",
            "RATELIMIT_TURNS",
            "RATELIMIT_LOGIN",
            "RATELIMIT_ENABLED",
            # Content filter on model output: "regenerate" (up to FILTER_MODEL_RETRIES times,
            # then hold) or "hold". Human text gets each rule's action (app/moderation/filter.py).
            "FILTER_MODEL_ACTION",
            "FILTER_MODEL_RETRIES",
            # Loop guard: a model turn whose word 4-grams are more than this share repeats
            # of the story's earlier text is regenerated once, then flagged (0: off).
            "LOOP_GUARD_OVERLAP",
        ):
            setattr(self, name, getattr(env, name))
        # Scaled mode: limits shared by every web worker, in Redis (in memory while it is down).
        self.RATELIMIT_STORAGE_URI = env.RATELIMIT_STORAGE_URI or (
            env.REDIS_URL if env.RELAY_RUN_MODE == "scaled" else "memory://"
        )
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_HEADERS_ENABLED = True

    def _generation(self, env: Settings) -> None:
        """Models, run mode, runner and engine (README: configuration)."""
        self.RELAY_MODELS = parse_models(env.RELAY_MODELS)
        self.RELAY_REMOTE_MODELS = parse_remote_models(env.RELAY_REMOTE_MODELS)
        self.RELAY_MODELS |= {key: m.source for key, m in self.RELAY_REMOTE_MODELS.items()}
        for name in (
            "RELAY_RUN_MODE",
            "RELAY_DEVICE",  # "" = cuda if present else cpu
            "RELAY_TORCH_THREADS",  # 0 = torch default
            "RELAY_START_RUNNER",
            # Embedded runner: generation threads in the web process (0 = 4 with the batching
            # engine, whose batch they share; 1 with RELAY_ENGINE=hf), and how often an
            # idle one polls the database for queued jobs whose hand-off was lost.
            "RELAY_RUNNER_THREADS",
            "RELAY_RUNNER_POLL_SECONDS",
            # Generation engine: batched = continuous batching, hf = one HF generate per job;
            # precision int8 | fp32 | bf16 (GPU: fp16); KV cache auto | fp32 | bf16 (auto: the
            # weights', or for int8 on a native-bf16 CPU whichever decode attention timed faster).
            "RELAY_ENGINE",
            "RELAY_PRECISION",
            "RELAY_MAX_BATCH",
            "RELAY_KV_CACHE",
            "REDIS_URL",
            "SSE_KEEPALIVE_SECONDS",
            "SSE_MAX_SECONDS",
            "WEB_THREADS",
            "SSE_MAX_STREAMS",
            "SSE_RESERVED_THREADS",
            "SSE_RESERVED_FILES",
            "SSE_COALESCE_MS",
            "SSE_READER_BACKLOG",
            "SSE_MAX_PER_ADDRESS",
            "SSE_MAX_PER_USER",
            "TRUSTED_PROXIES",
            "RELAY_VISIBILITY_TIMEOUT",
            "RELAY_JOB_STALE_SECONDS",
            "RELAY_SWEEP_SECONDS",
            "RELAY_DEADLINE_SECONDS",
            "RELAY_WORKER_START_TIMEOUT",
            "RELAY_WORKERS_PER_HOST",
        ):
            setattr(self, name, getattr(env, name))


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
