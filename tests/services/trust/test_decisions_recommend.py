"""Raising recommendations from anomaly episodes and breach risks, per use-case trigger."""

from __future__ import annotations

from datetime import timedelta

import decisions_support as kit
import pytest
from decisions_support import CELL, CELL_2, LINK, NOW, anomaly, audit_trail, element, measure
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import CapacityRisk, Forecast, Recommendation
from services.decisions import recommend
from services.errors import NotFound

pytestmark = pytest.mark.xdist_group("decisions-recommend")
dec_db = kit.dec_db
session = kit.session


def test_congestion_episode_raises_a_load_balancing_recommendation(session: Session) -> None:
    for dn, users in (
        (CELL, 120.0),
        ("SubNetwork=North,ManagedElement=SITE-0001,NRCellDU=N1", 80.0),
    ):
        measure(session, dn, "active_users", users, at=NOW - timedelta(minutes=15))
    episode = anomaly(session, kpi="prb_util_dl", observed=97.0, expected=55.0, severity="major")
    [rec] = recommend.raise_for_anomaly(session, anomaly_id=episode.id, now=NOW)
    assert rec.action == "lb_param_change"
    assert rec.state == "open"
    assert rec.maturity_level == 2
    assert rec.anomaly_id == episode.id
    assert rec.element_id == element(session, CELL).id
    assert rec.confidence == 0.9
    assert rec.severity == "major"
    assert rec.rationale == "prb_util_dl is 97, typically 55."
    assert rec.parameters["parameter"] == "lb_offload_pct"
    assert rec.parameters["value"] == 30
    assert rec.blast_radius_cells == 3  # the site's three cells share the load
    assert rec.blast_radius_users == 200
    assert rec.rollback_plan["parameters"]["value"] == 0
    assert rec.expires_at == NOW + timedelta(hours=2)
    assert rec.explanation["source"] == {"kind": "anomaly", "id": episode.id}
    assert audit_trail(session, object_type="recommendation", object_id=rec.id) == [
        "recommendation.raise"
    ]
    # The same episode is never raised twice, nor a second one on the element while one waits.
    assert recommend.raise_for_anomaly(session, anomaly_id=episode.id, now=NOW) == []
    again = anomaly(session, kpi="prb_util_ul", observed=95.0, expected=40.0)
    assert recommend.raise_for_anomaly(session, anomaly_id=again.id, now=NOW) == []


def test_each_trigger_matches_its_own_pattern(session: Session) -> None:
    sleeping = anomaly(session, dn=CELL_2, kpi="active_users", observed=0.0, expected=150.0)
    lossy = anomaly(session, dn=LINK, kpi="packet_loss_pct", observed=4.0, expected=0.1)
    busy_users = anomaly(session, dn=CELL_2, kpi="dl_throughput_mbps", observed=900, expected=300)
    [restart] = recommend.raise_for_anomaly(session, anomaly_id=sleeping.id, now=NOW)
    [reroute] = recommend.raise_for_anomaly(session, anomaly_id=lossy.id, now=NOW)
    assert (restart.action, restart.blast_radius_cells) == ("cell_restart", 1)
    assert reroute.action == "traffic_reroute"
    assert reroute.state == "open"
    assert reroute.blast_radius_cells == 3  # the cells of the site behind the link
    # Throughput above normal is good news: no use case acts on it.
    assert recommend.raise_for_anomaly(session, anomaly_id=busy_users.id, now=NOW) == []


def test_low_confidence_suppressed_and_disabled_episodes_raise_nothing(session: Session) -> None:
    weak = anomaly(session, confidence=0.3)
    assert recommend.raise_for_anomaly(session, anomaly_id=weak.id, now=NOW) == []
    kit.use_case(session, "cell_congestion_lb", enabled=False)
    strong = anomaly(session, dn=CELL_2, confidence=0.95)
    assert recommend.raise_for_anomaly(session, anomaly_id=strong.id, now=NOW) == []
    with pytest.raises(NotFound):
        recommend.raise_for_anomaly(session, anomaly_id=999_999, now=NOW)


def test_shadow_use_case_records_without_asking_anyone(session: Session) -> None:
    kit.use_case(session, "cell_congestion_lb", maturity_level=0)
    [rec] = recommend.raise_for_anomaly(session, anomaly_id=anomaly(session).id, now=NOW)
    assert rec.state == "shadow"
    assert rec.maturity_level == 0


def _risk(session: Session, *, p30: float, p60: float, p90: float) -> CapacityRisk:
    cell = element(session, CELL)
    forecast = Forecast(
        element_id=cell.id,
        kpi_id=kit.kpi_id(session, "prb_util_dl"),
        fitted_at=NOW,
        model="prophet",
        model_version="p-1",
        status="ok",
        is_current=True,
        backtest={"mape": 0.08, "coverage_80": 0.79},
    )
    session.add(forecast)
    session.flush()
    risk = CapacityRisk(
        forecast_id=forecast.id,
        element_id=cell.id,
        kpi_id=forecast.kpi_id,
        threshold=80.0,
        p_breach_30=p30,
        p_breach_60=p60,
        p_breach_90=p90,
        breach_date=NOW + timedelta(days=40),
        computed_at=NOW,
    )
    session.add(risk)
    session.flush()
    return risk


def test_breach_risk_raises_a_carrier_add_ticket(session: Session) -> None:
    risk = _risk(session, p30=0.2, p60=0.55, p90=0.83)
    [rec] = recommend.raise_for_risk(session, risk_id=risk.id, now=NOW)
    assert rec.action == "carrier_add_ticket"
    assert rec.forecast_id == risk.forecast_id
    assert rec.confidence == 0.83
    assert rec.severity == "minor"
    assert rec.expires_at == NOW + timedelta(days=14)
    assert "20% in 30 days, 55% in 60, 83% in 90" in rec.rationale
    assert rec.explanation["data_quality"]["backtest"] == {"coverage_80": 0.79, "mape": 0.08}
    assert rec.parameters["breach_date"] == (NOW + timedelta(days=40)).isoformat()
    # Rejected today, refitted tomorrow: the ticket is not proposed again within its expiry.
    rec.state = "rejected"
    refit = _risk(session, p30=0.25, p60=0.6, p90=0.85)
    assert recommend.raise_for_risk(session, risk_id=refit.id, now=NOW + timedelta(days=1)) == []
    unlikely = _risk(session, p30=0.0, p60=0.1, p90=0.3)
    assert recommend.raise_for_risk(session, risk_id=unlikely.id, now=NOW) == []


def test_scan_raises_recent_episodes_and_risks_once(session: Session) -> None:
    anomaly(session, dn=CELL_2, kpi="active_users", observed=0.0, expected=120.0)
    _risk(session, p30=0.9, p60=0.95, p90=0.97)
    old = anomaly(session, dn=LINK, kpi="latency_ms", observed=90, expected=10)
    old.last_evaluated_at = NOW - timedelta(hours=5)
    old.ended_at = NOW - timedelta(hours=5)
    raised = recommend.raise_new(session, now=NOW)
    assert sorted(r.action for r in raised) == ["carrier_add_ticket", "cell_restart"]
    assert next(r for r in raised if r.action == "carrier_add_ticket").severity == "critical"
    assert recommend.raise_new(session, now=NOW + timedelta(minutes=5)) == []
    assert session.scalar(select(Recommendation).where(Recommendation.anomaly_id == old.id)) is None
