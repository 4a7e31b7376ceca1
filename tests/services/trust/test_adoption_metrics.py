"""Adoption metrics on a known fixture: exact rates, precision, trend, ladder, MTTA/MTTR."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import decisions_support as kit
import pytest
from decisions_support import CELL, CELL_2, LINK, NOW, anomaly, recommendation
from sqlalchemy.orm import Session

from services import adoption
from services.db.models import (
    Decision,
    Disagreement,
    Execution,
    Incident,
    MaturityChange,
    Recommendation,
    Review,
)

pytestmark = pytest.mark.xdist_group("adoption-metrics")
dec_db = kit.dec_db
session = kit.session
WEEK_1 = datetime(2026, 11, 16, tzinfo=UTC)  # Monday; NOW is Wednesday of the next week
WEEK_2 = datetime(2026, 11, 23, tzinfo=UTC)


def _at(day: datetime, hours: float) -> datetime:
    return day + timedelta(hours=hours)


def _decide(
    session: Session, rec: Recommendation, verdict: str, reason: str, at: datetime, step: int = 1
) -> None:
    session.add(
        Decision(
            recommendation_id=rec.id,
            verdict=verdict,
            reason_code=reason,
            approval_step=step,
            created_at=at,
        )
    )
    session.flush()


def _case(session: Session, rec: Recommendation, kind: str, at: datetime, **review: Any) -> None:
    case = Disagreement(
        kind=kind,
        state="resolved" if review else "open",
        use_case_id=rec.use_case_id,
        recommendation_id=rec.id,
        created_at=at,
        due_at=at + timedelta(days=3),
    )
    session.add(case)
    session.flush()
    if review:
        session.add(Review(disagreement_id=case.id, note="", **review))
        session.flush()


def _incident(session: Session, severity: str, at: datetime, ack: int, fix: int) -> Incident:
    row = Incident(
        title=f"{severity} at {at:%d %H:%M}",
        severity=severity,
        origin="manual",
        domain="RAN",
        created_at=at,
        acknowledged_at=at + timedelta(minutes=ack),
        resolved_at=at + timedelta(minutes=fix),
        status="resolved",
    )
    session.add(row)
    session.flush()
    return row


def fixture(session: Session) -> dict[str, int]:
    """Eight recommendations over two weeks, two use cases; expected numbers in the tests."""
    congestion = kit.use_case(session, "cell_congestion_lb")  # L2, RAN
    reroute = kit.use_case(session, "transport_link_reroute")  # L1
    r = {}
    for name, key, dn, created, state in (
        ("r1", "cell_congestion_lb", CELL, _at(WEEK_1, 9), "accepted"),
        ("r2", "cell_congestion_lb", CELL, _at(WEEK_1, 24 + 10), "rejected"),
        ("r3", "cell_congestion_lb", CELL, _at(WEEK_1, 48 + 8), "overridden"),
        ("r4", "cell_congestion_lb", CELL_2, _at(WEEK_2, 24 + 12), "executed"),
        ("r5", "cell_congestion_lb", CELL_2, _at(WEEK_2, 24 + 13), "awaiting_second_approval"),
        ("r6", "cell_congestion_lb", CELL_2, _at(WEEK_2, 24 + 14), "expired"),
        ("r7", "transport_link_reroute", LINK, _at(WEEK_2, 9), "rolled_back"),
        ("r8", "transport_link_reroute", LINK, _at(WEEK_2, 10), "rejected"),
    ):
        r[name] = recommendation(
            session,
            key,
            dn=dn,
            state=state,
            created_at=created,
            severity="critical" if name in ("r4", "r5") else "minor",
        )
    _decide(session, r["r1"], "accept", "other", _at(WEEK_1, 9.5))
    _decide(session, r["r2"], "reject", "wrong_diagnosis", _at(WEEK_1, 24 + 11))
    _decide(session, r["r3"], "override", "right_diagnosis_wrong_action", _at(WEEK_1, 48 + 10))
    _decide(session, r["r4"], "accept", "other", _at(WEEK_2, 24 + 12.25))
    _decide(session, r["r4"], "accept", "other", _at(WEEK_2, 24 + 12.75), step=2)
    _decide(session, r["r5"], "accept", "other", _at(WEEK_2, 24 + 13.5))
    _decide(session, r["r8"], "reject", "maintenance_in_progress", _at(WEEK_2, 11))
    _case(
        session,
        r["r2"],
        "rejected",
        _at(WEEK_1, 24 + 11),
        outcome="human_right",
        created_at=_at(WEEK_1, 72),
    )
    _case(
        session,
        r["r3"],
        "overridden",
        _at(WEEK_1, 48 + 10),
        outcome="ai_right",
        created_at=_at(WEEK_1, 96),
    )
    _case(session, r["r7"], "rolled_back", _at(WEEK_2, 11))
    _case(session, r["r8"], "rejected", _at(WEEK_2, 11))
    for rec, automatic, state, harmful in (
        (r["r4"], False, "verified", False),
        (r["r7"], True, "rolled_back", True),
    ):
        session.add(
            Execution(
                recommendation_id=rec.id,
                actuator="simulator",
                idempotency_key=f"k{rec.id}",
                state=state,
                triggered_by="system",
                guardrails={"automatic": automatic},
                rollback={"harmful": harmful},
                started_at=rec.created_at + timedelta(hours=1),
            )
        )
    session.add(
        MaturityChange(
            use_case_id=congestion.id,
            from_level=1,
            to_level=2,
            kind="promotion",
            status="approved",
            decided_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
    )
    # Incidents: three before AI (RAN), two after that the use case's recommendations touched.
    _incident(session, "sev2", datetime(2026, 11, 1, tzinfo=UTC), ack=30, fix=240)
    _incident(session, "sev3", datetime(2026, 11, 2, tzinfo=UTC), ack=60, fix=600)
    _incident(session, "sev1", datetime(2026, 11, 3, tzinfo=UTC), ack=10, fix=100)
    for rec, at, ack, fix in (
        (r["r4"], _at(WEEK_2, 36), 10, 120),
        (r["r5"], _at(WEEK_2, 37), 20, 180),
    ):
        episode = anomaly(session, dn=CELL_2, started_at=at - timedelta(hours=1))
        episode.incident_id = _incident(session, "sev2", at, ack=ack, fix=fix).id
        rec.anomaly_id = episode.id
    session.flush()
    return {"congestion": congestion.id, "reroute": reroute.id}


def test_use_case_metrics_have_exact_rates(session: Session) -> None:
    ids = fixture(session)
    report = adoption.adoption_report(session, now=NOW, weeks=2)
    cases = {u["id"]: u for u in report["use_cases"]}
    lb = cases[ids["congestion"]]
    assert lb["window_start"] == WEEK_1.isoformat()
    assert (lb["recommendations"], lb["decided"]) == (6, 4)  # r5 awaits its second approver
    assert (lb["accepted"], lb["overridden"], lb["rejected"]) == (2, 1, 1)
    assert (lb["acceptance_rate"], lb["override_rate"], lb["rejection_rate"]) == (0.5, 0.25, 0.25)
    assert lb["reason_codes"]["wrong_diagnosis"] == 1
    assert lb["reason_codes"]["right_diagnosis_wrong_action"] == 1
    assert sum(lb["reason_codes"].values()) == 2
    assert lb["median_hours_to_decision"] == 0.5  # of 0.5, 1, 2, 0.25 and 0.5 hours
    assert (lb["judged"], lb["right"], lb["precision"]) == (4, 3, 0.75)
    assert (lb["executions"], lb["automated_actions"], lb["rollbacks"]) == (1, 0, 0)
    assert (lb["disagreements"], lb["open_disagreements"]) == (2, 0)
    assert lb["review_outcomes"] == {"human_right": 1, "ai_right": 1}
    assert lb["decisions_per_week"] == [
        {"week": "2026-11-16", "decisions": 3},
        {"week": "2026-11-23", "decisions": 1},
    ]
    link = cases[ids["reroute"]]
    assert (link["decided"], link["rejection_rate"], link["acceptance_rate"]) == (1, 1.0, 0.0)
    assert (link["judged"], link["precision"]) == (0, None)  # nothing reviewed yet
    assert (link["automated_actions"], link["rollbacks"], link["harmful_rollbacks"]) == (1, 1, 1)
    assert link["open_disagreements"] == 2


def test_network_summary_and_incidents(session: Session) -> None:
    fixture(session)
    net = adoption.network_summary(session, now=NOW, weeks=2)
    assert (net["recommendations"], net["decided"]) == (8, 5)
    assert (net["acceptance_rate"], net["override_rate"], net["rejection_rate"]) == (0.4, 0.2, 0.4)
    assert net["median_hours_to_decision"] == 0.75
    assert net["precision"] == 0.75
    assert net["use_cases_by_level"] == {"L0": 0, "L1": 1, "L2": 2, "L3": 1, "L4": 0}
    incidents = net["incidents"]
    assert (incidents["with_ai"], incidents["total"]) == (2, 5)
    assert incidents["comparable_severities"] == ["sev2"]
    assert incidents["before"] == {"incidents": 1, "mtta_minutes": 30.0, "mttr_minutes": 240.0}
    assert incidents["after"] == {"incidents": 2, "mtta_minutes": 15.0, "mttr_minutes": 150.0}


def test_weekly_trend_and_csv(session: Session) -> None:
    ids = fixture(session)
    trend = adoption.weekly_trend(session, now=NOW, weeks=2)
    assert list(trend.columns) == list(adoption.TREND_COLUMNS)
    all_2 = trend[(trend.week == "2026-11-23") & (trend.use_case_id == 0)].iloc[0]
    assert (all_2.recommendations, all_2.decided, all_2.accepted, all_2.rejected) == (5, 2, 1, 1)
    assert (all_2.automated_actions, all_2.rollbacks, all_2.disagreements, all_2.reviews) == (
        1,
        1,
        2,
        0,
    )
    text = adoption.trend_csv(session, now=NOW, weeks=2)
    rows = list(csv.DictReader(io.StringIO(text)))
    lb_1 = next(
        r for r in rows if r["week"] == "2026-11-16" and r["use_case_id"] == str(ids["congestion"])
    )
    assert lb_1 == {
        "week": "2026-11-16",
        "use_case_id": str(ids["congestion"]),
        "use_case": "Cell congestion → load-balancing parameter change",
        "recommendations": "3",
        "decided": "3",
        "accepted": "1",
        "overridden": "1",
        "rejected": "1",
        "acceptance_rate": "0.3333",
        "override_rate": "0.3333",
        "rejection_rate": "0.3333",
        "judged": "3",
        "right": "2",
        "precision": "0.6667",
        "automated_actions": "0",
        "rollbacks": "0",
        "disagreements": "2",
        "reviews": "2",
    }
    summary = list(csv.DictReader(io.StringIO(adoption.summary_csv(session, now=NOW, weeks=2))))
    assert summary[0]["use_case"] == "All use cases"
    assert summary[0]["acceptance_rate"] == "0.4"
    assert summary[0]["reason_maintenance_in_progress"] == "1"


def test_maturity_ladder_counts_days_per_level(session: Session) -> None:
    ids = fixture(session)
    cases = {u["id"]: u for u in adoption.adoption_report(session, now=NOW, weeks=2)["use_cases"]}
    ladder = {step["level"]: step for step in cases[ids["congestion"]]["ladder"]}
    assert ladder["L1"]["days"] == 3.6  # first recommendation (16th 09:00) to promotion (20th)
    assert ladder["L2"]["days"] == 5.4  # 20th 00:00 to now (25th 10:00)
    assert ladder["L2"]["current"]
    assert not ladder["L3"]["reached"]
    link = {step["level"]: step for step in cases[ids["reroute"]]["ladder"]}
    assert link["L1"]["days"] == 60.0  # no changes: since the level was set


def test_empty_database_reports_without_rates(session: Session) -> None:
    net = adoption.network_summary(session, now=NOW, weeks=4)
    assert net["recommendations"] == 0
    assert net["acceptance_rate"] is None
    assert net["precision"] is None
    assert net["median_hours_to_decision"] is None
    assert adoption.weekly_trend(session, now=NOW, weeks=4).shape[0] == 4 * 5
