"""The scheduled jobs Beacon runs, built from settings; each owns its session."""

from __future__ import annotations

import logging

from services.anomaly import service as anomaly_service
from services.automation.actuators import simulator_effects
from services.config import Settings
from services.db import Database
from services.forecast import rollup
from services.forecast import service as forecast_service
from services.forecast import store as forecast_store
from services.ingest import drift, gaps, health
from services.ingest.dropfolder import poll_drop_folder
from services.ingest.replay import replay_stuck_batches
from services.scheduler import DATA_LANE, JobResult, JobSpec, report_progress
from services.trust_jobs import trust_jobs

log = logging.getLogger(__name__)

SIMULATOR_JOB = "simulator.feed"
SIMULATOR_EVERY_S = 60
DETECT_MAX_PERIODS = 96 * 30
DETECT_BUDGET_S = 40.0
ROLLUP_DAYS_BACK = 3  # late data within three days still lands in the daily aggregates
# Fits run in worker processes; the budget bounds how long a run holds its scheduler thread
# (the series left over stay stale and are taken up by the next run).
FORECAST_BUDGET_S = 1200.0
ARCHIVE_ATTEMPTS = 3


def standard_jobs(db: Database, settings: Settings) -> list[JobSpec]:
    """Every job this deployment needs: health always, drop folder and simulator if on."""
    jobs = [
        JobSpec(
            "health.freshness",
            lambda: check_freshness(db),
            60,
            "Source freshness: stale sources raise data-health events",
        ),
        JobSpec(
            "health.gaps",
            lambda: check_gaps(db),
            300,
            "Missing periods per source and element",
            run_at_start=True,
            lane=DATA_LANE,
        ),
        JobSpec(
            "health.drift",
            lambda: check_drift(db),
            900,
            "Schema drift (counters by vendor/version) and value drift",
            lane=DATA_LANE,
        ),
        JobSpec(
            anomaly_service.JOB_ID,
            lambda: detect_anomalies(db, settings),
            anomaly_service.JOB_EVERY_S,
            "Anomaly detection: each new complete period once, late data re-evaluated",
            lane=DATA_LANE,
        ),
        JobSpec(
            rollup.JOB_ID,
            lambda: rollup_daily(db, settings),
            rollup.JOB_EVERY_S,
            "Daily busy-hour aggregates of complete days (capacity forecast input)",
            run_at_start=True,
            lane=DATA_LANE,
        ),
        JobSpec(
            forecast_service.JOB_ID,
            lambda: forecast_nightly(db, settings),
            settings.forecast_every_s,
            "Capacity forecasts: refit series with a new complete day, breach risk",
            run_at_start=True,
        ),
        JobSpec(
            "ingest.replay",
            lambda: replay(db),
            300,
            "Re-process batches interrupted by a crash or failed earlier",
            lane=DATA_LANE,
        ),
    ]
    jobs.extend(trust_jobs(db, settings))
    if settings.drop_dir is not None:
        directory = settings.drop_dir
        jobs.append(
            JobSpec(
                "ingest.drop_folder",
                lambda: poll(db, directory),
                settings.drop_poll_s,
                f"Ingest files dropped into {directory}",
                run_at_start=True,
                lane=DATA_LANE,
            )
        )
    if settings.simulator:
        jobs.append(simulator_job(db, settings))
    return jobs


def simulator_job(db: Database, settings: Settings) -> JobSpec:
    """The simulated network: its first run loads the history, later runs deliver live."""
    from services.ingest.simfeed import SimulatorFeed

    feed = SimulatorFeed(db, settings)
    added = feed.prepare()
    if added:
        log.info("simulated network registered: %d elements", added)

    archive = {"attempts": 0, "done": settings.sim_archive_days <= 0}

    def deliver() -> JobResult:
        detail: dict = {}
        if not archive["done"]:
            # The first run gives the simulated network months of daily history, so capacity
            # forecasts have something to learn from from the start.
            archive["attempts"] += 1
            try:
                detail["archive_rows"] = rollup.seed_simulator_archive(
                    db, feed.simulator, days=settings.sim_archive_days, zone=settings.zone
                )
                archive["done"] = True
            except Exception as exc:  # live telemetry matters more: deliver it regardless
                log.exception("seeding the simulated daily archive failed")
                detail["archive_error"] = f"{type(exc).__name__}: {exc}"[:500]
                archive["done"] = archive["attempts"] >= ARCHIVE_ATTEMPTS
        with db.session() as session:
            # Actions executed on the simulated network show in the KPIs delivered next.
            feed.simulator.set_effects(simulator_effects(session))
        result = feed.catch_up()
        return JobResult(
            rows=result.accepted,
            detail={
                "batches": result.batches,
                "received": result.received,
                "quarantined": result.quarantined,
                **detail,
            },
        )

    return JobSpec(
        SIMULATOR_JOB,
        deliver,
        SIMULATOR_EVERY_S,
        "Deliver simulated telemetry",
        run_at_start=True,
        lane=DATA_LANE,
    )


def check_freshness(db: Database) -> JobResult:
    with db.session(write=True) as session:
        changes = health.update_staleness(session)
    return JobResult(rows=len(changes), detail={"changes": changes})


def check_gaps(db: Database) -> JobResult:
    with db.session(write=True) as session:
        scan = gaps.scan_gaps(session)
    return JobResult(
        rows=scan.gaps_opened + scan.gaps_extended,
        detail={
            "periods_checked": scan.periods_checked,
            "opened": scan.gaps_opened,
            "extended": scan.gaps_extended,
            "filled": scan.gaps_filled,
        },
    )


def check_drift(db: Database) -> JobResult:
    with db.session(write=True) as session:
        events = drift.vanished_counters(session) + drift.value_drift(session)
        summaries = [e.summary for e in events]
    return JobResult(rows=len(summaries), detail={"events": summaries[:20]})


def detect_anomalies(db: Database, settings: Settings) -> JobResult:
    # A backlog (first start: the stored history) is worked off in time-boxed runs so the
    # job never holds the scheduler thread for long.
    run = anomaly_service.run_detection(
        db,
        zone=settings.zone,
        max_periods=DETECT_MAX_PERIODS,
        budget_s=DETECT_BUDGET_S,
    )
    return JobResult(rows=run.written, detail=run.as_dict())


def rollup_daily(db: Database, settings: Settings) -> JobResult:
    result = rollup.rollup_days(db, zone=settings.zone, days_back=ROLLUP_DAYS_BACK)
    return JobResult(rows=result.rows_written, detail=result.as_dict())


def forecast_nightly(db: Database, settings: Settings) -> JobResult:
    def progress(done: int, total: int) -> None:
        report_progress(done / total if total else 1.0)

    # Roll the newest complete days up first, so a forecast never starts from a stale day
    # (on a fresh install the backfilled history lands here, not an hour later).
    rolled = rollup.rollup_days(db, zone=settings.zone, days_back=ROLLUP_DAYS_BACK)
    run = forecast_service.run_forecasts(
        db,
        settings,
        progress=progress,
        budget_s=min(FORECAST_BUDGET_S, 0.8 * settings.forecast_every_s),
    )
    with db.session(write=True) as session:
        pruned = forecast_store.prune_superseded(session)
    stored = run.fitted + run.fallback + run.insufficient
    detail = {**run.as_dict(), "pruned": pruned, "days_rolled_up": rolled.rows_written}
    return JobResult(rows=stored, detail=detail)


def replay(db: Database) -> JobResult:
    done = replay_stuck_batches(db)
    return JobResult(rows=sum(s.accepted for s in done), detail={"batches": len(done)})


def poll(db: Database, directory) -> JobResult:  # type: ignore[no-untyped-def]
    outcome = poll_drop_folder(db, directory)
    return JobResult(rows=outcome.accepted, detail=outcome.as_dict())
