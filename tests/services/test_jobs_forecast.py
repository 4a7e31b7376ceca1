"""Forecast jobs: scheduled as specified, progress on the job run, the simulator's archive."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from testkit import seeded_database, settings_for

from services import jobs, scheduler
from services.db import Database
from services.db.models import DailyAggregate, Element, JobRun, Kpi
from services.forecast import rollup
from services.forecast import service as forecast_service
from services.forecast.executor import FitTask, execute
from services.forecast.model import seasonal_naive_forecast
from services.ingest.simfeed import FeedResult, SimulatorFeed


def quick_fit(task: FitTask):  # type: ignore[no-untyped-def]
    return seasonal_naive_forecast(task.history, task.config)


class WatchingExecutor:
    """Fits in this process and notes the job run's stored progress after every series."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.progress: list[float | None] = []

    def run(self, tasks, *, timeout_s, on_done) -> None:  # type: ignore[no-untyped-def]
        for task in tasks:
            on_done(execute(task, timeout_s, quick_fit))
            with self.db.session() as session:
                self.progress.append(
                    session.scalar(select(JobRun.progress).where(JobRun.finished_at.is_(None)))
                )

    def close(self) -> None:
        pass


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        yield database


def test_forecast_jobs_are_scheduled(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, BEACON_FORECAST_EVERY_S="7200")
    specs = {job.id: job for job in jobs.standard_jobs(None, settings)}  # type: ignore[arg-type]
    assert specs["forecast.rollup"].every_seconds == 3600
    nightly = specs[forecast_service.JOB_ID]
    assert nightly.id == "forecast.nightly"
    assert nightly.every_seconds == 7200
    assert nightly.run_at_start


def test_forecast_job_reports_progress_while_it_runs(db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        prb = session.scalar(select(Kpi.id).where(Kpi.name == "prb_util_dl"))
        for i in range(4):
            element = Element(dn=f"SubNetwork=S,ManagedElement=M{i}", name=f"M{i}",
                              element_type="cell", domain="RAN", region="South")  # fmt: skip
            session.add(element)
            session.flush()
            for n in range(21):
                day = date(2026, 11, 1) + timedelta(days=n)
                value = 40.0 + n % 7
                session.add(DailyAggregate(element_id=element.id, kpi_id=prb, day=day,
                                           busy_hour_value=value, busy_hour=20, daily_mean=30.0,
                                           daily_max=50.0, samples=96))  # fmt: skip
    watcher = WatchingExecutor(db)
    monkeypatch.setattr(forecast_service, "make_executor", lambda *a, **k: watcher)
    monkeypatch.setattr(scheduler, "PROGRESS_EVERY_S", 0.0)
    settings = settings_for(tmp_path)
    run = scheduler.run_recorded(db, forecast_service.JOB_ID,
                                 lambda: jobs.forecast_nightly(db, settings))  # fmt: skip
    assert run is not None
    assert run.status == "ok", run.error
    assert watcher.progress == [0.25, 0.5, 0.75, 1.0]
    assert run.progress == 1.0
    assert run.detail["fitted"] == 4
    assert run.rows == 4
    assert run.detail["planned"] == 4
    # Nothing new: the next run fits nothing and says so.
    again = scheduler.run_recorded(db, forecast_service.JOB_ID,
                                   lambda: jobs.forecast_nightly(db, settings))  # fmt: skip
    assert again is not None
    assert again.detail["planned"] == 0
    assert again.detail["skipped"] == 4


def test_progress_outside_a_job_is_ignored() -> None:
    scheduler.report_progress(0.5)  # no job running in this context: nothing to record


def test_rollup_job_on_an_empty_database(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = jobs.rollup_daily(db, settings_for(tmp_path))
    assert result.rows == 0
    assert result.detail["rows_written"] == 0


def test_simulator_first_run_seeds_the_daily_archive_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(tmp_path, BEACON_SIMULATOR="1", BEACON_SIM_SITES_PER_REGION="1",
                            BEACON_SIM_ARCHIVE_DAYS="4", BEACON_SIM_BACKFILL_DAYS="0")  # fmt: skip
    calls: list[int] = []
    real = rollup.seed_simulator_archive

    def seed(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["days"])
        return real(*args, **kwargs)

    monkeypatch.setattr(rollup, "seed_simulator_archive", seed)
    # Live delivery is the simulator's own business; here only the archive matters.
    monkeypatch.setattr(SimulatorFeed, "catch_up", lambda self: FeedResult(0, 0, 0, 0, None))
    with seeded_database(settings.database_url) as db:
        job = jobs.simulator_job(db, settings)
        first, second = job.func(), job.func()
        with db.session() as session:
            archived = session.scalar(
                select(func.count()).where(DailyAggregate.source == "simulator_archive")
            )
    assert calls == [4]
    assert first.detail["archive_rows"] == archived > 0
    assert "archive_rows" not in second.detail
