"""Calibration drift of the AI itself raises a heartbeat incident for the component's owner."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from incident_support import NOW, team_id
from sqlalchemy import delete, select

from services import calibration_drift, heartbeats
from services.db import Database
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    DailyAggregate,
    Element,
    Forecast,
    ForecastPoint,
    Incident,
    Kpi,
)

DN = "SubNetwork=Drift,MeContext=SITE-0900"


@pytest.fixture
def clean(db: Database) -> Iterator[Database]:
    """The seeded database; the elements (with their episodes and forecasts) go afterwards."""
    yield db
    with db.session(write=True) as session:
        ids = list(session.scalars(select(Element.id).where(Element.dn.like(f"{DN}%"))))
        for model in (AnomalyFeedback, ForecastPoint):
            session.execute(delete(model))
        for model in (Anomaly, Forecast, DailyAggregate):
            session.execute(delete(model).where(model.element_id.in_(ids)))
        session.execute(delete(Element).where(Element.id.in_(ids)))


def _element(session, suffix: str = "C1") -> Element:  # type: ignore[no-untyped-def]
    element = Element(
        dn=f"{DN},EUtranCellFDD={suffix}",
        name=f"SITE-0900 {suffix}",
        element_type="cell",
        domain="RAN",
        region="North",
    )
    session.add(element)
    session.flush()
    return element


def _kpi(session, name: str = "prb_util_dl") -> Kpi:  # type: ignore[no-untyped-def]
    return session.scalars(select(Kpi).where(Kpi.name == name)).one()


def add_verdicts(db: Database, *, confidence: float, confirmed: int, rejected: int) -> None:
    """Judged episodes: `confirmed` real ones and `rejected` "not an anomaly" ones."""
    with db.session(write=True) as session:
        element, kpi = _element(session), _kpi(session)
        for i in range(confirmed + rejected):
            at = NOW - timedelta(days=5, minutes=15 * i)
            episode = Anomaly(
                element_id=element.id,
                kpi_id=kpi.id,
                started_at=at,
                peak_at=at,
                observed=95.0,
                expected=50.0,
                band_low=40.0,
                band_high=60.0,
                score=9.0,
                confidence=confidence,
                severity="major",
                detector="robust_seasonal",
                model_version="test",
            )
            session.add(episode)
            session.flush()
            label = "true_anomaly" if i < confirmed else "not_anomaly"
            session.add(
                AnomalyFeedback(
                    anomaly_id=episode.id, label=label, created_at=NOW - timedelta(days=1)
                )
            )


def add_forecasts(db: Database, *, series: int, miss_every: int | None) -> None:
    """Daily forecasts of `series` cells; every `miss_every`-th actual falls outside the 80 %."""
    trained = datetime(2026, 11, 1, tzinfo=UTC)
    with db.session(write=True) as session:
        kpi = _kpi(session)
        for s in range(series):
            element = _element(session, f"C{s}")
            forecast = Forecast(
                element_id=element.id,
                kpi_id=kpi.id,
                fitted_at=trained + timedelta(hours=3),
                training_end=trained,
                model="prophet",
                status="ok",
            )
            session.add(forecast)
            session.flush()
            for lead in range(1, 15):
                ds = trained + timedelta(days=lead)
                session.add(
                    ForecastPoint(
                        forecast_id=forecast.id,
                        ds=ds,
                        yhat=50.0,
                        lower_80=45.0,
                        upper_80=55.0,
                        lower_95=40.0,
                        upper_95=60.0,
                    )
                )
                n = s * 14 + lead
                miss = miss_every is not None and n % miss_every == 0
                # Misses alternate sides: an interval can be wrong both ways.
                actual = (70.0 if n % 2 else 30.0) if miss else 50.0
                session.add(
                    DailyAggregate(
                        element_id=element.id,
                        kpi_id=kpi.id,
                        day=date(2026, 11, 1) + timedelta(days=lead),
                        busy_hour_value=actual,
                        busy_hour=20,
                        daily_mean=actual,
                        daily_max=actual,
                        samples=96,
                    )
                )


def drift_incidents(db: Database) -> dict[str, Incident]:
    with db.session() as session:
        rows = session.scalars(
            select(Incident).where(Incident.dedup_key.like(f"{heartbeats.DRIFT_KEY}%"))
        )
        return {(row.dedup_key or "").removeprefix(heartbeats.DRIFT_KEY): row for row in rows}


def test_overconfident_detector_pages_its_owner_and_recovery_is_noted(clean: Database) -> None:
    # The detector said 90 %; operators confirmed 10 of 60.
    add_verdicts(clean, confidence=0.9, confirmed=10, rejected=50)
    with clean.session() as session:
        drift = calibration_drift.detector_drift(session, now=NOW)
    assert drift.verdicts == 60
    assert drift.ece == pytest.approx(0.9 - 10 / 60)
    report = heartbeats.check_heartbeats(clean, now=NOW)
    found = drift_incidents(clean)
    assert set(found) == {"detector"}
    assert report.opened == [found["detector"].id]
    incident = found["detector"]
    assert "calibration drift" in incident.title
    assert incident.origin == "heartbeat"
    with clean.session() as session:
        # Routed to the detector's owner (the AI platform team), not to a network team.
        assert incident.team_id == team_id(session, "ai-platform")
    assert "operators confirmed 17%" in (incident.summary or "")
    # Re-checking does not open a second incident.
    again = heartbeats.check_heartbeats(clean, now=NOW + timedelta(minutes=1))
    assert again.opened == []
    assert incident.id in again.ongoing
    # Newer verdicts agree with the confidence: recovery goes on the open incident's timeline.
    with clean.session(write=True) as session:
        for row in session.scalars(select(AnomalyFeedback)):
            session.add(
                AnomalyFeedback(
                    anomaly_id=row.anomaly_id,
                    label="true_anomaly",
                    created_at=NOW - timedelta(hours=1),
                )
            )
    with clean.session(write=True) as session:
        for episode in session.scalars(select(Anomaly)):
            episode.confidence = 0.97
    healed = heartbeats.check_heartbeats(clean, now=NOW + timedelta(minutes=2))
    assert healed.recovered == [incident.id]


def test_few_verdicts_are_not_evidence_of_drift(clean: Database) -> None:
    add_verdicts(clean, confidence=0.9, confirmed=2, rejected=20)
    heartbeats.check_heartbeats(clean, now=NOW)
    assert drift_incidents(clean) == {}


def test_forecast_intervals_that_miss_page_the_forecaster_owner(clean: Database) -> None:
    add_forecasts(clean, series=30, miss_every=1)
    with clean.session() as session:
        drift = calibration_drift.forecast_drift(session, now=NOW)
    # Only the first week of each fit is judged: 30 series x 7 days.
    assert (drift.points, drift.series, drift.coverage) == (210, 30, 0.0)
    heartbeats.check_heartbeats(clean, now=NOW)
    found = drift_incidents(clean)
    assert set(found) == {"forecaster"}
    assert "held 0% of actual values" in found["forecaster"].title
    with clean.session() as session:
        assert found["forecaster"].team_id == team_id(session, "ai-platform")


def test_honest_forecast_intervals_raise_nothing(clean: Database) -> None:
    add_forecasts(clean, series=30, miss_every=5)
    with clean.session() as session:
        assert calibration_drift.forecast_drift(session, now=NOW).coverage == pytest.approx(
            0.8, abs=0.01
        )
    heartbeats.check_heartbeats(clean, now=NOW)
    assert drift_incidents(clean) == {}


def test_intervals_too_wide_are_drift_too(clean: Database) -> None:
    # Every actual inside: 100 % is not "safe", it means breach risk is overstated.
    add_forecasts(clean, series=30, miss_every=None)
    heartbeats.check_heartbeats(clean, now=NOW)
    assert set(drift_incidents(clean)) == {"forecaster"}
