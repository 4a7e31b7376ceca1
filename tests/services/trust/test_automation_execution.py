"""Dry-run, execution, verification window, automatic and manual rollback (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import automation_support as kit
import pytest
from automation_support import (
    CELL,
    ENGINEER,
    NOW,
    OPERATOR,
    accept,
    audit_actions,
    measure,
    recommend,
    use_case,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.audit import Actor
from services.automation import actuators, execution
from services.automation.guardrails import GuardrailBlocked
from services.automation.verification import verify_execution
from services.db.models import AuditEvent, Decision, Disagreement, Execution, MaturityChange
from services.errors import Conflict, Forbidden, InvalidInput

pytestmark = pytest.mark.xdist_group("automation-execution")
auto_db = kit.auto_db
session = kit.session
LATER = NOW + timedelta(minutes=61)


class FakeActuator:
    """Records calls; fails or over-reaches on demand."""

    name = "fake"

    def __init__(self, *, fail: bool = False, cells_touched: int = 1) -> None:
        self.fail, self.cells_touched, self.calls = fail, cells_touched, []

    def read_state(self, session: Session, *, request: Any) -> dict[str, Any]:
        return {"parameters": {"offload_pct": 0}}

    def apply(self, session: Session, *, request: Any) -> dict[str, Any]:
        self.calls.append(("apply", request.idempotency_key))
        if self.fail:
            raise actuators.ActuatorError("orchestrator answered HTTP 503")
        return {"cells_touched": self.cells_touched}

    def revert(self, session: Session, *, request: Any, execution: Execution) -> dict[str, Any]:
        self.calls.append(("revert", request.idempotency_key))
        return {"restored": execution.pre_state["parameters"]}


def congested_history(session: Session, dn: str = CELL) -> None:
    measure(session, dn, "prb_util_dl", [97.0, 98.0, 96.0, 99.0], end=NOW)
    measure(session, dn, "erab_drop_rate", [2.0, 2.5, 2.2, 2.1], end=NOW)


def test_dry_run_changes_nothing(session: Session) -> None:
    rec = recommend(session, parameters={"parameter": "lb_offload_pct", "value": 30})
    accept(session, rec)
    congested_history(session)
    audit_before = session.scalar(select(func.count()).select_from(AuditEvent))
    preview = execution.dry_run(session, recommendation_id=rec.id, now=NOW)
    assert preview.allowed
    assert preview.actuator == "simulator"
    assert preview.planned == {
        "action": "lb_param_change",
        "parameters": {"parameter": "lb_offload_pct", "value": 30},
    }
    assert preview.pre_state["parameters"] == {"offload_pct": 0.0}
    assert preview.pre_state["kpis"]["prb_util_dl"]["mean"] == pytest.approx(97.5)
    assert preview.rollback["restores"] == {"offload_pct": 0.0}
    assert preview.rollback["automatic_if_worse"] is False
    assert preview.as_dict()["guardrails"]["allowed"] is True
    assert rec.state == "accepted"
    assert session.scalar(select(func.count()).select_from(Execution)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_before
    assert actuators.simulator_effects(session) == []
    blocked = execution.dry_run(
        session, recommendation_id=recommend(session).id, now=NOW, automatic=True
    )
    assert not blocked.allowed
    assert blocked.guardrails.blocking().name == "maturity_level"


def test_execute_stores_pre_state_changes_the_network_and_audits(session: Session) -> None:
    rec = recommend(session, parameters={"parameter": "lb_offload_pct", "value": 40})
    accept(session, rec)
    congested_history(session)
    run = execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW)
    assert run.state == "succeeded"
    assert rec.state == "executed"
    assert run.actuator == "simulator"
    assert run.idempotency_key.startswith(f"beacon-rec{rec.id}-try1-")
    assert run.pre_state["kpis"]["erab_drop_rate"]["n"] == 4
    assert run.verify_after == NOW + timedelta(minutes=60)
    assert run.guardrails["level"] == 2
    assert run.guardrails["allowed"] is True
    assert run.post_state["effect"]["parameters"] == {"offload_pct": 40.0}
    assert run.post_state["cells_touched"] == 3  # the site's three cells share the load
    [effect] = actuators.simulator_effects(session)
    assert (effect.action, effect.dn, effect.end) == ("lb_param_change", CELL, None)
    assert audit_actions(session)[-2:] == ["automation.execute_started", "automation.executed"]
    with pytest.raises(GuardrailBlocked, match="recommendation_state"):
        execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW)


def test_failed_actuator_leaves_the_recommendation_retryable(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    fake = FakeActuator(fail=True)
    run = execution.execute(
        session, recommendation_id=rec.id, actor=ENGINEER, now=NOW, actuator=fake
    )
    assert (run.state, run.error) == ("failed", "orchestrator answered HTTP 503")
    assert rec.state == "accepted"
    assert audit_actions(session)[-1] == "automation.execute_failed"
    fake.fail = False
    again = execution.execute(
        session, recommendation_id=rec.id, actor=ENGINEER, now=NOW, actuator=fake
    )
    assert again.state == "succeeded"
    assert [key.split("-")[2] for _, key in fake.calls] == ["try1", "try2"]


def test_override_executes_the_humans_action(session: Session) -> None:
    rec = recommend(session, state="overridden")
    session.add(
        Decision(
            recommendation_id=rec.id,
            user_id=kit.user_id(session, "eng-1"),
            verdict="override",
            reason_code="right_diagnosis_wrong_action",
            override_action="lb_param_change",
            override_parameters={"offload_pct": 10},
        )
    )
    session.flush()
    run = execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW)
    assert run.post_state["effect"]["parameters"] == {"offload_pct": 10.0}


def test_better_kpis_keep_the_action(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    congested_history(session)
    run = execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW)
    measure(session, CELL, "prb_util_dl", [70.0, 68.0, 66.0, 71.0], end=NOW + timedelta(hours=1))
    verify_execution(session, execution_id=run.id, now=LATER)
    assert run.state == "verified"
    assert run.verification["outcome"] == "better"
    assert run.verification["kpis"]["prb_util_dl"]["verdict"] == "better"
    assert audit_actions(session)[-1] == "automation.verification.better"


def test_l2_worse_kpis_recommend_rollback_and_an_engineer_rolls_back(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    congested_history(session)
    run = execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW)
    measure(session, CELL, "erab_drop_rate", [4.0, 4.2, 4.4, 4.1], end=NOW + timedelta(hours=1))
    verify_execution(session, execution_id=run.id, now=LATER)
    assert run.state == "rollback_recommended"
    assert run.verification["rollback_recommended"] is True
    assert rec.state == "executed"  # L2: a person decides
    with pytest.raises(InvalidInput, match="needs a reason"):
        execution.rollback(session, execution_id=run.id, actor=ENGINEER, now=LATER, reason=" ")
    with pytest.raises(Forbidden):
        execution.rollback(session, execution_id=run.id, actor=OPERATOR, now=LATER, reason="x")
    done = execution.rollback_recommendation(
        session, recommendation_id=rec.id, actor=ENGINEER, now=LATER, reason="drops went up"
    )
    assert done.id == run.id
    assert (done.state, done.rolled_back_by, rec.state) == ("rolled_back", "eng-1", "rolled_back")
    assert done.rollback["harmful"] is True
    assert use_case(session, "cell_congestion_lb").maturity_level == 2  # humans were in the loop
    [effect] = actuators.simulator_effects(session)
    assert effect.end == LATER  # the simulated network goes back to its old parameters
    with pytest.raises(Conflict, match="nothing to roll back"):
        execution.rollback(session, execution_id=run.id, actor=ENGINEER, now=LATER, reason="x")
    actions = audit_actions(session)
    assert actions[-2:] == ["automation.verification.worse", "automation.rolled_back"]


def test_l3_worse_kpis_roll_back_automatically_queue_and_demote(session: Session) -> None:
    rec = recommend(session, "sleeping_cell_restart")
    measure(session, CELL, "dl_throughput_mbps", [50.0, 52.0, 48.0, 50.0], end=NOW)
    run = execution.execute(
        session, recommendation_id=rec.id, actor="system", now=NOW, automatic=True
    )
    assert run.triggered_by == "system"
    assert run.guardrails["automatic"] is True
    measure(session, CELL, "dl_throughput_mbps", [5.0, 6.0, 4.0, 5.0], end=NOW + timedelta(hours=1))
    verify_execution(session, execution_id=run.id, now=LATER)
    assert run.state == "rolled_back"
    assert run.rolled_back_by == "system"
    assert run.rollback["reason"].startswith("automatic rollback: dl_throughput_mbps worse")
    assert rec.state == "rolled_back"
    case = session.scalars(select(Disagreement).where(Disagreement.execution_id == run.id)).one()
    assert (case.kind, case.recommendation_id) == ("rolled_back", rec.id)
    assert run.verification["disagreement_id"] == case.id
    sleeping = use_case(session, "sleeping_cell_restart")
    assert sleeping.maturity_level == 2
    change = session.scalars(
        select(MaturityChange).where(MaturityChange.use_case_id == sleeping.id)
    ).one()
    assert (change.kind, change.from_level, change.to_level) == ("demotion", 3, 2)
    assert "harmful rollback" in change.reason
    actions = audit_actions(session)
    for step in (
        "automation.executed",
        "automation.verification.worse",
        "automation.rolled_back",
        "automation.maturity.demoted",
    ):
        assert step in actions


def test_guardrail_breach_demotes(session: Session) -> None:
    use_case(session, "cell_congestion_lb", maturity_level=3)
    rec = recommend(session)
    run = execution.execute(
        session,
        recommendation_id=rec.id,
        actor="system",
        now=NOW,
        automatic=True,
        actuator=FakeActuator(cells_touched=9),
    )
    assert run.verification["breach"].endswith("touched 9 cells (cap 3)")
    assert use_case(session, "cell_congestion_lb").maturity_level == 2


def test_roles_and_kiosks_cannot_execute(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    for actor in (Actor(name="v", role="viewer"), Actor(name="wall", kind="kiosk")):
        with pytest.raises(Forbidden):
            execution.execute(session, recommendation_id=rec.id, actor=actor, now=NOW)
    assert rec.state == "accepted"
