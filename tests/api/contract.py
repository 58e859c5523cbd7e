"""Schemathesis over the running API: the app served on a loopback port, real HTTP.

The app runs with its generation runner on (a tiny model answers turns), so
jobs, events and exports have real data. Two runs, one after the other:
every operation but the admin ones as a writer (the token-revoking operation
with a throwaway token of its own), then the admin operations as an admin,
whose own account the API refuses to suspend or demote (409 self_action).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

BIN = Path(sys.executable).parent
ALL_BUT_ADMIN = "^/(admin/|auth/tokens/current)"


@dataclass
class Seeded:
    writer: str  # bearer tokens
    admin: str
    throwaway: str


def seed(app: Any) -> Seeded:
    """Users, tokens, a story with answered turns and a report, for the runs to find."""
    from app.accounts.models import User
    from app.accounts.service import issue_token, register_user
    from app.extensions import db
    from app.moderation import reports
    from app.stories import relay
    from app.stories.models import PENDING_STATES, GenerationJob

    with app.app_context():
        writer, other = (
            register_user("writer", "writer-pass-1"),
            register_user("other", "other-pass-1"),
        )
        admin = register_user("admin", "admin-pass-1")
        admin.role = "admin"
        db.session.commit()
        tokens = [issue_token(user) for user in (writer, admin, writer)]
        story = relay.create_story(
            writer, {"title": "Contract", "language": "en", "opening": "It began."}
        )
        for position, author in enumerate((writer, other)):
            turn, job = relay.append_human_turn(story.id, author, "A paragraph.", position * 2)
            for _ in range(600):  # the runner thread answers it with the tiny model
                db.session.rollback()
                if db.session.get(GenerationJob, job.id).status not in PENDING_STATES:
                    break
                time.sleep(0.1)
        reports.report_turn(turn.id, db.session.get(User, admin.id), "Checking reports.")
        db.session.remove()
    return Seeded(*tokens)


class Server:
    """The WSGI app on 127.0.0.1 in a thread, many requests at once (streams included)."""

    def __init__(self, app: Any) -> None:
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.httpd.shutdown()


def schemathesis(url: str, token: str, *filters: str, examples: int = 25) -> tuple[int, str]:
    """One `schemathesis run` with every check; (exit code, its report)."""
    args = [
        str(BIN / "schemathesis"),
        "run",
        f"{url}/api/v1/swagger.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--generation-deterministic",
        "--request-timeout",
        "20",
        "--workers",
        "1",
        "--no-color",
        "-H",
        f"Authorization: Bearer {token}",
        *filters,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1200)
    return done.returncode, done.stdout + done.stderr
