"""Detector review queries on SQLite and PostgreSQL: verdict calibration, volume, job health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import kv
from services.anomaly import review
from services.anomaly.calibration import expected_calibration_error
from services.anomaly.detect import DETECTOR, MODEL_VERSION
from services.db import Database, connect, upgrade_to_head
from services.db.models import Anomaly, AnomalyFeedback, Element, JobRun, Kpi
from services.seed import ensure_kpis

NOW = datetime(2026, 11, 25, 14, 7, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
        session.add(
            Element(
                dn="SubNetwork=N,ManagedElement=S1", name="S1", element_type="cell", domain="RAN"
            )
        )
    yield database
    database.dispose()


def episode(
    session: Session,
    *,
    kpi: str = "prb_util_dl",
    confidence: float = 0.8,
    severity: str = "major",
    started_at: datetime = NOW - timedelta(hours=3),
    version: str = MODEL_VERSION,
) -> int:
    """Store one episode as the detection service would (only the fields review reads matter)."""
    element = session.scalars(select(Element)).first()
    kpi_row = session.scalars(select(Kpi).where(Kpi.name == kpi)).one()
    assert element is not None
    row = Anomaly(
        element_id=element.id,
        kpi_id=kpi_row.id,
        started_at=started_at,
        peak_at=started_at,
        ended_at=None,
        observed=1.0,
        expected=0.0,
        band_low=-0.5,
        band_high=0.5,
        score=5.0,
        confidence=confidence,
        severity=severity,
        detector=DETECTOR,
        model_version=version,
    )
    session.add(row)
    session.flush()
    return row.id


def verdict(session: Session, anomaly_id: int, label: str, *, at: datetime = NOW) -> None:
    session.add(AnomalyFeedback(anomaly_id=anomaly_id, label=label, created_at=at))
    session.flush()


def test_reliability_and_ece_from_latest_verdicts(db: Database) -> None:
    """Bins and ECE match the calibration helpers; each episode counts once, latest verdict."""
    confidences = [0.15] * 5 + [0.55] * 10 + [0.95] * 10
    confirmed = [False] * 4 + [True] + [True] * 5 + [False] * 5 + [True] * 9 + [False]
    with db.session(write=True) as session:
        for conf, hit in zip(confidences, confirmed, strict=True):
            anomaly_id = episode(session, confidence=conf)
            # An earlier, opposite verdict is overruled by the later one.
            verdict(session, anomaly_id, "not_anomaly" if hit else "true_anomaly", at=NOW)
            label = (
                "true_anomaly" if hit else ("expected", "new_normal", "not_anomaly")[anomaly_id % 3]
            )
            verdict(session, anomaly_id, label, at=NOW + timedelta(minutes=5))
    with db.session() as session:
        result = review.calibration_review(session)
    assert result.n == 25
    assert result.enough
    assert result.current_version == 25
    table = result.reliability.set_index("bin_low")
    assert table.loc[0.1, "count"] == 5
    assert table.loc[0.1, "observed_rate"] == pytest.approx(0.2)
    assert table.loc[0.5, "observed_rate"] == pytest.approx(0.5)
    assert table.loc[0.9, "observed_rate"] == pytest.approx(0.9)
    assert int(result.reliability["count"].sum()) == 25
    expected = expected_calibration_error(np.array(confidences), np.array(confirmed, dtype=float))
    assert result.ece == pytest.approx(expected)
    assert result.ece == pytest.approx((5 * 0.05 + 10 * 0.05 + 10 * 0.05) / 25)
    assert result.by_label["true_anomaly"] == sum(confirmed)
    assert sum(result.by_label.values()) == 25


def test_latest_verdict_wins_and_precision_per_kpi(db: Database) -> None:
    with db.session(write=True) as session:
        a = episode(session, kpi="prb_util_dl", confidence=0.9)
        b = episode(session, kpi="prb_util_dl", confidence=0.7, version="1.0-old")
        c = episode(session, kpi="rrc_setup_sr", confidence=0.6)
        episode(session, kpi="rrc_setup_sr")  # never judged: not in the review
        verdict(session, a, "not_anomaly", at=NOW - timedelta(hours=1))
        verdict(session, a, "true_anomaly", at=NOW)
        verdict(session, b, "true_anomaly", at=NOW - timedelta(hours=1))
        verdict(session, b, "new_normal", at=NOW)
        verdict(session, c, "expected", at=NOW)
    with db.session() as session:
        latest = review.latest_verdicts(session).set_index("anomaly_id")
        result = review.calibration_review(session)
    assert latest.loc[a, "label"] == "true_anomaly"
    assert latest.loc[b, "label"] == "new_normal"
    assert result.n == 3
    assert not result.enough
    assert result.current_version == 2
    assert result.by_label == {"true_anomaly": 1, "not_anomaly": 0, "expected": 1, "new_normal": 1}
    by_kpi = {p.kpi: p for p in result.by_kpi}
    assert (by_kpi["prb_util_dl"].judged, by_kpi["prb_util_dl"].confirmed) == (2, 1)
    assert by_kpi["prb_util_dl"].precision == pytest.approx(0.5)
    assert by_kpi["rrc_setup_sr"].precision == 0.0


def test_no_verdicts_is_an_empty_review(db: Database) -> None:
    with db.session() as session:
        result = review.calibration_review(session)
    assert result.n == 0
    assert np.isnan(result.ece)
    assert result.by_kpi == []
    assert int(result.reliability["count"].sum()) == 0


def test_daily_volume_by_severity_keeps_zero_days(db: Database) -> None:
    with db.session(write=True) as session:
        episode(session, severity="critical", started_at=NOW - timedelta(hours=1))
        episode(session, severity="critical", started_at=NOW.replace(hour=0, minute=0))
        episode(session, severity="minor", started_at=NOW - timedelta(days=2))
        # Just before midnight UTC belongs to the previous day.
        episode(
            session,
            severity="minor",
            started_at=NOW.replace(hour=0, minute=0) - timedelta(minutes=1),
        )
        episode(session, severity="warning", started_at=NOW - timedelta(days=40))  # out of window
    with db.session() as session:
        volume = review.daily_volume(session, now=NOW, days=30)
    assert volume["day"].nunique() == 30
    assert volume["day"].max() == NOW.date()
    assert int(volume["episodes"].sum()) == 4
    counts = volume.set_index(["day", "severity"])["episodes"]
    assert counts[(NOW.date(), "critical")] == 2
    assert counts[(NOW.date() - timedelta(days=1), "minor")] == 1
    assert counts[(NOW.date() - timedelta(days=2), "minor")] == 1
    assert counts[(NOW.date(), "major")] == 0
    assert list(dict.fromkeys(volume["severity"])) == ["critical", "major", "minor", "warning"]


def test_job_runs_and_lag(db: Database) -> None:
    with db.session(write=True) as session:
        session.add(
            JobRun(
                job_id=review.JOB_ID,
                started_at=NOW - timedelta(minutes=2),
                finished_at=NOW - timedelta(minutes=2) + timedelta(seconds=3),
                status="ok",
                rows=4,
                detail={
                    "periods": 1,
                    "reevaluated": 2,
                    "opened": 3,
                    "seconds": 2.5,
                    "failures": ["element 7: ValueError"],
                },
            )
        )
        session.add(
            JobRun(
                job_id=review.JOB_ID,
                started_at=NOW - timedelta(minutes=1),
                finished_at=NOW - timedelta(seconds=50),
                status="failed",
                detail={},
                error="OperationalError: database is locked",
            )
        )
        session.add(JobRun(job_id="ingest.health", started_at=NOW, status="ok"))
    with db.session() as session:
        runs = review.detection_runs(session, limit=10)
        assert review.detection_lag(session, now=NOW) == review.Lag(cursor=None, behind=None)
    assert [r.status for r in runs] == ["failed", "ok"]
    assert runs[0].periods is None
    assert runs[0].error == "OperationalError: database is locked"
    ok = runs[1]
    assert (ok.periods, ok.reevaluated, ok.opened, ok.failures, ok.seconds) == (1, 2, 3, 1, 2.5)
    assert ok.started_at == NOW - timedelta(minutes=2)
    with db.session(write=True) as session:
        kv.set_value(session, review.CURSOR_KEY, (NOW - timedelta(minutes=37)).isoformat())
    with db.session() as session:
        lag = review.detection_lag(session, now=NOW)
    assert lag.cursor == NOW - timedelta(minutes=37)
    assert lag.behind == timedelta(minutes=37)


def test_model_summary_counts_overrides(db: Database) -> None:
    with db.session(write=True) as session:
        kv.set_value(
            session, "anomaly.thresholds", {"kpi": {"prb_util_dl": 0.7, "rrc_setup_sr": 0.6}}
        )
    with db.session() as session:
        summary = review.model_summary(session)
    assert summary.detector == DETECTOR
    assert summary.model_version == MODEL_VERSION
    assert summary.default_threshold == 0.5
    assert summary.kpi_overrides == 2
    assert summary.use_case_overrides == 0
    assert summary.calibration_version
    assert summary.calibration_fitted_on
