"""Scheduled jobs: an APScheduler job table and a recorded history of every run."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from services.db import Database
from services.db.models import JobRun, utcnow

log = logging.getLogger(__name__)

# A job reports how many rows it handled and any detail worth showing on the page.
JobFunc = Callable[[], "JobResult"]


@dataclass(frozen=True)
class JobResult:
    rows: int = 0
    detail: dict | None = None


@dataclass(frozen=True)
class JobSpec:
    """One recurring job: a stable id (so restarts replace it) and its interval."""

    id: str
    func: JobFunc
    every_seconds: int
    description: str
    run_at_start: bool = False


def run_recorded(db: Database, job_id: str, func: JobFunc) -> JobRun:
    """Run `func`, recording start, end, rows and any error; never raises."""
    with db.session(write=True) as session:
        run = JobRun(job_id=job_id, host=f"{socket.gethostname()}:{os.getpid()}")
        session.add(run)
        session.flush()
        run_id = run.id
    status, rows, detail, error = "ok", 0, {}, None
    try:
        result = func()
        rows, detail = result.rows, result.detail or {}
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:4000]
        log.exception("job %s failed", job_id)
    with db.session(write=True) as session:
        run = session.get(JobRun, run_id)
        assert run is not None
        run.finished_at = utcnow()
        run.status = status
        run.rows = rows
        run.detail = detail
        run.error = error
        return run


def start_scheduler(db: Database, jobs: list[JobSpec]) -> BackgroundScheduler:
    """Start a background scheduler running `jobs`, each recorded in the run history."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for job in jobs:
        # Passing next_run_time=None would add the job paused, so only pass it to run now.
        start_now = {"next_run_time": utcnow()} if job.run_at_start else {}
        scheduler.add_job(
            run_recorded,
            "interval",
            seconds=job.every_seconds,
            args=(db, job.id, job.func),
            id=job.id,
            name=job.description,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            # Late runs still happen (APScheduler's 1 s default would silently skip them).
            misfire_grace_time=max(30, job.every_seconds),
            **start_now,
        )
    scheduler.start()
    return scheduler


def recent_runs(db: Database, *, job_id: str | None = None, limit: int = 50) -> list[JobRun]:
    """Newest job runs first."""
    with db.session() as session:
        query = select(JobRun).order_by(JobRun.started_at.desc()).limit(limit)
        if job_id:
            query = query.where(JobRun.job_id == job_id)
        return list(session.scalars(query))
