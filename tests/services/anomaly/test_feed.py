"""Feed queries over stored episodes: filters, paging, counts, detail and the chart series."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from anomaly_feed_support import Sample, add_episodes
from testkit import seeded_database

from services import audit
from services.anomaly import actions, detect, feed, feed_series
from services.audit import Actor
from services.db import Database
from services.db.models import utcnow
from services.errors import InvalidInput, NotFound

OPERATOR = Actor(name="olga", role="operator")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        yield database


@pytest.fixture
def sample(db: Database) -> Sample:
    with db.session(write=True) as session:
        return add_episodes(session)


def ids(db: Database, **filters: object) -> list[int]:
    with db.session() as session:
        page = feed.list_episodes(session, filters=feed.FeedFilters(**filters))  # type: ignore[arg-type]
    return [row.id for row in page.rows]


def test_newest_first_and_every_filter(db: Database, sample: Sample) -> None:
    assert ids(db) == [sample.drop, sample.spike, sample.link_loss, sample.old]
    assert ids(db, severities=("critical", "major")) == [sample.drop, sample.spike]
    assert ids(db, statuses=("resolved",)) == [sample.old]
    assert ids(db, min_confidence=0.7) == [sample.drop, sample.spike]
    assert ids(db, ongoing=True) == [sample.spike]
    assert sample.spike not in ids(db, ongoing=False)
    assert ids(db, suppressed=True) == [sample.link_loss]
    assert sample.link_loss not in ids(db, suppressed=False)
    assert ids(db, region="South") == [sample.link_loss]
    assert ids(db, domain="Transport") == [sample.link_loss]
    assert ids(db, kpi="rrc_setup_sr") == [sample.drop]
    assert ids(db, element="site-0042 c1") == [sample.spike, sample.old]
    assert ids(db, element="EUtranCellFDD=C2") == [sample.drop]
    assert ids(db, element="100%") == []  # a typed % is literal, not a wildcard


def test_time_range_selects_overlapping_episodes(db: Database, sample: Sample) -> None:
    now = sample.now
    recent = ids(db, since=now - timedelta(days=1))
    assert sample.old not in recent
    assert set(recent) == {sample.spike, sample.drop, sample.link_loss}
    # The ongoing spike started 2 h ago but overlaps the last 10 minutes.
    assert ids(db, since=now - timedelta(minutes=10)) == [sample.spike]
    assert ids(db, until=now - timedelta(days=5)) == [sample.old]


def test_paging_and_total(db: Database, sample: Sample) -> None:
    with db.session() as session:
        first = feed.list_episodes(session, filters=feed.FeedFilters(), limit=2)
        second = feed.list_episodes(session, filters=feed.FeedFilters(), limit=2, offset=2)
    assert first.total == second.total == 4
    assert [r.id for r in first.rows + second.rows] == [
        sample.drop,
        sample.spike,
        sample.link_loss,
        sample.old,
    ]


def test_bad_filters_are_refused(db: Database) -> None:
    with db.session() as session:
        for bad in (
            feed.FeedFilters(severities=("severe",)),
            feed.FeedFilters(statuses=("closed",)),
            feed.FeedFilters(min_confidence=1.5),
        ):
            with pytest.raises(InvalidInput):
                feed.list_episodes(session, filters=bad)
        with pytest.raises(InvalidInput):
            feed.list_episodes(session, filters=feed.FeedFilters(), limit=0)


def test_counts(db: Database, sample: Sample) -> None:
    with db.session() as session:
        counts = feed.feed_counts(session, filters=feed.FeedFilters())
        recent = feed.feed_counts(
            session, filters=feed.FeedFilters(since=sample.now - timedelta(days=1))
        )
        assert feed.any_episodes(session)
    assert counts.total == 4
    assert counts.by_severity == {"critical": 1, "major": 1, "minor": 1, "warning": 1}
    assert counts.by_status == {"open": 3, "acknowledged": 0, "resolved": 1}
    assert (counts.ongoing, counts.suppressed) == (1, 1)
    assert recent.total == 3


def test_empty_database_has_no_episodes(db: Database) -> None:
    with db.session() as session:
        assert not feed.any_episodes(session)
        assert feed.list_episodes(session, filters=feed.FeedFilters()).total == 0
        assert feed.feed_counts(session, filters=feed.FeedFilters()).total == 0
        assert "prb_util_dl" in feed.filter_options(session)["kpis"]


def test_detail_has_feedback_history_incident_and_group(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        actions.give_feedback(
            session, anomaly_id=sample.spike, label="true_anomaly", note="seen", actor=OPERATOR
        )
        incident = actions.create_incident(session, anomaly_id=sample.spike, actor=OPERATOR)
        incident_id = incident.id
    with db.session() as session:
        detail = feed.episode_detail(session, anomaly_id=sample.spike)
    assert detail.episode.kpi == "prb_util_dl"
    assert detail.episode.ongoing
    assert detail.explanation["summary"].startswith("Downlink PRB")
    assert [f.label for f in detail.feedback] == ["true_anomaly"]
    assert {h.action for h in detail.history} == {"anomaly.feedback", "anomaly.incident.link"}
    assert detail.incident is not None
    assert detail.incident.id == incident_id
    assert [g.id for g in detail.group] == [sample.drop]


def test_unknown_episode_is_not_found(db: Database) -> None:
    with db.session() as session, pytest.raises(NotFound):
        feed.episode_detail(session, anomaly_id=4242)
    with db.session() as session, pytest.raises(NotFound):
        feed_series.episode_series(session, anomaly_id=4242)


def test_series_uses_latest_revision_and_draws_the_band(db: Database) -> None:
    # The sample's spike starts on the hour. The sample follows the clock, and when it starts
    # on the half hour the band over this synthetic history reaches the KPI's 100 % cap at
    # the onset for about half the hours of the day (every start on the hour stays below),
    # so the onset check below would depend on when the suite runs.
    on_the_hour = utcnow().replace(minute=0, second=0, microsecond=0)
    with db.session(write=True) as session:
        sample = add_episodes(session, now=on_the_hour)
    peak = sample.now - timedelta(minutes=30)
    with db.session(write=True) as session:
        from services.db.models import Measurement

        old = session.get_one(Measurement, (sample.cell_a, _prb(session), peak, 0))
        old.superseded = True
        session.add(
            Measurement(
                element_id=sample.cell_a,
                kpi_id=_prb(session),
                period_end=peak,
                revision=1,
                value=99.9,
            )
        )
        audit.record(session, actor=audit.SYSTEM, action="test.correction")
    with db.session() as session:
        series = feed_series.episode_series(session, anomaly_id=sample.spike, now=sample.now)
    frame = series.frame
    at_peak = frame[frame["period_end"] == pd.Timestamp(peak)]
    assert at_peak["value"].tolist() == [99.9]
    assert series.window_start == sample.now - timedelta(hours=2) - timedelta(days=1)
    assert series.band == "detector"
    # The band is causal: the spike's first period stands far above what history expected.
    onset = frame[frame["period_end"] == pd.Timestamp(sample.now - timedelta(hours=2))]
    assert frame["band_high"].notna().any()
    assert (onset["value"] > onset["band_high"]).all()
    assert (frame["band_high"].dropna() <= 100).all()  # clipped to the KPI's valid range
    # The normal range people see sits inside the alert band: a few sigma, not tens.
    ranged = frame.dropna(subset=["normal_low", "normal_high", "band_low", "band_high"])
    assert len(ranged)
    assert (ranged["normal_low"] >= ranged["band_low"]).all()
    assert (ranged["normal_high"] <= ranged["band_high"]).all()
    assert (ranged["normal_low"] <= ranged["expected"]).all()
    assert (ranged["expected"] <= ranged["normal_high"]).all()
    unclipped = ranged[(ranged["band_high"] < 100) & (ranged["band_low"] > 0)]
    width = (unclipped["normal_high"] - unclipped["expected"]) / (
        unclipped["band_high"] - unclipped["expected"]
    )
    ratio = detect.NORMAL_SIGMA / detect.band_sigma(detect.DEFAULT_CONFIG)
    assert width.dropna().to_numpy() == pytest.approx(ratio)


def test_series_is_downsampled_keeping_the_peak(db: Database, sample: Sample) -> None:
    with db.session() as session:
        full = feed_series.episode_series(session, anomaly_id=sample.spike, now=sample.now)
        small = feed_series.episode_series(
            session, anomaly_id=sample.spike, now=sample.now, max_points=40
        )
    assert small.points == full.points > 40
    assert len(small.frame) <= 40
    assert small.downsampled
    assert small.frame["value"].max() == full.frame["value"].max()
    assert small.frame["period_end"].is_monotonic_increasing
    assert "downsampling" in small.note


def test_lttb_keeps_ends_and_extremes() -> None:
    times = pd.date_range("2026-01-01", periods=10_000, freq="5min", tz="UTC")
    values = np.sin(np.arange(10_000) / 50.0)
    values[7777] = 25.0
    frame = pd.DataFrame({"period_end": times, "value": values})
    kept = feed_series.lttb_indices(frame, 500)
    assert len(kept) == 500
    assert kept[0] == 0
    assert kept[-1] == 9999
    assert 7777 in kept


def test_display_window() -> None:
    now = pd.Timestamp("2026-11-25T12:00Z").to_pydatetime()
    start, end = feed_series.display_window(now - timedelta(hours=1), None, now=now)
    assert (start, end) == (now - timedelta(hours=1, days=1), now)
    start, end = feed_series.display_window(
        now - timedelta(days=20), now - timedelta(days=10), now=now
    )
    assert start == now - timedelta(days=34)  # context capped at 14 days
    assert end == now  # never beyond now


def _prb(session) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from services.db.models import Kpi

    return session.scalar(select(Kpi.id).where(Kpi.name == "prb_util_dl"))
