"""One scheduler for every relay deadline: a round-robin writer's time per turn, a
pending candidate choice's time to pick (and any later deadline of a story).

Each deadline kind is one *sweep*: a function `sweep(now) -> int` that settles
every deadline passed by `now` (skipping a writer, taking the first candidate)
and says how many it settled. The sweeps are named in SWEEPS, the one place
that lists them. `run_deadlines()` runs them all, each in its own try, and is
called:

- embedded mode: by the runner's deadline thread, every RELAY_DEADLINE_SECONDS,
  in every web process (a sweep must therefore be safe to run twice at once:
  it takes the story lock and re-checks the deadline under it);
- scaled mode: by the Celery beat task `relay.deadlines`, on the same period;
- by hand or from a test with a controllable clock: `flask relay deadlines`, or
  `run_deadlines(now=...)` in an app context.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime

from app.accounts.models import utcnow
from app.extensions import db

log = logging.getLogger(__name__)

# "module:function" of every deadline sweep; add a kind of deadline by adding its line.
SWEEPS: tuple[str, ...] = (
    "app.stories.skips:skip_overdue",
    "app.stories.candidates:settle_overdue_choices",
)


def _resolve(path: str) -> Callable[[datetime], int]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def run_deadlines(now: datetime | None = None) -> int:
    """Settle every deadline passed by `now` (default: the current time); how many."""
    moment = now or utcnow()
    settled = 0
    for path in SWEEPS:
        try:
            settled += int(_resolve(path)(moment) or 0)
        except Exception:  # one broken sweep must not stop the others
            db.session.rollback()
            log.exception("deadline sweep %s failed", path)
    if settled:
        log.info("deadlines: settled %s", settled)
    return settled
