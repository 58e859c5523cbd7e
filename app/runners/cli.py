"""`flask jobs ...`: inspect, requeue and retry generation jobs.

In embedded mode the CLI process starts no runner threads: it changes the job
rows, and the serving process's runner picks queued jobs up when it next polls
(RELAY_RUNNER_POLL_SECONDS). With a broker-backed queue the job is submitted.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.accounts.models import utcnow
from app.errors import RelayError
from app.extensions import db
from app.runners.queue import get_job_queue
from app.stories.jobs import requeue_job, retry_job
from app.stories.models import JOB_STATES, GenerationJob, JobStatus

jobs_cli = AppGroup("jobs", help="Inspect and requeue generation jobs.")


@jobs_cli.command("deadlines")
def deadlines() -> None:
    """Settle every relay deadline that has passed (app/stories/deadlines.py), once."""
    from app.stories.deadlines import run_deadlines

    click.echo(f"settled {run_deadlines()} deadline(s)")


@jobs_cli.command("list")
@click.option(
    "--status",
    type=click.Choice([str(state) for state in JOB_STATES]),
    default=None,
    help="Only this state.",
)
@click.option("--limit", type=int, default=50, show_default=True)
def list_jobs(status: str | None, limit: int) -> None:
    """List the most recent generation jobs."""
    query = select(GenerationJob).order_by(GenerationJob.id.desc()).limit(limit)
    if status:
        query = query.where(GenerationJob.status == status)
    jobs = list(db.session.scalars(query))
    if not jobs:
        click.echo("No jobs.")
        return
    click.echo(f"{'id':>6}  {'story':>6}  {'status':8}  {'tries':>5}  {'started':19}  error")
    for job in jobs:
        started = job.started_at.strftime("%Y-%m-%d %H:%M:%S") if job.started_at else "-"
        error = (job.error or "")[:60]
        click.echo(
            f"{job.id:>6}  {job.story_id:>6}  {job.status:8}  {job.attempts:>5}  "
            f"{started:19}  {error}"
        )


@jobs_cli.command("requeue-stale")
@click.option(
    "--older-than", type=int, default=600, show_default=True, help="Seconds since it started."
)
def requeue_stale(older_than: int) -> None:
    """Put running jobs that started too long ago back in the queue (their worker died)."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    ids = list(
        db.session.scalars(
            select(GenerationJob.id).where(
                GenerationJob.status == JobStatus.RUNNING, GenerationJob.started_at < cutoff
            )
        )
    )
    requeued = [job_id for job_id in ids if requeue_job(job_id)]
    for job_id in requeued:
        _submit(job_id)
    click.echo(
        f"Requeued {len(requeued)} job(s){': ' if requeued else '.'}"
        + ", ".join(map(str, requeued))
    )


@jobs_cli.command("retry")
@click.argument("job_id", type=int)
def retry(job_id: int) -> None:
    """Run job JOB_ID again: a failed one (if its paragraph is still the latest), or a stuck one."""
    job = db.session.get(GenerationJob, job_id)
    if job is not None and job.status == JobStatus.QUEUED:
        click.echo(f"Job {job_id} is already queued.")
    else:
        try:
            retry_job(job_id)
        except RelayError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"Job {job_id} is queued again.")
    _submit(job_id)


def _submit(job_id: int) -> None:
    queue = get_job_queue()
    if getattr(queue, "in_process", False):
        return  # the serving process's runner finds it when it polls
    queue.submit(job_id)
