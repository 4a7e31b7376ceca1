"""Decisions: the recommendation state machine, reasons, two-person approval, bulk, expiry."""

from __future__ import annotations

from datetime import timedelta

import decisions_support as kit
import pytest
from decisions_support import (
    ENGINEER,
    ENGINEER_2,
    NOW,
    OPERATOR,
    READERS,
    TOKEN,
    audit_trail,
    recommendation,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.audit import SYSTEM
from services.db.models import Decision, Disagreement, User
from services.decisions import decide, states
from services.errors import Conflict, Forbidden, InvalidInput, NotFound

pytestmark = pytest.mark.xdist_group("decisions-decide")
dec_db = kit.dec_db
session = kit.session


def _user(session: Session, name: str) -> int:
    return session.scalars(select(User.id).where(User.username == name)).one()


def test_accept_moves_open_to_accepted_with_reason_and_audit(session: Session) -> None:
    rec = recommendation(session)
    decision = decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="accept",
        reason_code="other",
        note="  looks right  ",
        actor=OPERATOR,
        now=NOW,
    )
    assert rec.state == "accepted"
    assert rec.decided_at == NOW
    assert (decision.verdict, decision.reason_code, decision.note) == (
        "accept",
        "other",
        "looks right",
    )
    assert decision.user_id == _user(session, "op-1")
    assert decision.approval_step == 1
    assert audit_trail(session, object_type="recommendation", object_id=rec.id) == [
        "recommendation.accepted"
    ]
    assert (
        session.scalar(select(Disagreement).where(Disagreement.recommendation_id == rec.id)) is None
    )
    with pytest.raises(Conflict, match="already accepted"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="reject",
            reason_code="other",
            actor=OPERATOR,
            now=NOW,
        )


@pytest.mark.parametrize("reason", [None, "", "because"])
def test_missing_or_unknown_reason_is_invalid_input(session: Session, reason: str | None) -> None:
    rec = recommendation(session)
    with pytest.raises(InvalidInput):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="reject",
            reason_code=reason,
            actor=OPERATOR,
            now=NOW,
        )
    assert rec.state == "open"


def test_other_invalid_input(session: Session) -> None:
    rec = recommendation(session)
    with pytest.raises(InvalidInput, match="verdict"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="maybe",
            reason_code="other",
            actor=OPERATOR,
            now=NOW,
        )
    with pytest.raises(InvalidInput, match="names the action"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="override",
            reason_code="right_diagnosis_wrong_action",
            actor=OPERATOR,
            now=NOW,
        )
    with pytest.raises(InvalidInput, match="different action"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="override",
            reason_code="other",
            override_action=rec.action,
            actor=OPERATOR,
            now=NOW,
        )
    with pytest.raises(InvalidInput, match="note"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="reject",
            reason_code="other",
            note="x" * 2001,
            actor=OPERATOR,
            now=NOW,
        )
    with pytest.raises(NotFound):
        decide.decide(
            session,
            recommendation_id=999_999,
            verdict="reject",
            reason_code="other",
            actor=OPERATOR,
            now=NOW,
        )


@pytest.mark.parametrize("actor", READERS, ids=lambda a: a.kind + "-" + (a.role or ""))
def test_readers_cannot_decide(session: Session, actor: object) -> None:
    rec = recommendation(session)
    with pytest.raises(Forbidden):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="accept",
            reason_code="other",
            actor=actor,
            now=NOW,
        )  # type: ignore[arg-type]


def test_reject_and_override_stand_and_open_cases(session: Session) -> None:
    rejected, overridden = recommendation(session), recommendation(session, dn=kit.CELL_2)
    decide.decide(
        session,
        recommendation_id=rejected.id,
        verdict="reject",
        reason_code="maintenance_in_progress",
        note="CHG-1",
        actor=OPERATOR,
        now=NOW,
    )
    decide.decide(
        session,
        recommendation_id=overridden.id,
        verdict="override",
        reason_code="right_diagnosis_wrong_action",
        override_action="tilt_change",
        override_parameters={"tilt": 2},
        actor=ENGINEER,
        now=NOW,
    )
    assert (rejected.state, overridden.state) == ("rejected", "overridden")
    cases = {
        c.recommendation_id: c
        for c in session.scalars(
            select(Disagreement).where(
                Disagreement.recommendation_id.in_([rejected.id, overridden.id])
            )
        )
    }
    assert cases[rejected.id].kind == "rejected"
    assert cases[rejected.id].human_side["reason_code"] == "maintenance_in_progress"
    assert cases[rejected.id].human_side["note"] == "CHG-1"
    assert cases[overridden.id].kind == "overridden"
    assert cases[overridden.id].human_side["override_action"] == "tilt_change"
    assert cases[overridden.id].human_side["override_parameters"] == {"tilt": 2}
    assert audit_trail(session, object_type="recommendation", object_id=rejected.id) == [
        "recommendation.rejected"
    ]


def test_two_person_approval_needs_a_different_signed_in_user(session: Session) -> None:
    rec = recommendation(session, severity="critical")  # congestion use case is L2
    assert states.needs_second_approval(rec)
    with pytest.raises(Forbidden, match="signed-in"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict="accept",
            reason_code="other",
            actor=TOKEN,
            now=NOW,
        )
    decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="accept",
        reason_code="other",
        actor=ENGINEER,
        now=NOW,
    )
    assert rec.state == "awaiting_second_approval"
    for same in (ENGINEER, TOKEN):
        with pytest.raises(Forbidden, match="second approver"):
            decide.decide(
                session,
                recommendation_id=rec.id,
                verdict="accept",
                reason_code="other",
                actor=same,
                now=NOW,
            )
    second = decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="accept",
        reason_code="other",
        actor=ENGINEER_2,
        now=NOW + timedelta(minutes=3),
    )
    assert rec.state == "accepted"
    assert second.approval_step == 2
    assert audit_trail(session, object_type="recommendation", object_id=rec.id) == [
        "recommendation.awaiting_second_approval",
        "recommendation.accepted",
    ]
    # The automation service's guardrail agrees that two different people approved it.
    from services.automation.guardrails import check_guardrails

    report = check_guardrails(session, recommendation=rec, now=NOW, automatic=False)
    assert next(r for r in report.results if r.name == "two_person_approval").ok


def test_second_person_can_reject_and_minor_l2_needs_one(session: Session) -> None:
    rec = recommendation(session, severity="major")
    decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="accept",
        reason_code="other",
        actor=ENGINEER,
        now=NOW,
    )
    decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="reject",
        reason_code="risk_too_high",
        actor=ENGINEER_2,
        now=NOW,
    )
    assert rec.state == "rejected"
    assert (
        session.scalar(select(Disagreement.kind).where(Disagreement.recommendation_id == rec.id))
        == "rejected"
    )
    minor = recommendation(session, dn=kit.CELL_2, severity="minor")
    decide.decide(
        session,
        recommendation_id=minor.id,
        verdict="accept",
        reason_code="other",
        actor=ENGINEER,
        now=NOW,
    )
    assert minor.state == "accepted"


def test_expired_recommendations_cannot_be_decided_and_expire_in_the_job(session: Session) -> None:
    stale = recommendation(session, expires_at=NOW - timedelta(minutes=1))
    shadow = recommendation(
        session, dn=kit.CELL_2, state="shadow", expires_at=NOW - timedelta(hours=1)
    )
    fresh = recommendation(session, dn=kit.LINK, key="transport_link_reroute")
    with pytest.raises(Conflict, match="expired"):
        decide.decide(
            session,
            recommendation_id=stale.id,
            verdict="accept",
            reason_code="other",
            actor=OPERATOR,
            now=NOW,
        )
    expired = decide.expire_due(session, now=NOW)
    assert set(expired) == {stale.id, shadow.id}
    assert (stale.state, shadow.state, fresh.state) == ("expired", "expired", "open")
    assert audit_trail(session, object_type="recommendation", object_id=stale.id) == [
        "recommendation.expired"
    ]


def test_state_machine_refuses_illegal_steps(session: Session) -> None:
    rec = recommendation(session, state="rejected")
    for target in ("accepted", "executing", "open", "expired"):
        with pytest.raises(Conflict):
            states.move_recommendation(
                session, recommendation=rec, to=target, actor=SYSTEM, now=NOW
            )
    flow = recommendation(session, dn=kit.CELL_2)
    for target in ("accepted", "executing", "executed", "rolled_back"):
        states.move_recommendation(session, recommendation=flow, to=target, actor=SYSTEM, now=NOW)
    assert flow.state == "rolled_back"
    assert "rolled_back" not in states.RECOMMENDATION_FLOW  # terminal


def test_bulk_decisions_report_each_item(session: Session) -> None:
    a, b = recommendation(session), recommendation(session, dn=kit.CELL_2)
    done = recommendation(session, dn=kit.LINK, key="transport_link_reroute", state="accepted")
    high = recommendation(
        session, dn="SubNetwork=East,ManagedElement=SITE-0003,EUtranCellFDD=C1", severity="critical"
    )
    result = decide.decide_many(
        session,
        recommendation_ids=[a.id, b.id, done.id, high.id, 999_999],
        verdict="reject",
        reason_code="already_handled",
        note="storm cleanup",
        actor=OPERATOR,
        now=NOW,
    )
    assert result.decided == [a.id, b.id, high.id]
    assert list(result.skipped) == [done.id]
    assert result.missing == [999_999]
    assert {a.state, b.state, high.state, done.state} == {"rejected", "accepted"}
    notes = session.scalars(
        select(Decision.note).where(Decision.recommendation_id.in_([a.id, b.id]))
    )
    assert set(notes) == {"storm cleanup"}
    assert (
        session.scalar(select(Disagreement.id).where(Disagreement.recommendation_id == b.id))
        is not None
    )
    with pytest.raises(InvalidInput):
        decide.decide_many(
            session,
            recommendation_ids=[a.id],
            verdict="override",
            reason_code="other",
            actor=OPERATOR,
            now=NOW,
        )
    with pytest.raises(InvalidInput):
        decide.decide_many(
            session,
            recommendation_ids=[],
            verdict="accept",
            reason_code="other",
            actor=OPERATOR,
            now=NOW,
        )


def test_bulk_accept_moves_high_severity_to_second_approval(session: Session) -> None:
    high = recommendation(session, severity="critical")
    result = decide.decide_many(
        session,
        recommendation_ids=[high.id],
        verdict="accept",
        reason_code="other",
        actor=ENGINEER,
        now=NOW,
    )
    assert result.decided == [high.id]
    assert high.state == "awaiting_second_approval"
    again = decide.decide_many(
        session,
        recommendation_ids=[high.id],
        verdict="accept",
        reason_code="other",
        actor=ENGINEER,
        now=NOW,
    )
    assert again.decided == []
    assert "second approver" in again.skipped[high.id]


def test_recommendation_lists_and_detail(session: Session) -> None:
    from services.decisions import queries

    rec = recommendation(session, severity="critical")
    decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="accept",
        reason_code="other",
        actor=ENGINEER,
        now=NOW,
    )
    [row] = [r for r in queries.list_recommendations(session, state="pending") if r["id"] == rec.id]
    assert row["maturity_level"] == "L2"
    assert row["state"] == "awaiting_second_approval"
    assert row["needs_second_approval"] is True
    assert {"use_case_id", "action", "confidence"} <= set(row)
    assert all(r["state"] == "open" for r in queries.list_recommendations(session, state="open"))
    with pytest.raises(InvalidInput):
        queries.list_recommendations(session, state="sleepy")
    detail = queries.recommendation_detail(session, recommendation_id=rec.id)
    assert [(d["verdict"], d["approval_step"], d["by"]) for d in detail["decisions"]] == [
        ("accept", 1, "eng-1")
    ]
    with pytest.raises(NotFound):
        queries.recommendation_detail(session, recommendation_id=999_999)


def test_first_approver_may_withdraw_by_rejecting(session: Session) -> None:
    rec = recommendation(session, severity="critical")
    for verdict in ("accept", "reject"):
        decide.decide(
            session,
            recommendation_id=rec.id,
            verdict=verdict,
            reason_code="risk_too_high" if verdict == "reject" else "other",
            actor=ENGINEER,
            now=NOW,
        )
    assert rec.state == "rejected"
