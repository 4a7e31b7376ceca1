"""The scheduler: one active holder of the lease, back-off after failures, run history."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services import scheduler
from services.db import Database, connect, upgrade_to_head
from services.db.models import JobRun, SchedulerLease, utcnow
from services.scheduler import (
    DATA_LANE,
    JobFunc,
    JobResult,
    JobSpec,
    LeasedScheduler,
    backoff_for,
    flush_unrecorded,
    lease_holder,
    release,
    run_recorded,
    try_acquire,
)


@pytest.fixture
def lease_db(database_url: str) -> Database:
    db = connect(database_url)
    upgrade_to_head(db)
    yield db
    db.dispose()


def test_only_one_holder_at_a_time(lease_db: Database) -> None:
    now = utcnow()
    with lease_db.session(write=True) as session:
        assert try_acquire(session, holder="a", now=now)
    with lease_db.session(write=True) as session:
        assert not try_acquire(session, holder="b", now=now + timedelta(seconds=5))
        assert try_acquire(session, holder="a", now=now + timedelta(seconds=5))  # renewal
    # The holder stops renewing: after the TTL the standby takes over.
    with lease_db.session(write=True) as session:
        assert try_acquire(session, holder="b", now=now + timedelta(seconds=40))
        assert lease_holder(session).holder == "b"


def test_release_hands_over_at_once(lease_db: Database) -> None:
    with lease_db.session(write=True) as session:
        assert try_acquire(session, holder="a")
        release(session, holder="a")
    with lease_db.session(write=True) as session:
        assert try_acquire(session, holder="b")


def test_failed_job_is_recorded_and_backs_off(lease_db: Database) -> None:
    calls = []

    def broken() -> JobResult:
        calls.append(1)
        raise RuntimeError("source unreachable")

    first = run_recorded(lease_db, "flaky", broken)
    assert first.status == "failed"
    assert "source unreachable" in first.error
    assert run_recorded(lease_db, "flaky", broken) is None  # still inside the back-off
    assert len(calls) == 1
    ok = run_recorded(lease_db, "steady", lambda: JobResult(rows=5, detail={"x": 1}))
    assert (ok.status, ok.rows, ok.detail) == ("ok", 5, {"x": 1})


def test_backoff_grows_and_is_capped() -> None:
    assert backoff_for(0) == timedelta(0)
    assert backoff_for(1) == timedelta(minutes=1)
    assert backoff_for(3) == timedelta(minutes=4)
    assert backoff_for(20) == timedelta(minutes=30)


def test_jobs_run_only_while_the_lease_is_held(lease_db: Database) -> None:
    ran = []
    job = JobSpec("probe", lambda: ran.append(1) or JobResult(), 3600, "probe", run_at_start=True)
    with lease_db.session(write=True) as session:
        assert try_acquire(session, holder="someone-else")
    runner = LeasedScheduler(lease_db, [job], renew_every_s=0.2)
    runner.start()
    time.sleep(1.0)
    assert not runner.held
    assert ran == []
    with lease_db.session(write=True) as session:
        release(session, holder="someone-else")
    deadline = time.time() + 5
    while not ran and time.time() < deadline:
        time.sleep(0.1)
    runner.stop()
    assert ran == [1]
    with lease_db.session() as session:
        assert lease_holder(session).expires_at <= utcnow()  # released on stop


SCHEDULER_SCRIPT = """
import sys, time
from services.db import connect
from services.scheduler import JobResult, JobSpec, LeasedScheduler
db = connect(sys.argv[1])
job = JobSpec("tick", lambda: JobResult(rows=1), 1, "tick", run_at_start=True)
runner = LeasedScheduler(db, [job], renew_every_s=0.5)
runner.start()
time.sleep(float(sys.argv[2]))
runner.stop()
"""


def test_two_scheduler_processes_never_both_run_jobs(lease_db: Database, tmp_path: Path) -> None:
    """Two real processes on one database: runs never overlap in time between holders."""
    script = tmp_path / "scheduler_probe.py"
    script.write_text(SCHEDULER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    processes = [
        subprocess.Popen([sys.executable, str(script), lease_db.url, seconds], env=env)
        for seconds in ("5", "9")
    ]
    for process in processes:
        assert process.wait(timeout=60) == 0
    with lease_db.session() as session:
        runs = session.scalars(
            select(JobRun).where(JobRun.job_id == "tick").order_by(JobRun.started_at)
        ).all()
    hosts = [run.host for run in runs]
    handovers = sum(1 for a, b in itertools.pairwise(hosts) if a != b)
    assert runs
    # One process runs the jobs; at most one clean handover when the first one stops.
    assert handovers <= 1, f"schedulers interleaved: {hosts}"


def test_a_killed_scheduler_is_replaced(lease_db: Database, tmp_path: Path) -> None:
    """The active scheduler dies without releasing: the standby takes over after the TTL."""
    script = tmp_path / "scheduler_probe.py"
    script.write_text(SCHEDULER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    first = subprocess.Popen([sys.executable, str(script), lease_db.url, "30"], env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        with lease_db.session() as session:
            if session.scalar(select(SchedulerLease.holder)):
                break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    with lease_db.session(write=True) as session:
        assert not try_acquire(session, holder="standby")  # still within its TTL
    with lease_db.session(write=True) as session:
        assert try_acquire(session, holder="standby", now=utcnow() + timedelta(seconds=31))


def test_a_job_end_the_database_refused_is_written_once_it_is_back(
    lease_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_record_end = scheduler._record_end

    def database_away(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError("connection refused")

    # The run's start is stored, then the database goes away before its end.
    monkeypatch.setattr(scheduler, "_record_end", database_away)
    assert run_recorded(lease_db, "nightly", lambda: JobResult(rows=3)) is None  # never raises
    with lease_db.session() as session:
        [run] = session.scalars(select(JobRun).where(JobRun.job_id == "nightly")).all()
        assert run.finished_at is None
    assert flush_unrecorded(lease_db) == 1  # still away: kept for the next tick
    monkeypatch.setattr(scheduler, "_record_end", real_record_end)
    assert flush_unrecorded(lease_db) == 0
    with lease_db.session() as session:
        run = session.scalars(select(JobRun).where(JobRun.job_id == "nightly")).one()
        assert (run.status, run.rows) == ("ok", 3)
        assert run.finished_at is not None


def test_taking_the_lease_closes_runs_another_scheduler_left_unfinished(
    lease_db: Database,
) -> None:
    with lease_db.session(write=True) as session:
        session.add(JobRun(job_id="anomaly.detect", host="other-host:4242"))
        session.add(JobRun(job_id="simulator.deliver", host="other-host:4343"))  # a CLI's run
    sched = LeasedScheduler(
        db=lease_db,
        jobs=[JobSpec("anomaly.detect", lambda: JobResult(), 60, "detect")],
        renew_every_s=0.05,
    )
    assert sched.tick() is True
    with lease_db.session() as session:
        runs = {r.job_id: r for r in session.scalars(select(JobRun))}
    assert runs["anomaly.detect"].status == "abandoned"
    assert runs["anomaly.detect"].finished_at is not None
    assert "lost its lease" in runs["anomaly.detect"].error
    assert runs["simulator.deliver"].finished_at is None  # not a scheduled job: untouched


def test_data_jobs_run_one_at_a_time_and_release_memory_after_each(
    lease_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[str] = []
    monkeypatch.setattr(scheduler, "release_freed_memory", lambda: released.append("x") or True)
    running: set[str] = set()
    overlaps: list[set[str]] = []
    lock = threading.Lock()

    def job(name: str, seconds: float) -> JobFunc:
        def run() -> JobResult:
            with lock:
                running.add(name)
                overlaps.append(set(running))
            time.sleep(seconds)
            with lock:
                running.discard(name)
            return JobResult()

        return run

    jobs = [
        JobSpec("ingest", job("ingest", 0.6), 3600, "d", run_at_start=True, lane=DATA_LANE),
        JobSpec("detect", job("detect", 0.6), 3600, "d", run_at_start=True, lane=DATA_LANE),
        JobSpec("notify", job("notify", 0.3), 3600, "n", run_at_start=True),
    ]
    runner = LeasedScheduler(lease_db, jobs, renew_every_s=0.2)
    runner.start()
    deadline = time.time() + 10
    while len(released) < 2 and time.time() < deadline:
        time.sleep(0.1)
    runner.stop()
    with lease_db.session() as session:
        done = {r.job_id for r in session.scalars(select(JobRun)) if r.status == "ok"}
    assert done == {"ingest", "detect", "notify"}
    # The two data jobs never ran together; the light job did not wait for them.
    assert not any({"ingest", "detect"} <= seen for seen in overlaps)
    assert any("notify" in seen and len(seen) > 1 for seen in overlaps)
    assert released == ["x", "x"]  # once after each data job, not after the light one


def test_period_sized_jobs_are_on_the_data_lane(lease_db: Database, tmp_path: Path) -> None:
    from services.config import Settings
    from services.jobs import standard_jobs

    settings = Settings(
        data_dir=tmp_path, database_url="sqlite://", drop_dir=tmp_path, simulator=False
    )
    lanes = {job.id: job.lane for job in standard_jobs(lease_db, settings)}
    assert {name for name, lane in lanes.items() if lane == DATA_LANE} == {
        "health.gaps", "health.drift", "anomaly.detect", "forecast.rollup", "ingest.replay",
        "ingest.drop_folder",
    }  # fmt: skip
