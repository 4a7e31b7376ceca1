"""Use cases, metrics on a known fixture, promotion proposals, admin approval and demotion."""

from __future__ import annotations

from datetime import timedelta

import automation_support as kit
import pytest
from automation_support import ADMIN, ENGINEER, NOW, OPERATOR, audit_actions, recommend, use_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.automation import maturity
from services.automation.levels import LEVELS, level_label, level_name, parse_level
from services.automation.use_cases import (
    assign_owners,
    ensure_use_cases,
    update_settings,
    use_case_view,
)
from services.db.models import (
    Decision,
    Disagreement,
    Execution,
    MaturityChange,
    Ownership,
    Review,
    UseCase,
)
from services.errors import Conflict, Forbidden, InvalidInput
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources

pytestmark = pytest.mark.xdist_group("automation-maturity")
auto_db = kit.auto_db
session = kit.session
EASY = {"min_decisions": 10, "min_acceptance_rate": 0.8, "min_precision": 0.85}


def history(session: Session, *, accepted: int = 8) -> UseCase:
    """10 decisions (8 accepted, 1 rejected, 1 overridden) and 3 reviews on congestion LB."""
    case = use_case(session, "cell_congestion_lb", criteria={**EASY})
    verdicts = ["accept"] * accepted + ["reject", "override"]
    outcomes = {"reject": "ai_right", "override": "human_right"}
    for i, verdict in enumerate(verdicts):
        at = NOW - timedelta(days=1 + i)
        rec = recommend(session, state="accepted", created_at=at)
        session.add(
            Decision(
                recommendation_id=rec.id,
                user_id=kit.user_id(session, "eng-1"),
                verdict=verdict,
                reason_code="other",
                created_at=at,
            )
        )
        if verdict in outcomes:
            case_row = Disagreement(
                kind="rejected" if verdict == "reject" else "overridden",
                state="resolved",
                use_case_id=case.id,
                recommendation_id=rec.id,
                created_at=at,
            )
            session.add(case_row)
            session.flush()
            for outcome in (outcomes[verdict], "inconclusive"):
                session.add(Review(disagreement_id=case_row.id, outcome=outcome, created_at=at))
    # Outside the 30-day window: never counted.
    old = recommend(session, state="accepted", created_at=NOW - timedelta(days=45))
    session.add(
        Decision(
            recommendation_id=old.id,
            verdict="reject",
            reason_code="other",
            created_at=NOW - timedelta(days=45),
        )
    )
    session.flush()
    return case


def test_levels_taxonomy() -> None:
    assert [level_label(k) for k in LEVELS] == ["L0", "L1", "L2", "L3", "L4"]
    assert level_name(3) == "L3 auto with guardrails"
    assert [parse_level(t) for t in ("L2", "l3", " L0 ", "4", 1)] == [2, 3, 0, 4, 1]
    for bad in ("L5", "x", "", 7, True):
        with pytest.raises(InvalidInput):
            parse_level(bad)


def test_seed_is_idempotent_and_realistic(session: Session) -> None:
    assert ensure_use_cases(session, now=NOW) == 0
    cases = {c.key: c for c in session.scalars(select(UseCase))}
    assert {k: (c.action, c.maturity_level) for k, c in cases.items()} == {
        "cell_congestion_lb": ("lb_param_change", 2),
        "sleeping_cell_restart": ("cell_restart", 3),
        "transport_link_reroute": ("traffic_reroute", 1),
        "capacity_carrier_add": ("carrier_add_ticket", 2),
    }
    for case in cases.values():
        assert set(case.criteria) >= {
            "min_decisions",
            "min_acceptance_rate",
            "min_precision",
            "no_harmful_rollback_days",
        }
        assert set(case.guardrails) >= {
            "min_confidence",
            "max_blast_radius_cells",
            "max_blast_radius_users",
            "rate_limit_per_domain_per_hour",
        }


def test_metrics_on_a_known_fixture(session: Session) -> None:
    case = history(session)
    metrics = maturity.use_case_metrics(session, use_case_id=case.id, now=NOW)
    assert metrics["decisions"] == 10
    assert (metrics["accepted"], metrics["rejected"], metrics["overridden"]) == (8, 1, 1)
    assert metrics["acceptance_rate"] == 0.8
    assert metrics["reviews"] == 4
    assert metrics["precision"] == 0.9  # (8 accepted + 1 ai_right) / (8 + 1 + 1 human_right)
    assert metrics["review_precision"] == 0.5
    assert metrics["harmful_rollbacks"] == 0
    view = use_case_view(session, case=case, now=NOW)
    assert view["maturity_level"] == "L2"
    assert view["metrics"]["acceptance_rate"] == 0.8
    assert view["criteria"]["min_decisions"] == 10


def test_promotion_is_proposed_then_approved_by_an_admin(session: Session) -> None:
    case = history(session)
    [proposal] = maturity.propose_promotions(session, now=NOW)
    assert (proposal.use_case_id, proposal.from_level, proposal.to_level) == (case.id, 2, 3)
    assert proposal.status == "proposed"
    assert all(check["ok"] for check in proposal.evidence["checks"])
    assert maturity.propose_promotions(session, now=NOW) == []  # one open proposal at a time
    assert case.maturity_level == 2  # nothing changes without an admin
    for who in (ENGINEER, "eng-1", "nobody"):
        with pytest.raises(Forbidden):
            maturity.approve_change(session, change_id=proposal.id, admin=who, now=NOW)
    maturity.approve_change(session, change_id=proposal.id, admin="admin-1", now=NOW)
    assert (case.maturity_level, case.level_since) == (3, NOW)
    assert proposal.status == "approved"
    assert proposal.decided_by == kit.user_id(session, "admin-1")
    with pytest.raises(Conflict, match="already approved"):
        maturity.approve_change(session, change_id=proposal.id, admin=ADMIN, now=NOW)
    actions = audit_actions(session, prefix="automation.maturity.")
    assert actions[-2:] == ["automation.maturity.proposed", "automation.maturity.approved"]


def test_criteria_not_met_or_harmful_rollback_block_promotion(session: Session) -> None:
    case = history(session, accepted=6)  # 6 of 8 accepted: 75%
    assert maturity.propose_promotions(session, now=NOW) == []
    case = history(session)
    rec = recommend(session, state="rolled_back")
    session.add(
        Execution(
            recommendation_id=rec.id,
            actuator="simulator",
            idempotency_key=f"harm-{rec.id}",
            state="rolled_back",
            triggered_by="system",
            started_at=NOW - timedelta(days=5),
            rolled_back_at=NOW - timedelta(days=5),
            rollback={"harmful": True},
        )
    )
    session.flush()
    metrics = maturity.use_case_metrics(session, use_case_id=case.id, now=NOW)
    assert metrics["harmful_rollbacks"] == 1
    checks = {c["name"]: c["ok"] for c in maturity.criteria_checks(case, metrics)}
    assert checks["no_harmful_rollback_days"] is False
    assert maturity.propose_promotions(session, now=NOW) == []


def test_admin_rejects_or_a_level_change_withdraws_a_proposal(session: Session) -> None:
    case = history(session)
    [first] = maturity.propose_promotions(session, now=NOW)
    maturity.reject_change(session, change_id=first.id, admin=ADMIN, now=NOW, reason="not yet")
    assert first.evidence["rejection_reason"] == "not yet"
    [second] = maturity.propose_promotions(session, now=NOW)
    change = maturity.set_level(
        session, use_case_id=case.id, level="L1", admin=ADMIN, reason="incident review", now=NOW
    )
    assert (change.kind, change.to_level, case.maturity_level) == ("manual", 1, 1)
    assert second.status == "rejected"
    with pytest.raises(Conflict):
        maturity.approve_change(session, change_id=second.id, admin=ADMIN, now=NOW)
    with pytest.raises(InvalidInput, match="reason"):
        maturity.set_level(session, use_case_id=case.id, level=2, admin=ADMIN, reason="", now=NOW)


def test_demotion_is_immediate_and_audited(session: Session) -> None:
    case = use_case(session, "sleeping_cell_restart")
    change = maturity.demote(session, use_case_id=case.id, reason="guardrail breach", now=NOW)
    assert (change.kind, change.status, change.from_level, change.to_level) == (
        "demotion",
        "approved",
        3,
        2,
    )
    assert case.maturity_level == 2
    assert audit_actions(session)[-1] == "automation.maturity.demoted"
    shadow = use_case(session, "transport_link_reroute", maturity_level=0)
    with pytest.raises(Conflict, match="already at L0"):
        maturity.demote(session, use_case_id=shadow.id, reason="x", now=NOW)
    assert session.scalar(select(func.count()).select_from(MaturityChange)) == 1


def test_thresholds_are_changed_by_engineers_only(session: Session) -> None:
    case = use_case(session, "cell_congestion_lb")
    with pytest.raises(Forbidden):
        update_settings(
            session, use_case_id=case.id, actor=OPERATOR, guardrails={"min_confidence": 0.5}
        )
    for bad in ({"min_confidence": 2}, {"max_cells": 1}, {"actuator": "ssh"}):
        with pytest.raises(InvalidInput):
            update_settings(session, use_case_id=case.id, actor=ENGINEER, guardrails=bad)
    update_settings(
        session, use_case_id=case.id, actor=ENGINEER, guardrails={"min_confidence": 0.7}
    )
    assert case.guardrails["min_confidence"] == 0.7
    assert case.guardrails["max_blast_radius_cells"] == 3  # the rest is kept
    assert audit_actions(session)[-1] == "automation.use_case.settings"


def test_owner_team_comes_from_the_usecase_ownership(session: Session) -> None:
    ensure_simulator_sources(session)
    seed_demo_oncall(session, now=NOW)  # owns "usecase:<key>" for every seeded use case
    assert assign_owners(session) == 4
    for case in session.scalars(select(UseCase)):
        owner = session.scalar(
            select(Ownership.team_id).where(
                Ownership.subject_kind == "component",
                Ownership.subject_key == f"usecase:{case.key}",
            )
        )
        assert case.owner_team_id == owner
    view = use_case_view(session, case=case, now=NOW)
    assert view["owner"]["id"] == case.owner_team_id
