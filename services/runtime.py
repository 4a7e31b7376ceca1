"""Embedded mode's background work: the scheduler, in-process, holding the lease."""

from __future__ import annotations

import logging

from services.jobs import SIMULATOR_EVERY_S, SIMULATOR_JOB, standard_jobs
from services.scheduler import LeasedScheduler
from services.web.context import BeaconContext

log = logging.getLogger("beacon")

__all__ = ["SIMULATOR_EVERY_S", "SIMULATOR_JOB", "start_embedded"]


def start_embedded(context: BeaconContext) -> LeasedScheduler:
    """Run every job in this process (history first, in the scheduler's own threads)."""
    settings = context.settings
    if not settings.simulator:
        log.info("simulator off (BEACON_SIMULATOR=0): Beacon shows only data sent to it")
    scheduler = LeasedScheduler(context.db, standard_jobs(context.db, settings))
    scheduler.start()
    return scheduler
