"""The Celery worker entry point: `celery -A app.runners.worker worker`.

Builds the Flask app from the environment (RELAY_RUN_MODE=scaled, DATABASE_URL,
REDIS_URL, RELAY_MODELS, RELAY_DEVICE, RELAY_TORCH_THREADS) and exposes its
Celery app as `celery`. Each pool process loads every configured model once,
when it starts, on its device: RELAY_DEVICE (e.g. cuda:1), else the GPU that
CUDA_VISIBLE_DEVICES leaves visible, else the CPU. Run one worker with
`--concurrency 1` per GPU. When the worker is ready it resends what a crash
left behind (app.runners.celery_queue.sweep_jobs).

With `--pool threads --concurrency N` one process runs N jobs at once on one
batching engine per model: concurrent stories are answered in one batch (the
models load once, in that process, at start). A SIGKILL then takes all N jobs
down together; the sweep gives them to the next worker (their worker pid is dead).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_ready
from dotenv import load_dotenv
from flask.logging import default_handler

from app import create_app

log = logging.getLogger(__name__)

load_dotenv()
os.environ.setdefault("RELAY_RUN_MODE", "scaled")
flask_app = create_app()
if flask_app.config.get("RELAY_RUN_MODE") != "scaled":
    raise RuntimeError("the Celery worker needs RELAY_RUN_MODE=scaled")
celery = flask_app.extensions["relay.celery"]
# Celery's own handlers print every record; Flask's stderr handler on the "app" logger would
# print each app record a second time (as a WARNING of the redirected stderr).
flask_app.logger.removeHandler(default_handler)
_LOAD_IN_MAIN: list[bool] = []  # set by worker_init: does this process run the tasks itself?


@worker_init.connect
def preload_libraries(sender: Any = None, **_: Any) -> None:
    """Import what loading the models needs once, in the main process, before the pool
    forks: a pool process that replaces a dead one is then ready in a second or two instead
    of a quarter of a minute. The model is built on the meta device (no weights, no CUDA)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from app.generation.registry import is_local_source

    for key, source in sorted(flask_app.extensions["relay.registry"].sources.items()):
        local = is_local_source(source)
        source = str(Path(source).expanduser()) if local else source
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=local)
            AutoTokenizer.from_pretrained(source, local_files_only=local)
            with torch.device("meta"):
                AutoModelForCausalLM.from_config(config)
        except Exception as exc:  # the pool process reports it properly when it loads
            log.warning("could not preload the code for model %s: %s", key, exc)
    # threads/solo pool: the tasks run in this very process; it loads the models once
    # logging is set up (worker_ready), instead of each forked child at its start.
    _LOAD_IN_MAIN.append(not pool_forks(sender))


def pool_forks(worker: Any) -> bool:
    """Whether the worker's pool runs tasks in forked children (prefork, the default)."""
    pool = getattr(worker, "pool_cls", None) or "prefork"
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
    return "prefork" in name or "processes" in name


@worker_process_init.connect
def load_models(**_: Any) -> None:
    """In each pool process: fresh DB connections, torch threads, every model loaded once."""
    from app.extensions import db

    with flask_app.app_context():
        db.engine.dispose(close=False)  # connections inherited from the parent are not ours
    registry = flask_app.extensions["relay.registry"]
    _set_torch_threads(registry)
    for key in sorted(registry.sources):
        try:
            loaded = registry.get(key)
            log.info("worker %s: model %s ready on %s", os.getpid(), key, loaded.device)
        except Exception:  # a broken model fails its jobs with a message, not the worker
            log.exception("worker %s: model %s could not be loaded", os.getpid(), key)


@worker_ready.connect
def resend_leftovers(**_: Any) -> None:
    """At start: resend queued jobs without a message and jobs of dead workers."""
    from app.extensions import db
    from app.runners.celery_queue import sweep_jobs

    if _LOAD_IN_MAIN and _LOAD_IN_MAIN[-1]:
        load_models()
    try:
        sweep_jobs(flask_app)
    except Exception:
        log.exception("start-up sweep failed; celery beat will retry")
    finally:
        with flask_app.app_context():
            db.engine.dispose()  # pool processes forked later must not share these


def _set_torch_threads(registry: Any) -> None:
    import torch

    threads = int(registry.torch_threads or 0)
    if threads <= 0 and not registry.configured_device.startswith("cuda"):
        # Several CPU workers on one machine: share the cores instead of oversubscribing.
        concurrency = int(flask_app.config["RELAY_WORKERS_PER_HOST"])
        threads = max(1, (os.cpu_count() or 1) // concurrency)
    if threads > 0:
        torch.set_num_threads(threads)
