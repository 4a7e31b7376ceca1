"""Dry-run: the guardrail verdict, pre-state, planned change and rollback, changing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.automation import actuators as act
from services.automation import verification
from services.automation.guardrails import GuardrailReport, check_guardrails
from services.automation.levels import AUTO_WITH_GUARDRAILS
from services.automation.use_cases import guardrail_settings
from services.config import Settings
from services.db.models import Recommendation, UseCase
from services.errors import NotFound


@dataclass(frozen=True)
class DryRun:
    """What executing would do now, without doing it."""

    recommendation_id: int
    allowed: bool
    guardrails: GuardrailReport
    actuator: str
    action: str
    element: str | None
    pre_state: dict[str, Any]
    planned: dict[str, Any]
    rollback: dict[str, Any]
    verification_minutes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "recommendation_id": self.recommendation_id,
            "allowed": self.allowed,
            "guardrails": self.guardrails.as_dict(),
            "actuator": self.actuator,
            "action": self.action,
            "element": self.element,
            "pre_state": self.pre_state,
            "planned": self.planned,
            "rollback": self.rollback,
            "verification_minutes": self.verification_minutes,
        }


def get_recommendation(session: Session, recommendation_id: int) -> Recommendation:
    """The recommendation or NotFound."""
    rec = session.get(Recommendation, recommendation_id)
    if rec is None:
        raise NotFound(f"recommendation #{recommendation_id} does not exist")
    return rec


def pre_state(
    session: Session,
    *,
    actuator: act.SimulatorActuator | act.WebhookActuator,
    request: act.ActionRequest,
    rec: Recommendation,
    minutes: int,
    now: datetime,
) -> dict[str, Any]:
    """What the actuator reports now plus the watched KPIs over the window before now."""
    state = actuator.read_state(session, request=request)
    state["kpis"] = verification.kpi_snapshot(
        session,
        element_id=rec.element_id,
        action=request.action,
        start=now - timedelta(minutes=minutes),
        end=now,
    )
    state["window"] = {
        "start": (now - timedelta(minutes=minutes)).isoformat(),
        "end": now.isoformat(),
    }
    return state


def dry_run(
    session: Session,
    *,
    recommendation_id: int,
    now: datetime,
    automatic: bool = False,
    actuator: act.SimulatorActuator | act.WebhookActuator | None = None,
    config: Settings | None = None,
) -> DryRun:
    """Guardrails, pre-state, planned parameters and rollback; changes nothing in the network."""
    rec = get_recommendation(session, recommendation_id)
    case = session.get(UseCase, rec.use_case_id)
    settings = guardrail_settings(case)
    report = check_guardrails(session, recommendation=rec, now=now, automatic=automatic)
    request = act.request_for(
        session, recommendation=rec, key="dry-run", use_case_key=case.key, now=now
    )
    minutes = int(settings["verification_minutes"])
    try:
        actuator = actuator or act.actuator_for(settings["actuator"], settings=config)
        pre = pre_state(
            session, actuator=actuator, request=request, rec=rec, minutes=minutes, now=now
        )
        name = actuator.name
    except act.ActuatorError as exc:
        pre, name = {"error": str(exc)}, str(settings["actuator"])
    result = DryRun(
        recommendation_id=rec.id,
        allowed=report.allowed,
        guardrails=report,
        actuator=name,
        action=request.action,
        element=request.element_dn,
        pre_state=pre,
        planned={"action": request.action, "parameters": dict(request.parameters)},
        rollback={
            "plan": dict(rec.rollback_plan or {}),
            "restores": pre.get("parameters", {}),
            "automatic_if_worse": case.maturity_level >= AUTO_WITH_GUARDRAILS,
        },
        verification_minutes=minutes,
    )
    return result
