"""`flask jobs ...`: inspect and requeue generation jobs."""

from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="Inspect and requeue generation jobs.")
