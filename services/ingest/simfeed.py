"""Feeds the simulated network into the ingest pipeline: backfill, then live deliveries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from services import kv
from services.automation.use_cases import assign_owners
from services.config import Settings
from services.db import Database
from services.db.models import utcnow
from services.decisions.demo import backfill_history
from services.ingest.pipeline import ingest_records
from services.ingest.simulator import NetworkSimulator, SimBatch, SimConfig, live_start
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources, register_topology

log = logging.getLogger(__name__)

ANCHOR_KEY = "simulator.anchor"
DELIVERED_KEY = "simulator.delivered_until"
SEED_KEY = "simulator.seed"
DEFAULT_SEED = 7
RECORD_COLUMNS = ["dn", "kpi", "period_end", "value", "vendor", "sw_version"]
# Backfill ingests up to a day of deliveries per source at a time (see _ingest_chunk).
CHUNK = pd.Timedelta(days=1)
ONE_NS = pd.Timedelta(1, "ns")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FeedResult:
    """What one catch-up delivered."""

    batches: int
    received: int
    accepted: int
    quarantined: int
    delivered_until: datetime | None


class SimulatorFeed:
    """The simulated network, anchored once in the database so restarts continue the story."""

    def __init__(self, db: Database, settings: Settings, *, now: datetime | None = None) -> None:
        self.db = db
        now = now or utcnow()
        with db.session(write=True) as session:
            anchor = kv.get_value(session, ANCHOR_KEY)
            seed = kv.get_value(session, SEED_KEY, DEFAULT_SEED)
            if anchor is None:
                backfill = pd.Timedelta(days=settings.sim_backfill_days)
                anchor = live_start(pd.Timestamp(now), backfill=backfill).isoformat()
                kv.set_value(
                    session,
                    ANCHOR_KEY,
                    anchor,
                    description="start of the simulated network's history",
                )
                kv.set_value(session, SEED_KEY, seed)
        self.anchor = pd.Timestamp(anchor)
        self.simulator = NetworkSimulator(
            SimConfig(
                start=self.anchor, seed=int(seed), sites_per_region=settings.sim_sites_per_region
            )
        )
        self.period = self.simulator.config.period

    def prepare(self) -> int:
        """Register sources, inventory, demo on-call and trust history; returns elements added."""
        now = utcnow()
        with self.db.session(write=True) as session:
            ensure_simulator_sources(session)
            added = register_topology(session, self.simulator.topology)
            # After the sources and use cases: each becomes an `ingest:<source>` or
            # `usecase:<key>` component the demo's AI platform team owns and is on call for.
            seed_demo_oncall(session, now=now)
            assign_owners(session)
            # Weeks of simulated decisions, disagreements and reviews (labelled simulated), so
            # the adoption and disagreement pages have trends on first start; written once.
            backfill_history(session, now=now)
            return added

    def delivered_until(self) -> pd.Timestamp:
        """Every simulated delivery at or before this instant has been ingested."""
        with self.db.session() as session:
            value = kv.get_value(session, DELIVERED_KEY)
        return self.anchor if value is None else pd.Timestamp(value)

    def catch_up(
        self, *, now: datetime | None = None, progress: Progress | None = None
    ) -> FeedResult:
        """Ingest every delivery the simulated network made after the cursor, up to `now`."""
        now_ts = pd.Timestamp(now or utcnow())
        since = self.delivered_until()
        if since >= now_ts:
            return FeedResult(0, 0, 0, 0, since.to_pydatetime())
        # Window W holds the deliveries made in (W, W + period].
        first_window = (since - ONE_NS).floor(self.period)
        last_window = (now_ts - ONE_NS).floor(self.period)
        total = int((last_window - first_window) / self.period) + 1
        totals = [0, 0, 0, 0]
        pending: list[SimBatch] = []
        chunk_start = None
        for batch in self.simulator.backfill(first_window, last_window):
            if not since < batch.delivered_at <= now_ts:
                continue
            window = self._window_of(batch)
            if chunk_start is None:
                chunk_start = window
            elif window - chunk_start >= CHUNK:
                # Deliveries come in window order: everything up to this window's start is in.
                self._ingest_chunk(pending, totals)
                self._save_cursor(window)
                pending, chunk_start = [], window
                if progress is not None:
                    progress(int((window - first_window) / self.period), total)
            pending.append(batch)
        self._ingest_chunk(pending, totals)
        self._save_cursor(now_ts)
        if progress is not None:
            progress(total, total)
        return FeedResult(
            batches=totals[0],
            received=totals[1],
            accepted=totals[2],
            quarantined=totals[3],
            delivered_until=now_ts.to_pydatetime(),
        )

    def _ingest_chunk(self, batches: list[SimBatch], totals: list[int]) -> None:
        """One ingest per source for a run of deliveries, records kept in arrival order.

        Live, a chunk is the minute's few deliveries; during backfill it is up to a day,
        which keeps weeks of history to tens of transactions instead of thousands.
        """
        by_source: dict[str, list[SimBatch]] = {}
        for batch in batches:
            by_source.setdefault(batch.source, []).append(batch)
        for source, parts in by_source.items():
            records = pd.concat([b.records[RECORD_COLUMNS] for b in parts], ignore_index=True)
            summary = ingest_records(
                self.db,
                source=source,
                records=records,
                raw_format="simulator",
                received_at=parts[-1].delivered_at.to_pydatetime(),
            )
            totals[0] += len(parts)
            totals[1] += summary.received
            totals[2] += summary.accepted
            totals[3] += summary.quarantined

    def _window_of(self, batch: SimBatch) -> pd.Timestamp:
        """The period end W whose delivery window (W, W + period] holds this delivery."""
        return (batch.delivered_at - ONE_NS).floor(self.period)

    def _save_cursor(self, moment: pd.Timestamp) -> None:
        # A restart resumes after this instant; re-delivering part of a chunk after a crash
        # is harmless because identical records are idempotent duplicates.
        with self.db.session(write=True) as session:
            kv.set_value(session, DELIVERED_KEY, moment.isoformat())
