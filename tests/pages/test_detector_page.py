"""Detector page: model facts, calibration against verdicts, job health and alert volume."""

from __future__ import annotations

import importlib
from datetime import timedelta

import plotly.graph_objects as go
import pytest
from anomaly_feed_support import Sample, add_episodes
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select

from services import kv
from services.anomaly import review
from services.anomaly.detect import DETECTOR, MODEL_VERSION
from services.db import Database
from services.db.models import Anomaly, AnomalyFeedback, JobRun, Kpi, utcnow
from services.errors import Forbidden


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    # Dash imported the page module when the app was created; take that very module.
    return importlib.import_module("pages.detector")


@pytest.fixture
def sample(db: Database) -> Sample:
    with db.session(write=True) as session:
        return add_episodes(session, series=False)


def judge(db: Database, sample: Sample, *, extra: int) -> None:
    """`extra` more episodes on cell A, each with a verdict; confident ones mostly confirmed."""
    now = utcnow()
    with db.session(write=True) as session:
        kpi = session.scalars(select(Kpi).where(Kpi.name == "prb_util_dl")).one()
        for i in range(extra):
            confidence = 0.3 + 0.6 * (i % 4) / 3
            row = Anomaly(
                element_id=sample.cell_a,
                kpi_id=kpi.id,
                started_at=now - timedelta(hours=i + 1),
                peak_at=now - timedelta(hours=i + 1),
                ended_at=now - timedelta(hours=i),
                observed=90.0,
                expected=55.0,
                band_low=45.0,
                band_high=65.0,
                score=5.0,
                confidence=confidence,
                severity="major",
                detector=DETECTOR,
                model_version=MODEL_VERSION,
            )
            session.add(row)
            session.flush()
            label = "true_anomaly" if confidence > 0.5 and i % 5 else "not_anomaly"
            session.add(AnomalyFeedback(anomaly_id=row.id, label=label, created_at=now))


def test_viewer_and_operator_are_refused(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    for role in ("viewer", "operator"):
        with signed_in(role):
            for callback in (
                page.load_model,
                page.load_calibration,
                page.load_health,
                page.load_volume,
            ):
                with pytest.raises(Forbidden):
                    run_callback(callback, None)
    assert set(page.PAGE_ROLES) == {"engineer", "admin", "executive"}


def test_model_facts_show_version_and_overrides(page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        kv.set_value(session, "anomaly.thresholds", {"kpi": {"prb_util_dl": 0.7}})
    with signed_in("executive"):
        text = text_of(run_callback(page.load_model, None))
    assert DETECTOR in text
    assert MODEL_VERSION in text
    assert "minimum calibrated confidence 0.50" in text
    assert "1 per-KPI and 0 per-use-case override(s)" in text
    assert "edit on Anomalies" in text


def test_calibration_empty_state_below_minimum(page, signed_in, db: Database, sample) -> None:  # type: ignore[no-untyped-def]
    judge(db, sample, extra=3)
    with signed_in("engineer"):
        tiles, figure, style, body, note = run_callback(page.load_calibration, None)
    assert style == {"display": "none"}
    assert figure == {}
    assert "needs at least 20 verdicts; 3 so far" in text_of(body)
    assert "n = 3" in note
    assert "Not an anomaly" in text_of(body)
    assert "needs at least 20 verdicts" in text_of(tiles)


def test_calibration_curve_with_enough_verdicts(page, signed_in, db: Database, sample) -> None:  # type: ignore[no-untyped-def]
    judge(db, sample, extra=24)
    with signed_in("admin"):
        tiles, figure, style, body, note = run_callback(page.load_calibration, None)
    assert style == {}
    assert isinstance(figure, go.Figure)
    assert all(isinstance(t, go.Scatter) for t in figure.data)  # SVG, not WebGL
    diagonal, curve = figure.data
    assert list(diagonal.x) == [0, 1]
    assert sum(curve.customdata[i][1] for i in range(len(curve.x))) == 24
    assert "n = 24" in note
    assert "Calibration error (ECE)" in text_of(tiles)
    assert "0." in text_of(tiles)
    assert "prb_util_dl" in text_of(body)


def test_health_shows_runs_and_lag(page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with db.session(write=True) as session:
        session.add(
            JobRun(
                job_id=review.JOB_ID,
                started_at=now - timedelta(minutes=1),
                finished_at=now,
                status="ok",
                rows=2,
                detail={"periods": 1, "reevaluated": 0, "opened": 2, "seconds": 1.25},
            )
        )
        kv.set_value(session, review.CURSOR_KEY, (now - timedelta(minutes=20)).isoformat())
    with signed_in("engineer"):
        tiles, runs = run_callback(page.load_health, None)
    assert "20 min" in text_of(tiles)
    assert "ok" in text_of(runs)
    assert "1.2" in text_of(runs) or "1.3" in text_of(runs)


def test_health_before_any_run(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        tiles, runs = run_callback(page.load_health, None)
    assert "no period evaluated yet" in text_of(tiles)
    assert "No detection runs recorded yet." in text_of(runs)


def test_volume_is_stacked_bars_by_severity(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        figure, note = run_callback(page.load_volume, None)
    assert all(isinstance(t, go.Bar) for t in figure.data)
    assert [t.name for t in figure.data] == ["critical", "major", "minor", "warning"]
    assert figure.layout.barmode == "stack"
    assert sum(sum(t.y) for t in figure.data) == 4  # add_episodes stores four in 30 days
    assert "4 episodes in 30 days" in note


def test_volume_without_episodes_says_so(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("executive"):
        figure, note = run_callback(page.load_volume, None)
    assert note == "no episodes opened in the last 30 days (UTC)"
    assert list(figure.layout.yaxis.range) == [0, 5]
