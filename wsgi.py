"""Entry points: `app` is the Flask (WSGI) application; `server` wraps it for gunicorn's
event-driven worker, which serves live streams off the request threads
(`gunicorn -c gunicorn.conf.py wsgi:server`; see app/live/server.py)."""

import sys

from dotenv import load_dotenv

from app import create_app
from app.settings import SettingsError

load_dotenv()
try:
    app = create_app()
except SettingsError as exc:  # a malformed variable: say which, and do not start
    sys.exit(f"Relay Novel cannot start: {exc}")

from app.live.server import StreamingServer  # noqa: E402  (after the settings check)

server = StreamingServer(app)
