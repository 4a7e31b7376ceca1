"""The disagreement queue: every source, owner, SLA escalation, reviews and what the AI learns."""

from __future__ import annotations

from datetime import timedelta

import decisions_support as kit
import pytest
from decisions_support import (
    CELL,
    CELL_2,
    ENGINEER,
    LINK,
    NOW,
    OPERATOR,
    anomaly,
    audit_trail,
    recommendation,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import SYSTEM
from services.db import Database
from services.db.models import (
    AnomalyFeedback,
    AuditEvent,
    DataHealthEvent,
    Disagreement,
    Execution,
    Incident,
    Recommendation,
    Review,
)
from services.decisions import decide, disagreements, learning, queries, states
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.oncall import resolve

pytestmark = pytest.mark.xdist_group("decisions-disagreements")
dec_db = kit.dec_db
session = kit.session


def _reject(session: Session, rec: Recommendation, reason: str = "wrong_diagnosis") -> Disagreement:
    decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="reject",
        reason_code=reason,
        note="stadium event",
        actor=OPERATOR,
        now=NOW,
    )
    return session.scalars(
        select(Disagreement).where(Disagreement.recommendation_id == rec.id)
    ).one()


def _execution(session: Session, rec: Recommendation, *, automatic: bool = True) -> Execution:
    row = Execution(
        recommendation_id=rec.id,
        actuator="simulator",
        idempotency_key=f"test-{rec.id}",
        state="rolled_back",
        triggered_by="system",
        guardrails={"automatic": automatic, "level": 3},
        verification={"outcome": "worse", "kpis": {"prb_util_dl": {"before": 90, "after": 97}}},
        started_at=NOW - timedelta(hours=2),
        rolled_back_at=NOW,
        rolled_back_by="system",
    )
    session.add(row)
    session.flush()
    return row


def test_rejection_case_has_both_sides_quality_owner_and_sla(session: Session) -> None:
    episode = anomaly(session, data_quality={"flags": ["late_data"], "text": "late"})
    rec = recommendation(session, confidence=0.91)
    rec.anomaly_id = episode.id
    case = _reject(session, rec)
    assert (case.kind, case.state) == ("rejected", "open")
    assert case.anomaly_id == episode.id
    assert case.ai_side["action"] == "lb_param_change"
    assert case.ai_side["confidence"] == 0.91
    assert case.ai_side["anomaly"]["kpi"] == "prb_util_dl"
    assert case.human_side["by"] == "op-1"
    assert case.human_side["reason"] == "Wrong diagnosis"
    assert case.human_side["note"] == "stadium event"
    assert case.data_quality["ai_input"]["flags"] == ["late_data"]
    assert "AI input flagged: late_data" in case.data_quality["text"]
    owner = resolve.oncall_for(session, now=NOW, component="usecase:cell_congestion_lb")
    assert case.assigned_team_id == owner.oncall.team.id
    assert case.assignee_person_id == owner.oncall.person.id
    assert case.due_at == NOW + timedelta(hours=72)
    assert audit_trail(session, object_type="disagreement", object_id=case.id) == [
        "disagreement.open"
    ]


def test_override_case(session: Session) -> None:
    rec = recommendation(session)
    decide.decide(
        session,
        recommendation_id=rec.id,
        verdict="override",
        reason_code="right_diagnosis_wrong_action",
        override_action="tilt_change",
        actor=ENGINEER,
        now=NOW,
    )
    [case] = session.scalars(select(Disagreement).where(Disagreement.recommendation_id == rec.id))
    assert case.kind == "overridden"
    assert case.human_side["override_action"] == "tilt_change"


def test_not_an_anomaly_label_opens_a_false_positive_case(session: Session) -> None:
    episode = anomaly(session, dn=LINK, kpi="latency_ms", observed=80, expected=12)
    session.add(AnomalyFeedback(anomaly_id=episode.id, label="not_anomaly", note="probe reboot"))
    session.flush()
    case = disagreements.on_anomaly_feedback(
        session, anomaly_id=episode.id, label="not_anomaly", actor=OPERATOR, now=NOW
    )
    assert case is not None
    assert (case.kind, case.anomaly_id) == ("false_positive", episode.id)
    assert case.use_case_id == kit.use_case(session, "transport_link_reroute").id
    assert case.ai_side["kind"] == "anomaly"
    assert case.ai_side["kpi"] == "latency_ms"
    assert case.human_side["label"] == "not_anomaly"
    assert case.human_side["note"] == "probe reboot"
    # The same episode labelled again joins the open case; a confirmation is no disagreement.
    again = disagreements.on_anomaly_feedback(
        session, anomaly_id=episode.id, label="not_anomaly", actor=OPERATOR, now=NOW
    )
    assert again is not None
    assert again.id == case.id
    assert (
        disagreements.on_anomaly_feedback(
            session, anomaly_id=episode.id, label="true_anomaly", actor=OPERATOR, now=NOW
        )
        is None
    )


def test_manual_incident_without_an_anomaly_is_a_miss(session: Session) -> None:
    missed = Incident(
        title="Customers report no service in North",
        severity="sev2",
        origin="manual",
        domain="RAN",
        created_by="op-1",
        created_at=NOW - timedelta(minutes=5),
    )
    seen = Incident(
        title="Cell down",
        severity="sev2",
        origin="manual",
        domain="RAN",
        created_by="op-1",
        created_at=NOW - timedelta(minutes=5),
    )
    auto = Incident(title="From anomaly", severity="sev2", origin="anomaly", created_at=NOW)
    session.add_all([missed, seen, auto])
    session.flush()
    anomaly(session, dn=CELL_2, kpi="active_users", observed=0, expected=100).incident_id = seen.id
    case = disagreements.on_incident_opened(session, incident_id=missed.id, now=NOW)
    assert case is not None
    assert (case.kind, case.incident_id, case.use_case_id) == ("missed", missed.id, None)
    assert case.ai_side["kind"] == "none"
    assert case.ai_side["anomalies_in_domain"] == 1  # the reviewer judges whether it was seen
    assert case.human_side["title"] == "Customers report no service in North"
    # No use case: the detector's owner reviews it.
    owner = resolve.oncall_for(session, now=NOW, component="detector")
    assert case.assigned_team_id == owner.oncall.team.id
    assert case.due_at == NOW + timedelta(hours=48)
    assert disagreements.on_incident_opened(session, incident_id=seen.id, now=NOW) is None
    assert disagreements.on_incident_opened(session, incident_id=auto.id, now=NOW) is None


def test_rolled_back_action_opens_a_case(session: Session) -> None:
    rec = recommendation(session, key="sleeping_cell_restart", state="rolled_back")
    execution = _execution(session, rec)
    case = disagreements.on_rollback(
        session, execution_id=execution.id, actor="system", now=NOW, reason="KPIs worse"
    )
    assert (case.kind, case.execution_id, case.recommendation_id) == (
        "rolled_back",
        execution.id,
        rec.id,
    )
    assert case.human_side["kind"] == "rollback"
    assert case.human_side["reason"] == "KPIs worse"
    assert case.human_side["verification"]["outcome"] == "worse"
    assert case.due_at == NOW + timedelta(hours=24)
    # The automation service's own call shape (human side without a kind) is accepted too.
    other = _execution(session, recommendation(session, key="sleeping_cell_restart", dn=CELL_2))
    case_2 = disagreements.open_case(
        session,
        kind="rolled_back",
        now=NOW,
        actor=SYSTEM,
        recommendation_id=other.recommendation_id,
        execution_id=other.id,
        use_case_id=kit.use_case(session, "sleeping_cell_restart").id,
        human_side={"actor": "system", "reason": "verification failed"},
    )
    assert case_2.human_side["kind"] == "rollback"
    row = queries.list_cases(session, now=NOW, kind="rolled_back")[0]
    assert row["human_summary"] == "Rolled back by system: verification failed"


def test_open_case_validates_kind_and_link(session: Session) -> None:
    with pytest.raises(InvalidInput):
        disagreements.open_case(session, kind="grumpy", now=NOW, recommendation_id=1)
    with pytest.raises(InvalidInput, match="incident_id"):
        disagreements.open_case(session, kind="missed", now=NOW)
    with pytest.raises(NotFound, match="no execution #999999"):
        disagreements.open_case(session, kind="rolled_back", now=NOW, execution_id=999_999)
    with pytest.raises(NotFound, match="no anomaly"):
        disagreements.open_case(session, kind="false_positive", now=NOW, anomaly_id=999_999)


def test_escalation_follows_the_review_sla_with_a_controlled_clock(session: Session) -> None:
    case = _reject(session, recommendation(session))
    first = case.assignee_person_id
    assert not disagreements.escalate(session, disagreement_id=case.id, now=NOW)
    assert disagreements.overdue_ids(session, now=NOW + timedelta(hours=71)) == []
    late = NOW + timedelta(hours=73)
    assert disagreements.overdue_ids(session, now=late) == [case.id]
    assert disagreements.escalate(session, disagreement_id=case.id, now=late)
    owner = resolve.oncall_for(session, now=late, component="usecase:cell_congestion_lb")
    expected = next(p.id for s in owner.escalation for p in s.people if p.id != first)
    assert case.assignee_person_id == expected
    assert case.escalated_at == late
    assert case.due_at == late + timedelta(hours=24)
    # Escalated once; an escalated case is not escalated again by the job.
    assert not disagreements.escalate(
        session, disagreement_id=case.id, now=late + timedelta(days=3)
    )
    assert audit_trail(session, object_type="disagreement", object_id=case.id) == [
        "disagreement.open",
        "disagreement.escalate",
    ]
    assert queries.count_cases(session, now=late, state="escalated") >= 1
    # A person may escalate before the SLA runs out; readers may not.
    early = _reject(session, recommendation(session, dn=CELL_2))
    with pytest.raises(Forbidden):
        disagreements.escalate(session, disagreement_id=early.id, now=NOW, actor=kit.READERS[0])
    assert disagreements.escalate(session, disagreement_id=early.id, now=NOW, actor=OPERATOR)


def test_review_resolves_once_and_feeds_precision(session: Session) -> None:
    right, wrong = recommendation(session), recommendation(session, dn=CELL_2)
    accepted = recommendation(session, dn=LINK, key="transport_link_reroute", state="accepted")
    case_id = kit.use_case(session, "cell_congestion_lb").id
    before = learning.precision(session, use_case_id=case_id)
    assert (before.right, before.wrong) == (0, 0)  # rejections wait for their review
    case_right, case_wrong = _reject(session, right), _reject(session, wrong)
    disagreements.review(
        session,
        disagreement_id=case_right.id,
        outcome="ai_right",
        note="KPIs degraded later",
        reviewer=ENGINEER,
        now=NOW + timedelta(hours=3),
    )
    review = disagreements.review(
        session,
        disagreement_id=case_wrong.id,
        outcome="human_right",
        note="",
        reviewer=ENGINEER,
        now=NOW + timedelta(hours=3),
    )
    assert case_right.state == "resolved"
    assert review.outcome == "human_right"
    after = learning.precision(session, use_case_id=case_id)
    assert (after.right, after.wrong, after.value) == (1, 1, 0.5)
    assert learning.precision(session, use_case_id=accepted.use_case_id).value == 1.0
    with pytest.raises(Conflict):
        disagreements.review(
            session,
            disagreement_id=case_right.id,
            outcome="human_right",
            note="",
            reviewer=ENGINEER,
            now=NOW,
        )
    with pytest.raises(Forbidden):
        disagreements.review(
            session,
            disagreement_id=case_wrong.id,
            outcome="ai_right",
            note="",
            reviewer=OPERATOR,
            now=NOW,
        )
    with pytest.raises(InvalidInput):
        disagreements.review(
            session,
            disagreement_id=case_wrong.id,
            outcome="meh",
            note="",
            reviewer=ENGINEER,
            now=NOW,
        )
    with pytest.raises(Conflict):
        states.move_case(session, case=case_right, to="open", actor=SYSTEM)
    rows = {r["id"]: r for r in queries.list_cases(session, now=NOW, state="resolved")}
    assert rows[case_right.id]["outcome"] == "ai_right"
    assert rows[case_right.id]["review_note"] == "KPIs degraded later"
    calibration = learning.calibration(session, use_case_id=case_id)
    assert sum(b["count"] for b in calibration) == 2


def test_review_outcomes_adjust_what_detector_and_data_health_read(session: Session) -> None:
    noisy = anomaly(session, dn=LINK, kpi="packet_loss_pct", observed=3.0, expected=0.2)
    shifted = anomaly(session, dn=CELL_2, kpi="prb_util_dl", observed=70.0, expected=40.0)
    real = anomaly(session, dn=CELL, kpi="prb_util_ul", observed=95.0, expected=30.0)
    cases = {
        a.id: disagreements.on_anomaly_feedback(
            session, anomaly_id=a.id, label=label, actor=OPERATOR, now=NOW
        )
        for a, label in ((noisy, "not_anomaly"), (shifted, "new_normal"), (real, "not_anomaly"))
    }
    for a, outcome in ((noisy, "data_issue"), (shifted, "human_right"), (real, "ai_right")):
        disagreements.review(
            session,
            disagreement_id=cases[a.id].id,
            outcome=outcome,
            note="checked",
            reviewer=ENGINEER,
            now=NOW + timedelta(hours=1),
        )
    [issue] = learning.data_issues(session, element_id=noisy.element_id, kpi_id=noisy.kpi_id)
    assert issue == (noisy.started_at, NOW + timedelta(hours=1))
    resets = learning.baseline_resets(
        session, element_ids=[shifted.element_id], kpi_id=shifted.kpi_id
    )
    assert resets == {shifted.element_id: shifted.started_at}
    kinds = set(
        session.scalars(
            select(DataHealthEvent.kind).where(
                DataHealthEvent.details["origin"].as_string() == learning.ORIGIN
            )
        )
    )
    assert kinds == {"data_issue", "new_normal"}
    verdict = session.scalars(
        select(AnomalyFeedback.label)
        .where(AnomalyFeedback.anomaly_id == real.id)
        .order_by(AnomalyFeedback.id.desc())
    ).first()
    assert verdict == "true_anomaly"  # the detector's calibration reads the latest verdict
    assert audit_trail(session, object_type="disagreement", object_id=cases[noisy.id].id) == [
        "disagreement.open",
        "learning.adjust",
        "disagreement.resolved",
    ]


def test_bulk_review_and_case_detail(session: Session) -> None:
    a, b = (
        _reject(session, recommendation(session)),
        _reject(session, recommendation(session, dn=CELL_2)),
    )
    disagreements.review(
        session, disagreement_id=b.id, outcome="inconclusive", note="", reviewer=ENGINEER, now=NOW
    )
    result = disagreements.review_many(
        session,
        disagreement_ids=[a.id, b.id, 999_999],
        outcome="human_right",
        note="Known event calendar gap",
        reviewer=ENGINEER,
        now=NOW,
    )
    assert result.reviewed == [a.id]
    assert list(result.skipped) == [b.id]
    assert result.missing == [999_999]
    assert session.scalar(select(Review.note).where(Review.disagreement_id == a.id)) == (
        "Known event calendar gap"
    )
    detail = queries.case_detail(session, disagreement_id=a.id, now=NOW)
    assert [h["action"] for h in detail["history"]] == [
        "disagreement.open",
        "disagreement.resolved",
    ]
    assert detail["reviews"][0]["reviewer"] == "eng-1"
    assert detail["ai_side"]["action"] == "lb_param_change"
    assert detail["outcome"] == "human_right"


def test_full_flow_is_audited_step_by_step(session: Session) -> None:
    episode = anomaly(session, kpi="prb_util_dl")
    from services.decisions import recommend

    [rec] = recommend.raise_for_anomaly(session, anomaly_id=episode.id, now=NOW)
    case = _reject(session, rec, reason="data_issue")
    disagreements.review(
        session,
        disagreement_id=case.id,
        outcome="data_issue",
        note="frozen counters",
        reviewer=ENGINEER,
        now=NOW + timedelta(hours=2),
    )
    actions = list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_id.in_([str(rec.id), str(case.id)]))
            .where(AuditEvent.object_type.in_(["recommendation", "disagreement"]))
            .order_by(AuditEvent.seq)
        )
    )
    assert actions == [
        "recommendation.raise",
        "recommendation.rejected",
        "disagreement.open",
        "learning.adjust",
        "disagreement.resolved",
    ]
    assert audit.verify(session).ok


def test_escalation_job_commits_each_case(dec_db: Database) -> None:
    with dec_db.session(write=True) as session:
        case_id = _reject(session, recommendation(session, simulated=True)).id
    # Committed (the job owns its sessions) and kept: the module's last test, nothing follows.
    run = disagreements.escalate_overdue(dec_db, now=NOW + timedelta(days=4))
    assert case_id in run.escalated
    assert run.errors == []
    with dec_db.session() as session:
        assert session.get(Disagreement, case_id).escalated_at == NOW + timedelta(days=4)
        assert audit.verify(session).ok
