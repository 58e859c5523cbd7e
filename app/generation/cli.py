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
from app.extensions import db
from app.generation.events import publish
from app.generation.queue import get_job_queue
from app.stories.jobs import requeue_job
from app.stories.models import JOB_STATES, GenerationJob
from app.stories.relay import lock_story, pending_job
from app.stories.serialize import job_dict

jobs_cli = AppGroup("jobs", help="Inspect and requeue generation jobs.")


@jobs_cli.command("list")
@click.option("--status", type=click.Choice(JOB_STATES), default=None, help="Only this state.")
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
                GenerationJob.status == "running", GenerationJob.started_at < cutoff
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
    message = _reopen(job_id)
    _submit(job_id)
    click.echo(message)


def _reopen(job_id: int) -> str:
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        raise click.ClickException(f"No job {job_id}.")
    if job.status == "queued":
        return f"Job {job_id} is already queued."
    if job.status == "running":
        requeue_job(job_id)
        return f"Job {job_id} is queued again."
    if job.status == "done":
        raise click.ClickException(f"Job {job_id} is done; regenerate the turn instead.")
    story = lock_story(job.story_id)
    db.session.refresh(job)
    latest = job.reply_to is not None and job.reply_to.position == story.last_position
    if job.status != "failed" or not latest or pending_job(story) is not None:
        db.session.rollback()
        raise click.ClickException(f"Job {job_id} cannot be retried: the story has moved on.")
    job.status, job.attempts, job.error, job.finished_at = "queued", 0, None, None
    db.session.commit()
    publish(story.id, "generation_queued", job=job_dict(job))
    return f"Job {job_id} is queued again."


def _submit(job_id: int) -> None:
    queue = get_job_queue()
    if getattr(queue, "in_process", False):
        return  # the serving process's runner finds it when it polls
    queue.submit(job_id)
