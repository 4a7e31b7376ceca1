"""Embedded mode's background work: the simulator catching up, then delivering live."""

from __future__ import annotations

import logging
import threading

from services.ingest.simfeed import SimulatorFeed
from services.scheduler import JobResult, JobSpec, run_recorded, start_scheduler
from services.web.context import BeaconContext

log = logging.getLogger("beacon")
SIMULATOR_JOB = "simulator.feed"
SIMULATOR_EVERY_S = 60


def start_embedded(context: BeaconContext) -> threading.Thread | None:
    """Start the simulator when enabled: history in the background, then every minute."""
    settings, db = context.settings, context.db
    if not settings.simulator:
        log.info("simulator off (BEACON_SIMULATOR=0): Beacon shows only data sent to it")
        return None
    feed = SimulatorFeed(db, settings)
    added = feed.prepare()
    if added:
        log.info("simulated network registered: %d elements", added)

    def feed_job() -> JobResult:
        result = feed.catch_up(progress=_log_progress)
        return JobResult(
            rows=result.accepted,
            detail={
                "batches": result.batches,
                "received": result.received,
                "quarantined": result.quarantined,
            },
        )

    def first_run_then_schedule() -> None:
        # Weeks of history take a while: the web server answers meanwhile, and the
        # minutely job starts only when the history is in (no two catch-ups at once).
        run_recorded(db, SIMULATOR_JOB, feed_job)
        job = JobSpec(SIMULATOR_JOB, feed_job, SIMULATOR_EVERY_S, "Deliver simulated telemetry")
        start_scheduler(db, [job])
        log.info("simulator live: new deliveries every %d s", SIMULATOR_EVERY_S)

    thread = threading.Thread(target=first_run_then_schedule, name="simulator", daemon=True)
    thread.start()
    return thread


def _log_progress(done: int, total: int) -> None:
    if total > 96 and (done == total or done % 96 == 0):
        log.info("simulator history: %d/%d periods delivered", done, total)
