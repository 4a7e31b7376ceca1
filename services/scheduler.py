"""Scheduled jobs: APScheduler with a database lease (one active scheduler), history, back-off.

Web workers never run jobs. `beacon scheduler` (or the embedded `python app.py`) runs one
scheduler; a second one started against the same database waits, holding no lease, and
takes over only when the first stops renewing (crash, kill, network partition).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.db import Database
from services.db.models import JobRun, SchedulerLease, utcnow
from services.memory import release_freed_memory

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(seconds=30)
RENEW_EVERY_S = 10.0
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(minutes=30)
PROGRESS_EVERY_S = 2.0  # progress writes per run are throttled: SQLite has one writer
# Jobs that hold a whole network period in memory (ingest, detection, aggregates) run one
# at a time on a single thread of their own. In parallel threads each job would leave its
# freed frames in a different malloc heap, and the process would keep the sum of their
# peaks; one after the other they reuse one heap, trimmed after each run. The others
# (notifications, escalation, heartbeats, forecasting that waits on its worker processes)
# share the default pool and are never queued behind a long detection run.
DATA_LANE = "data"
DEFAULT_LANE = "default"
DEFAULT_LANE_THREADS = 10


@dataclass(frozen=True)
class JobResult:
    """What a job reports: rows handled and any detail worth showing on the page."""

    rows: int = 0
    detail: dict | None = None


JobFunc = Callable[[], JobResult]


@dataclass(frozen=True)
class JobSpec:
    """One recurring job: a stable id (so restarts replace it) and its interval."""

    id: str
    func: JobFunc
    every_seconds: int
    description: str
    run_at_start: bool = False
    lane: str = DEFAULT_LANE


@dataclass
class _RunningJob:
    db: Database
    run_id: int
    written_at: float = 0.0


_running: ContextVar[_RunningJob | None] = ContextVar("beacon_running_job", default=None)
# Ends of job runs the database refused (it was away), by run id, written on a later tick.
_unrecorded: dict[int, dict[str, Any]] = {}
_unrecorded_lock = threading.Lock()


def report_progress(fraction: float) -> None:
    """Record how far the running job has got (0..1) on its JobRun row; no-op outside a job.

    Jobs call this as they go (pages show it as a progress bar); writes are throttled.
    """
    job = _running.get()
    if job is None:
        return
    now = time.monotonic()
    if fraction < 1.0 and now - job.written_at < PROGRESS_EVERY_S:
        return
    job.written_at = now
    try:
        with job.db.session(write=True) as session:
            session.execute(
                update(JobRun)
                .where(JobRun.id == job.run_id)
                .values(progress=min(1.0, max(0.0, float(fraction))))
            )
    except Exception:  # progress is cosmetic: never fail the job over it
        log.warning("could not record progress of job run %s", job.run_id, exc_info=True)


def process_host() -> str:
    """host:pid — what a JobRun records as the process that ran it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_id() -> str:
    """host:pid:random — unique per scheduler process, readable in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(
    session: Session, *, holder: str, now: datetime | None = None, ttl: timedelta = LEASE_TTL
) -> bool:
    """Take or renew the lease; True when `holder` holds it until now + ttl."""
    now = now or utcnow()
    renewed = session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == LEASE_NAME,
            (SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now),
        )
        .values(holder=holder, expires_at=now + ttl, acquired_at=now)
    )
    if renewed.rowcount:
        return True
    exists = session.scalar(select(SchedulerLease.name).where(SchedulerLease.name == LEASE_NAME))
    if exists:
        return False
    try:
        with session.begin_nested():
            session.execute(
                insert(SchedulerLease).values(
                    name=LEASE_NAME, holder=holder, acquired_at=now, expires_at=now + ttl
                )
            )
    except IntegrityError:
        return False  # another scheduler inserted it first
    return True


def release(session: Session, *, holder: str) -> None:
    """Give the lease up at once (clean shutdown), so a standby takes over immediately."""
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )


def lease_holder(session: Session) -> SchedulerLease | None:
    """The current lease row (its holder may have expired)."""
    return session.get(SchedulerLease, LEASE_NAME)


def run_recorded(db: Database, job_id: str, func: JobFunc) -> JobRun | None:
    """Run `func`, recording start, end, rows and any error; never raises.

    A job that failed recently waits out an exponential back-off first (returns None):
    a broken source is retried, but does not hammer anything or flood the history.
    """
    if _backing_off(db, job_id):
        return None
    with db.session(write=True) as session:
        run = JobRun(job_id=job_id, host=process_host())
        session.add(run)
        session.flush()
        run_id = run.id
    status, rows, detail, error = "ok", 0, {}, None
    token = _running.set(_RunningJob(db, run_id))
    try:
        result = func()
        rows, detail = result.rows, result.detail or {}
    except Exception as exc:  # a failing job is recorded, never fatal
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:4000]
        log.exception("job %s failed", job_id)
    finally:
        _running.reset(token)
    outcome = {"finished_at": utcnow(), "status": status, "rows": rows, "detail": detail,
               "error": error}  # fmt: skip
    try:
        return _record_end(db, run_id, outcome)
    except Exception:  # the database went away mid-job: record the end once it is back
        log.warning("job %s run %s: end not recorded yet; retried", job_id, run_id, exc_info=True)
        with _unrecorded_lock:
            _unrecorded[run_id] = outcome
        return None


def _record_end(db: Database, run_id: int, outcome: dict[str, Any]) -> JobRun:
    with db.session(write=True) as session:
        run = session.get(JobRun, run_id)
        assert run is not None
        for name, value in outcome.items():
            setattr(run, name, value)
        if outcome["status"] == "ok" and run.progress is not None:
            run.progress = 1.0
        return run


def flush_unrecorded(db: Database) -> int:
    """Write job ends that failed to be stored (database outage); returns how many remain."""
    with _unrecorded_lock:
        pending = dict(_unrecorded)
    for run_id, outcome in pending.items():
        try:
            _record_end(db, run_id, outcome)
        except Exception:
            log.debug("job run %s end still not recorded", run_id, exc_info=True)
            continue
        with _unrecorded_lock:
            _unrecorded.pop(run_id, None)
    with _unrecorded_lock:
        return len(_unrecorded)


def close_abandoned(
    session: Session, *, own_host: str, job_ids: list[str], now: datetime | None = None
) -> int:
    """Runs of scheduled jobs left unfinished by another scheduler (it died or lost the lease).

    Called when this process takes the lease: scheduled jobs run only on the lease holder,
    so such runs will never finish. Marked "abandoned" so history, back-off and heartbeats
    stay truthful. Runs of other processes (a CLI command) are not touched.
    """
    now = now or utcnow()
    result = session.execute(
        update(JobRun)
        .where(
            JobRun.finished_at.is_(None),
            JobRun.job_id.in_(job_ids),
            (JobRun.host != own_host) | JobRun.host.is_(None),
        )
        .values(
            finished_at=now,
            status="abandoned",
            error="the scheduler process running it stopped or lost its lease before it ended",
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def backoff_for(failures: int) -> timedelta:
    """Wait after `failures` consecutive failures: 1, 2, 4 … minutes, at most 30."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_BASE * (2 ** (failures - 1)), BACKOFF_MAX)


def _backing_off(db: Database, job_id: str) -> bool:
    with db.session() as session:
        recent = session.execute(
            select(JobRun.status, JobRun.finished_at)
            .where(JobRun.job_id == job_id, JobRun.finished_at.is_not(None))
            .order_by(JobRun.started_at.desc())
            .limit(8)
        ).all()
    failures = 0
    for status, _finished in recent:
        if status != "failed":
            break
        failures += 1
    if not failures:
        return False
    return utcnow() - recent[0].finished_at < backoff_for(failures)


@dataclass
class LeasedScheduler:
    """An APScheduler that runs its jobs only while it holds the database lease."""

    db: Database
    jobs: list[JobSpec]
    holder: str = field(default_factory=holder_id)
    renew_every_s: float = RENEW_EVERY_S
    ttl: timedelta = LEASE_TTL
    held: bool = False
    _scheduler: BackgroundScheduler | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _keeper: threading.Thread | None = None

    def start(self) -> None:
        """Add the jobs (paused until the lease is ours) and start keeping the lease."""
        scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={
                DEFAULT_LANE: ThreadPoolExecutor(DEFAULT_LANE_THREADS),
                DATA_LANE: ThreadPoolExecutor(1),
            },
        )
        for job in self.jobs:
            # Passing next_run_time=None would add the job paused, so only pass it to run now.
            start_now = {"next_run_time": utcnow()} if job.run_at_start else {}
            scheduler.add_job(
                self._guarded,
                "interval",
                seconds=job.every_seconds,
                args=(job,),
                id=job.id,
                name=job.description,
                replace_existing=True,
                executor=job.lane,
                coalesce=True,
                max_instances=1,
                # Late runs still happen (APScheduler's 1 s default would silently skip them).
                misfire_grace_time=max(30, job.every_seconds),
                **start_now,
            )
        scheduler.start(paused=True)
        self._scheduler = scheduler
        self._keeper = threading.Thread(target=self._keep_lease, name="lease", daemon=True)
        self._keeper.start()

    def stop(self) -> None:
        """Stop running jobs and hand the lease over."""
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=self.renew_every_s + 5)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self.held:
            with self.db.session(write=True) as session:
                release(session, holder=self.holder)
            self.held = False

    def tick(self) -> bool:
        """Renew or acquire once; resume or pause jobs to match. Returns whether held."""
        try:
            with self.db.session(write=True) as session:
                held = try_acquire(session, holder=self.holder, ttl=self.ttl)
                if held and not self.held:
                    closed = close_abandoned(
                        session, own_host=process_host(), job_ids=[j.id for j in self.jobs]
                    )
                    if closed:
                        log.warning("%d job run(s) left unfinished by another scheduler", closed)
            if held:
                flush_unrecorded(self.db)
        except Exception:  # database unreachable: assume the lease is lost
            log.exception("scheduler lease check failed")
            held = False
        if held != self.held:
            log.info("scheduler %s %s the lease", self.holder, "holds" if held else "lost")
        self.held = held
        if self._scheduler is not None:
            if held:
                self._scheduler.resume()
            else:
                self._scheduler.pause()
        return held

    def _keep_lease(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.renew_every_s)

    def _guarded(self, job: JobSpec) -> None:
        # Jobs queued just before a lost lease must not run: check again at start.
        if self.held and not self._stop.is_set():
            run_recorded(self.db, job.id, job.func)
            if job.lane == DATA_LANE:
                release_freed_memory()


def recent_runs(db: Database, *, job_id: str | None = None, limit: int = 50) -> list[JobRun]:
    """Newest job runs first."""
    with db.session() as session:
        query = select(JobRun).order_by(JobRun.started_at.desc()).limit(limit)
        if job_id:
            query = query.where(JobRun.job_id == job_id)
        return list(session.scalars(query))
