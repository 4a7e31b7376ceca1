"""Detector page in a real browser on stored detector output: eight simulated days, real runs.

The simulator delivers eight days through the real ingest pipeline, the scheduler's own
recording wrapper runs the detection job until it has caught up, and an operator's verdicts
are given through the feedback action, judged against the simulator's ground truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dash.testing.composite import DashComposite
from e2e_support import (
    DESK,
    WALL,
    ServerErrors,
    clear_problems,
    full_page_screenshot,
    open_page,
    page_problems,
    screenshot,
)
from sqlalchemy import select
from testkit import add_user, settings_for

from app import create_app
from services import jobs, scheduler
from services.anomaly import actions, review
from services.anomaly.calibration import expected_calibration_error
from services.audit import Actor
from services.config import Settings
from services.db import Database
from services.db.models import Anomaly, Element, JobRun
from services.ingest.simfeed import SimulatorFeed

pytestmark = pytest.mark.browser

DAYS = 8  # the seasonal baseline needs a few days before episodes appear
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
OPERATOR = Actor(name="e2e-judge", role="operator")


@pytest.fixture(scope="module")
def e2e_settings(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """This module's data: eight simulated days, detection caught up, verdicts given."""
    data_dir = tmp_path_factory.mktemp("e2e-detector")
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, data_dir / name)
    settings = settings_for(data_dir)
    db = create_app(settings).server.extensions["beacon"].db
    feed = SimulatorFeed(db, settings.with_overrides(sim_backfill_days=DAYS))
    feed.prepare()
    feed.catch_up()
    for _ in range(5):
        run = scheduler.run_recorded(db, review.JOB_ID, lambda: jobs.detect_anomalies(db, settings))
        if run is None or not run.detail.get("periods"):
            break
    add_user(db, OPERATOR.name, "operator")
    incidents = feed.simulator.incidents_between(feed.anchor, pd.Timestamp.now(tz="UTC"))
    with db.session(write=True) as session:
        judge(session, incidents)
    db.dispose()
    return settings


def judge(session, incidents: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    """An operator's verdict on each episode: confirmed when it overlaps an injected incident."""
    truth: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for row in incidents.itertuples(index=False):
        for dn in (row.dn, *row.related_dns):
            truth.setdefault(dn, []).append((row.start, row.end))
    episodes = session.execute(
        select(Anomaly.id, Element.dn, Anomaly.started_at, Anomaly.ended_at, Anomaly.suppressed)
        .join(Element, Element.id == Anomaly.element_id)
        .order_by(Anomaly.id)
    ).all()
    for anomaly_id, dn, start, end, suppressed in episodes:
        end = end or start
        hit = any(lo <= end and hi >= start for lo, hi in truth.get(dn, []))
        label = "true_anomaly" if hit else "expected" if suppressed else "not_anomaly"
        actions.give_feedback(session, anomaly_id=anomaly_id, label=label, note="", actor=OPERATOR)


def record_calibration(db: Database) -> None:
    """What the page's reliability view measures, and the same for the peak period confidence
    the episodes reported before episode calibration (test-artifacts, for BENCHMARKS.md)."""
    with db.session() as session:
        result = review.calibration_review(session)
        verdicts = review.latest_verdicts(session)
        docs = dict(session.execute(select(Anomaly.id, Anomaly.explanation)).all())
    peak = np.array([(docs[i] or {}).get("period_confidence", c) for i, c in
                     zip(verdicts["anomaly_id"], verdicts["confidence"], strict=True)])  # fmt: skip
    hit = (verdicts["label"] == "true_anomaly").to_numpy(dtype=float)
    body = {
        "judged_episodes": int(result.n),
        "ece_episode_confidence": round(float(result.ece), 4),
        "ece_peak_period_confidence": round(expected_calibration_error(peak, hit), 4),
        "share_confirmed": round(float(hit.mean()), 4),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "e2e-detector-calibration.json").write_text(json.dumps(body, indent=1))


def test_detector_page_on_stored_output(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database
) -> None:
    """Curve, runs and volume drawn from stored data; screenshots at desk and 1920×1080."""
    with e2e_db.session() as session:
        judged = review.calibration_review(session).n
        runs = session.scalars(select(JobRun).where(JobRun.job_id == review.JOB_ID)).all()
    assert judged >= review.MIN_VERDICTS
    assert runs
    record_calibration(e2e_db)
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "detector-review-desk"), (WALL, "detector-review-1920")):
        open_page(dash_duo, "/detector", size=size)
        dash_duo.wait_for_element("#detector-reliability .main-svg")
        screenshot(dash_duo, name)
    full_page_screenshot(dash_duo, "detector-review-desk-full")
    dash_duo.wait_for_contains_text("#detector-calibration-note", f"n = {judged}")
    dash_duo.wait_for_contains_text("#detector-runs", "ok")
    assert dash_duo.find_elements("#detector-reliability .scatterlayer .trace")
    assert not dash_duo.find_elements("#detector-reliability canvas.gl-canvas")
    assert dash_duo.find_elements("#detector-volume .barlayer .trace")
    assert not page_problems(dash_duo, server_errors)


def test_simulated_episode_shows_its_normal_range(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database
) -> None:
    """A detected episode's chart shades the normal range and draws the alert threshold apart."""
    with e2e_db.session() as session:
        ended = session.scalars(select(Anomaly).where(Anomaly.ended_at.is_not(None))).all()
        # The longest episode on an element with its own history: what a congestion looks like.
        own = [a for a in ended if "cold_start" not in (a.data_quality or {}).get("flags", [])]
        top = max(own or ended, key=lambda a: ((a.explanation or {}).get("periods", 1), a.score))
    clear_problems(dash_duo, server_errors)
    open_page(dash_duo, f"/anomalies/{top.id}", size=DESK)
    dash_duo.wait_for_element("#anomaly-episode-chart .main-svg")
    dash_duo.wait_for_contains_text("#anomaly-episode-chart", "normal range (expected ± 3σ")
    dash_duo.wait_for_contains_text("#anomaly-episode-chart", "alert threshold")
    screenshot(dash_duo, "anomaly-episode-simulated-desk")
    full_page_screenshot(dash_duo, "anomaly-episode-simulated-desk-full")
    page = dash_duo.find_element(".page").text
    assert "Normal range" in page
    assert "Alert threshold" in page
    assert not page_problems(dash_duo, server_errors)
