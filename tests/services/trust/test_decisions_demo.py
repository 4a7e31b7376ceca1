"""Demo history (deterministic, simulated, idempotent) and live recommendations for the demo."""

from __future__ import annotations

from datetime import timedelta

import decisions_support as kit
import pytest
from decisions_support import CELL, CELL_2, LINK, NOW, measure
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import adoption
from services.db import Database
from services.db.models import (
    AuditEvent,
    Decision,
    Disagreement,
    Execution,
    Recommendation,
    Review,
)
from services.decisions import demo

pytestmark = pytest.mark.xdist_group("decisions-demo")
dec_db = kit.dec_db
session = kit.session


def _fingerprint(session: Session) -> list[tuple[object, ...]]:
    recs = session.execute(
        select(
            Recommendation.use_case_id,
            Recommendation.element_id,
            Recommendation.state,
            Recommendation.confidence,
            Recommendation.severity,
            Recommendation.created_at,
        ).order_by(Recommendation.id)
    ).all()
    decisions = session.execute(
        select(Decision.verdict, Decision.reason_code, Decision.created_at).order_by(Decision.id)
    ).all()
    reviews = session.execute(select(Review.outcome, Review.created_at).order_by(Review.id)).all()
    return [tuple(r) for r in [*recs, *decisions, *reviews]]


def test_backfill_is_deterministic_and_simulated(dec_db: Database) -> None:
    prints = []
    for _ in range(2):
        with dec_db.session() as session:  # thrown away after each run
            written = demo.backfill_history(session, now=NOW, weeks=2)
            prints.append(_fingerprint(session))
            assert written.recommendations > 0
            assert written.disagreements > 0
            assert written.reviews > 0
    assert prints[0] == prints[1]


def test_backfill_covers_the_pages_and_runs_once(session: Session) -> None:
    written = demo.backfill_history(session, now=NOW, weeks=6)
    assert session.scalar(select(func.count()).where(Recommendation.simulated.is_(False))) == 0
    assert (
        session.scalar(
            select(func.count()).select_from(Disagreement).where(Disagreement.simulated.is_(False))
        )
        == 0
    )
    executions = session.scalars(select(Execution.guardrails)).all()
    assert executions
    assert all(g["simulated"] for g in executions)
    kinds = set(session.scalars(select(Disagreement.kind)))
    assert kinds == {"rejected", "overridden", "rolled_back"}
    open_cases = session.scalar(
        select(func.count()).select_from(Disagreement).where(Disagreement.state == "open")
    )
    assert 0 < open_cases < written.disagreements
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "demo.decisions_backfill")
        )
        == 1
    )
    report = adoption.adoption_report(session, now=NOW, weeks=6)
    assert report["network"]["simulated_share"] == 1.0
    assert report["network"]["acceptance_rate"] is not None
    assert report["network"]["precision"] is not None
    by_key = {u["key"]: u for u in report["use_cases"]}
    restart = {s["level"]: s["days"] for s in by_key["sleeping_cell_restart"]["ladder"]}
    assert restart["L1"] > 0
    assert restart["L2"] > 0
    assert restart["L3"] > 0  # promoted step by step in the simulated history
    assert by_key["sleeping_cell_restart"]["automated_actions"] > 0
    assert demo.backfill_history(session, now=NOW, weeks=6) == demo.Backfill(0, 0, 0, 0, 0)


def test_live_recommendations_come_from_the_latest_simulated_kpis(session: Session) -> None:
    latest = NOW - timedelta(minutes=15)
    for dn, value in ((CELL, 96.0), (CELL_2, 40.0)):
        measure(session, dn, "prb_util_dl", value, at=latest)
    measure(session, LINK, "packet_loss_pct", 2.5, at=latest)
    raised = demo.raise_live(session, now=NOW)
    by_action = {r.action: r for r in raised}
    assert set(by_action) == {"lb_param_change", "traffic_reroute"}
    busiest = by_action["lb_param_change"]
    assert busiest.element_id == kit.element(session, CELL).id
    assert busiest.simulated
    assert busiest.state == "open"
    assert "96.0" in busiest.rationale
    # Enough are open now: nothing more is invented, and nothing is raised twice.
    assert demo.raise_live(session, now=NOW, minimum_open=2) == []
    assert demo.raise_live(session, now=NOW, minimum_open=10) == []
