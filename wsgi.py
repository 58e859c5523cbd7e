"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import sys

from dotenv import load_dotenv

from app import create_app
from app.settings import SettingsError

load_dotenv()
try:
    app = create_app()
except SettingsError as exc:  # a malformed variable: say which, and do not start
    sys.exit(f"Relay Novel cannot start: {exc}")
