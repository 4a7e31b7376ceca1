"""The simulator feed: history, then live deliveries, resumable and conserving counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import func, select

from services.config import Settings
from services.db import Database
from services.db.models import Element, IngestBatch, Measurement, Source
from services.ingest.simfeed import SimulatorFeed

T0 = datetime(2026, 11, 20, 9, 7, tzinfo=UTC)


def _books(db: Database) -> tuple[int, int, int, int]:
    with db.session() as session:
        row = session.execute(
            select(
                func.sum(IngestBatch.received),
                func.sum(IngestBatch.accepted),
                func.sum(IngestBatch.duplicates),
                func.sum(IngestBatch.quarantined),
            )
        ).one()
    return tuple(int(v or 0) for v in row)  # type: ignore[return-value]


def test_history_then_live_deliveries(db: Database, settings: Settings) -> None:
    feed = SimulatorFeed(db, settings.with_overrides(sim_backfill_days=1), now=T0)
    assert feed.prepare() > 100
    assert feed.prepare() == 0  # inventory registered once
    history = feed.catch_up(now=T0)
    assert history.received > 40_000
    received, accepted, duplicates, quarantined = _books(db)
    assert received == accepted + duplicates + quarantined == history.received
    assert quarantined > 0  # the simulator injects malformed records

    assert feed.catch_up(now=T0).batches == 0  # nothing new at the same instant

    live = feed.catch_up(now=T0 + timedelta(minutes=30))
    assert 4 <= live.batches <= 16
    with db.session() as session:
        newest = session.scalar(select(func.max(Source.watermark)))
        fresh = session.scalar(select(func.max(Source.last_received_at)))
    assert newest >= T0 + timedelta(minutes=8)
    assert T0 < fresh <= T0 + timedelta(minutes=30)


def test_restart_resumes_where_it_stopped(db: Database, settings: Settings) -> None:
    sim_settings = settings.with_overrides(sim_backfill_days=1)
    first = SimulatorFeed(db, sim_settings, now=T0)
    first.prepare()
    first.catch_up(now=T0)
    # A new process later: same anchor from the database, continues after the cursor.
    second = SimulatorFeed(db, sim_settings, now=T0 + timedelta(days=3))
    assert second.anchor == first.anchor
    assert second.delivered_until() == pd.Timestamp(T0)
    second.catch_up(now=T0 + timedelta(hours=1))
    received, accepted, duplicates, quarantined = _books(db)
    assert received == accepted + duplicates + quarantined
    with db.session() as session:
        counts = session.execute(
            select(Measurement.element_id, Measurement.kpi_id, Measurement.period_end)
            .where(Measurement.superseded.is_(False))
            .group_by(Measurement.element_id, Measurement.kpi_id, Measurement.period_end)
            .having(func.count() > 1)
        ).all()
    assert counts == []  # never two current values for one key


def test_inventory_matches_the_simulated_topology(db: Database, settings: Settings) -> None:
    feed = SimulatorFeed(db, settings.with_overrides(sim_backfill_days=1), now=T0)
    feed.prepare()
    topology = feed.simulator.topology.elements
    with db.session() as session:
        by_type = dict(
            session.execute(
                select(Element.element_type, func.count()).group_by(Element.element_type)
            ).all()
        )
        cell = session.scalar(select(Element).where(Element.element_type == "cell").limit(1))
    assert by_type == topology["element_type"].value_counts().to_dict()
    assert cell.parent_id is not None
    assert cell.vendor in {"Ericsson", "Nokia"}
