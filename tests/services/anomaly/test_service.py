"""The detection service end to end on SQLite and PostgreSQL: periods in, episodes out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update

from services import kv
from services.anomaly import calibration, detect, history, persist, scoring, service
from services.anomaly.thresholds import SETTING_KEY
from services.db import Database, connect, upgrade_to_head
from services.db.models import (
    Anomaly,
    ChangeWindow,
    DataHealthEvent,
    Element,
    Kpi,
    ReevaluationMark,
)
from services.ingest import pipeline
from services.seed import ensure_kpis

STEP = timedelta(minutes=15)
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW = END + timedelta(minutes=16)
SITE = "SubNetwork=North,ManagedElement=SITE-0001"
CELLS = [f"{SITE},EUtranCellFDD=C{i}" for i in (1, 2, 3)]
PERIODS = 144  # a day and a half of 15-minute periods
SPIKE = [END - STEP * k for k in (10, 9, 8)]
LATE_PERIOD = END - STEP * 5


def fake_calibrated(score: np.ndarray | float) -> np.ndarray:
    """A fixed score -> confidence map, so these tests do not move with the shipped table."""
    magnitude = np.abs(np.asarray(score, dtype=float))
    return np.where(np.isnan(magnitude), 0.0, np.clip((magnitude - 4.0) / 8.0, 0.0, 0.99))


def fake_detect(matrix: pd.DataFrame, targets: pd.DatetimeIndex, config=None) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """A plain detector with the real one's output shape: median of the last 12 periods, sigma 1.5.

    The service is tested against this fixed method so its tests do not move when the real
    detector is retuned (`test_real_detector_*` uses the real one).
    """
    columns = pd.DatetimeIndex(matrix.columns)
    parts = []
    for target in targets:
        past = matrix.loc[:, (columns < target) & (columns >= target - 12 * STEP)]
        observed = matrix[target] if target in columns else pd.Series(np.nan, index=matrix.index)
        history = past.notna().sum(axis=1)
        expected = past.median(axis=1)
        score = (observed - expected) / 1.5
        status = np.where(history >= 6, np.where(observed.isna(), "missing", "ok"),
                          "insufficient_data")  # fmt: skip
        parts.append(
            pd.DataFrame(
                {
                    "series": matrix.index,
                    "period_end": target,
                    "observed": observed.to_numpy(),
                    "expected": expected.to_numpy(),
                    "band_low": (expected - 4.5).to_numpy(),
                    "band_high": (expected + 4.5).to_numpy(),
                    "spread": 1.5,
                    "score": score.to_numpy(),
                    "history": history.to_numpy(),
                    "status": status,
                    "confidence": np.where(status == "ok", fake_calibrated(score.to_numpy()), 0.0),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(autouse=True)
def fixed_detector(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring.calibration, "calibrated", fake_calibrated)
    if "real_detector" not in request.node.name:
        monkeypatch.setattr(detect, "detect_series_matrix", fake_detect)


def fixed_threshold(database: Database) -> None:
    """A known default threshold (the product's default is tuned elsewhere)."""
    with database.session(write=True) as session:
        kv.set_value(session, SETTING_KEY, {"default": 0.5})


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
        site = Element(dn=SITE, name="SITE-0001", element_type="site", domain="RAN",
                       region="North", is_new=False)  # fmt: skip
        session.add(site)
        session.flush()
        for i, dn in enumerate(CELLS, start=1):
            session.add(
                Element(dn=dn, name=f"SITE-0001-C{i}", element_type="cell", domain="RAN",
                        region="North", vendor="Ericsson", technology="LTE",
                        parent_id=site.id, is_new=False)
            )  # fmt: skip
    fixed_threshold(database)
    yield database
    database.dispose()


def series(*, periods: int = PERIODS, spikes: dict | None = None, hold: set | None = None):
    """Flat noisy telemetry for three cells; spikes maps (cell, kpi, period) -> added value."""
    rng = np.random.default_rng(3)
    rows = []
    for p in range(periods):
        period = END - STEP * (periods - 1 - p)
        for c, dn in enumerate(CELLS):
            for kpi, level in (("prb_util_dl", 40.0), ("active_users", 120.0)):
                if hold and (c, kpi, period) in hold:
                    continue
                value = level + rng.normal(0, 1.0) + (spikes or {}).get((c, kpi, period), 0.0)
                rows.append((dn, kpi, period, round(value, 3)))
    return pd.DataFrame(rows, columns=["dn", "kpi", "period_end", "value"])


def standard_spikes() -> dict:
    spikes = {(0, "prb_util_dl", p): 45.0 for p in SPIKE}
    spikes.update({(1, "prb_util_dl", p): 40.0 for p in SPIKE})
    spikes.update({(0, "active_users", p): 200.0 for p in SPIKE})
    return spikes


def load(db: Database, frame: pd.DataFrame, *, at: datetime = END + timedelta(minutes=10)):
    pipeline.ingest_records(db, source="test-feed", records=frame, received_at=at)


def episodes(db: Database) -> list[Anomaly]:
    with db.session() as session:
        return list(session.scalars(select(Anomaly).order_by(Anomaly.element_id, Anomaly.kpi_id)))


def names(db: Database) -> dict[int, str]:
    with db.session() as session:
        return dict(session.execute(select(Element.id, Element.name)).all())


def test_spikes_become_explained_episodes_grouped_by_site(db: Database) -> None:
    load(db, series(spikes=standard_spikes()))
    run = service.run_detection(db, now=NOW)
    assert run.failures == []
    assert run.periods > 100
    by_name = {(names(db)[a.element_id], a.explanation["summary"].split()[0]): a
               for a in episodes(db)}  # fmt: skip
    assert set(by_name) == {
        ("SITE-0001-C1", "prb_util_dl"),
        ("SITE-0001-C1", "active_users"),
        ("SITE-0001-C2", "prb_util_dl"),
    }
    c1 = by_name[("SITE-0001-C1", "prb_util_dl")]
    assert c1.started_at == SPIKE[0]
    assert c1.ended_at == SPIKE[-1]
    assert SPIKE[0] <= c1.peak_at <= SPIKE[-1]
    assert c1.observed > 80
    assert 35 < c1.expected < 45
    assert c1.band_low < c1.expected < c1.band_high
    assert c1.score > 8
    # Periods open the episode at the threshold; the episode reports its own calibrated
    # confidence (peak period confidence, 3 periods, corroborated by active_users).
    peak_confidence = c1.explanation["period_confidence"]
    assert 0.5 <= peak_confidence <= 1.0
    table = calibration.load_episode_table()
    assert c1.confidence == pytest.approx(table.confidence(peak_confidence, 3, 1)[0], abs=1e-4)
    # Tracking goes on from the periods' confidence, never from the episode's own.
    assert persist.state_from_row(c1).confidence == peak_confidence
    assert persist.state_from_row(c1).peak.confidence == peak_confidence
    assert c1.detector == detect.DETECTOR
    assert c1.model_version == detect.MODEL_VERSION
    assert c1.severity in ("critical", "major", "minor", "warning")
    assert c1.severity_score > 0
    assert c1.related_kpis == ["active_users"]
    assert c1.status == "open"
    assert not c1.suppressed
    assert not c1.revised
    assert set(c1.data_quality) >= {"flags", "factor", "history_points", "text"}
    doc = c1.explanation
    assert doc["direction"] == "above"
    assert doc["seasonal"]["slot"].startswith("Friday")
    assert [k["kpi"] for k in doc["contributing_kpis"]] == ["active_users"]
    assert doc["periods"] == 3
    assert doc["cells"] == 2  # two cells of the site in one group
    # One group for the simultaneous episodes on the site.
    keys = {a.group_key for a in by_name.values()}
    assert len(keys) == 1
    assert keys.pop().startswith(f"site:{SITE}:")
    # The users of the busy cell raise the reach: its episode outranks its neighbour's.
    c2 = by_name[("SITE-0001-C2", "prb_util_dl")]
    assert c1.severity_score > c2.severity_score


def test_rerunning_periods_changes_nothing(db: Database) -> None:
    load(db, series(spikes=standard_spikes()))
    service.run_detection(db, now=NOW)
    before = [(a.id, a.started_at, a.ended_at, a.score, a.confidence, a.group_key)
              for a in episodes(db)]  # fmt: skip
    again = service.run_detection(db, now=NOW)
    assert again.periods == 0
    # Going back over the same days (a backfill) finds the same episodes, adds none.
    service.backfill(db, days=2, now=NOW)
    after = [(a.id, a.started_at, a.ended_at, a.score, a.confidence, a.group_key)
             for a in episodes(db)]  # fmt: skip
    assert after == before


def test_insufficient_data_is_never_an_anomaly(db: Database) -> None:
    spikes = {(0, "prb_util_dl", END): 500.0, (1, "active_users", END): 900.0}
    load(db, series(periods=4, spikes=spikes))
    run = service.run_detection(db, now=NOW)
    assert run.periods == 4
    assert episodes(db) == []


def test_episode_in_a_maintenance_window_is_suppressed_and_annotated(db: Database) -> None:
    with db.session(write=True) as session:
        session.add(ChangeWindow(title="Antenna swap", kind="maintenance",
                                 scope={"elements": [SITE]}, starts_at=SPIKE[0] - STEP,
                                 ends_at=SPIKE[-1] + STEP))  # fmt: skip
        session.add(ChangeWindow(title="Year-end freeze", kind="freeze", scope={},
                                 starts_at=END - timedelta(days=3), ends_at=END))  # fmt: skip
    load(db, series(spikes=standard_spikes()))
    service.run_detection(db, now=NOW)
    found = episodes(db)
    assert found
    for anomaly in found:
        assert anomaly.suppressed
        assert anomaly.change_window_id is not None
        assert "Antenna swap" in (anomaly.suppressed_reason or "")
        kinds = {c["kind"] for c in anomaly.explanation["changes"]}
        assert kinds == {"maintenance", "freeze"}


def test_suspect_data_lowers_confidence_and_says_so(db: Database) -> None:
    frame = series(spikes=standard_spikes())
    frame["suspect"] = (frame["dn"] == CELLS[1]) & frame["period_end"].isin(SPIKE)
    load(db, frame)
    service.run_detection(db, now=NOW)
    c2 = next(a for a in episodes(db) if names(db)[a.element_id] == "SITE-0001-C2")
    assert "suspect" in c2.data_quality["flags"]
    assert c2.data_quality["factor"] < 1.0
    assert c2.explanation["period_confidence"] <= 0.99 * c2.data_quality["factor"] + 1e-9
    assert "suspect" in c2.explanation["data_quality"]["text"]


def test_late_data_and_corrections_revise_episodes(db: Database) -> None:
    spikes = standard_spikes()
    spikes[(2, "prb_util_dl", LATE_PERIOD)] = 60.0
    load(db, series(spikes=spikes, hold={(2, "prb_util_dl", LATE_PERIOD)}))
    service.run_detection(db, now=NOW)
    assert not any(names(db)[a.element_id] == "SITE-0001-C3" for a in episodes(db))
    c1 = next(a for a in episodes(db) if a.kpi_id == _kpi(db, "prb_util_dl")
              and names(db)[a.element_id] == "SITE-0001-C1")  # fmt: skip
    later = NOW + timedelta(hours=2)
    late = pd.DataFrame([(CELLS[2], "prb_util_dl", LATE_PERIOD, 100.0),
                         (CELLS[0], "prb_util_dl", c1.peak_at, 99.0)],
                        columns=["dn", "kpi", "period_end", "value"])  # fmt: skip
    load(db, late, at=later)
    with db.session() as session:
        assert session.scalar(
            select(ReevaluationMark).where(ReevaluationMark.processed_at.is_(None))
        )
    run = service.run_detection(db, now=later)
    assert run.reevaluated == 2
    assert run.revised >= 2
    found = {(names(db)[a.element_id], a.kpi_id): a for a in episodes(db)}
    c3 = found[("SITE-0001-C3", _kpi(db, "prb_util_dl"))]
    assert c3.revised
    assert c3.started_at == LATE_PERIOD
    assert "revised" in c3.data_quality["flags"]
    assert c3.explanation["revisions"][0]["reason"] == "late"
    revised_c1 = found[("SITE-0001-C1", _kpi(db, "prb_util_dl"))]
    assert revised_c1.id == c1.id
    assert revised_c1.revised
    assert revised_c1.observed == pytest.approx(99.0)
    assert revised_c1.explanation["revisions"][0]["reason"] == "correction"
    with db.session() as session:
        pending = session.scalars(
            select(ReevaluationMark).where(ReevaluationMark.processed_at.is_(None))
        ).all()
    assert pending == []
    # Re-running after the revision changes nothing more.
    assert service.run_detection(db, now=later).revised == 0


def test_one_failing_kpi_does_not_stop_the_others(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(db, series(spikes=standard_spikes()))
    users = _kpi(db, "active_users")
    real = history.load_lags

    def flaky(session, *, kpi_id, **kwargs):  # type: ignore[no-untyped-def]
        if kpi_id == users:
            raise RuntimeError("disk on fire")
        return real(session, kpi_id=kpi_id, **kwargs)

    monkeypatch.setattr(history, "load_lags", flaky)
    run = service.run_detection(db, now=NOW)
    assert any("active_users" in f for f in run.failures)
    assert {a.kpi_id for a in episodes(db)} == {_kpi(db, "prb_util_dl")}


def test_acknowledged_episode_that_ends_becomes_resolved(db: Database) -> None:
    frame = series(spikes=standard_spikes())
    load(db, frame[frame["period_end"] <= SPIKE[-1]])
    service.run_detection(db, now=SPIKE[-1] + timedelta(minutes=16))
    with db.session(write=True) as session:
        session.execute(update(Anomaly).values(status="acknowledged"))
    assert all(a.ended_at is None for a in episodes(db))
    load(db, frame[frame["period_end"] > SPIKE[-1]])
    service.run_detection(db, now=NOW)
    assert {a.status for a in episodes(db)} == {"resolved"}


def test_job_is_registered(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from testkit import settings_for

    from services.jobs import standard_jobs

    jobs = {job.id: job for job in standard_jobs(db, settings_for(tmp_path))}
    job = jobs[service.JOB_ID]
    assert job.every_seconds == 60
    load(db, series(spikes=standard_spikes()))
    result = job.func()
    assert result.rows >= 3
    with db.session() as session:
        assert kv.get_value(session, service.CURSOR_KEY) is not None


def _kpi(db: Database, name: str) -> int:
    return {k.name: k.id for k in _kpis(db)}[name]


def _kpis(db: Database) -> list[scoring.KpiInfo]:
    with db.session() as session:
        return scoring.kpi_infos(session)


def test_cli_backfill_evaluates_stored_history(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from services.cli import cli
    from services.db.models import utcnow

    load(db, series(spikes=standard_spikes()))
    # Two days more than the time since END, to the second: the window then starts before
    # the stored day and a half whatever the time of day (whole days would cut it short
    # when the clock's time of day is just before END's).
    days = (utcnow() - END).total_seconds() / 86400 + 2
    env = {"BEACON_DATA_DIR": str(tmp_path), "BEACON_SIMULATOR": "0",
           "BEACON_ADMIN_PASSWORD": "admin-pass-123", "BEACON_SECRET_KEY": None}  # fmt: skip
    result = CliRunner().invoke(
        cli,
        ["--database-url", db.url, "anomalies", "backfill", "--days", str(days)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["periods"] >= PERIODS - 1  # every stored period that has a predecessor
    assert summary["opened"] == len(episodes(db)) >= 3


def test_new_elements_graduate_once_scored_on_their_own_history(db: Database) -> None:
    with db.session(write=True) as session:
        session.execute(update(Element).where(Element.dn == CELLS[2]).values(is_new=True))
    load(db, series(spikes=standard_spikes()))
    service.run_detection(db, now=NOW)
    with db.session() as session:
        assert session.scalar(select(Element.is_new).where(Element.dn == CELLS[2])) is False


def test_real_detector_finds_the_spikes(db: Database) -> None:
    load(db, series(spikes=standard_spikes()))
    run = service.run_detection(db, now=NOW)
    assert run.failures == []
    prb = _kpi(db, "prb_util_dl")
    found = [a for a in episodes(db) if a.kpi_id == prb and a.started_at in SPIKE]
    assert {names(db)[a.element_id] for a in found} == {"SITE-0001-C1", "SITE-0001-C2"}
    for anomaly in found:
        assert anomaly.score > 0
        assert anomaly.detector == detect.DETECTOR


def test_reviewed_new_normal_rebaselines_the_series(db: Database) -> None:
    # C1 and C2 both step up by 25 for good; a review declared C1's new level normal.
    shift = END - STEP * 20
    steps = {(c, "prb_util_dl", END - STEP * k): 25.0 for c in (0, 1) for k in range(21)}
    load(db, series(spikes=steps))
    ids = {name: i for i, name in names(db).items()}
    with db.session(write=True) as session:
        prb = session.scalars(select(Kpi.id).where(Kpi.name == "prb_util_dl")).one()
        session.add(
            DataHealthEvent(
                kind="new_normal",
                severity="info",
                element_id=ids["SITE-0001-C1"],
                kpi_id=prb,
                detected_at=NOW,
                summary="Reviewed as a new normal",
                details={"origin": "disagreement_review", "since": shift.isoformat()},
            )
        )
    run = service.run_detection(db, now=NOW)
    assert run.failures == []
    opened = {(names(db)[a.element_id], a.kpi_id): a for a in episodes(db)}
    # C2 still alerts on the step; C1's history before the new normal no longer counts.
    assert opened[("SITE-0001-C2", prb)].started_at == shift
    assert ("SITE-0001-C1", prb) not in opened


def test_real_detector_on_a_networks_first_period_fails_nothing(db: Database) -> None:
    # One stored period: nothing to compare with yet, which is not an error.
    load(db, series(periods=1))
    run = service.run_detection(db, now=NOW)
    assert run.failures == []
    assert episodes(db) == []
