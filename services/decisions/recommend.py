"""Raise recommendations from anomaly episodes and capacity breach risks, per use-case trigger.

Each recommendation carries the action and its parameters, the rationale (the detector's
or forecaster's own explanation), confidence, severity, expected impact, blast radius
(cells and users touched), a rollback plan and an expiry. A use case at L0 records its
recommendations as "shadow": kept for measuring the AI, never shown as a decision to take.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from services import audit
from services.anomaly.thresholds import effective_thresholds
from services.audit import SYSTEM
from services.automation.levels import SHADOW
from services.db import Database
from services.db.models import (
    Anomaly,
    CapacityRisk,
    Element,
    Forecast,
    Kpi,
    Recommendation,
    UseCase,
)
from services.decisions import triggers
from services.decisions.plans import blast_cells, estimated_users, plan_for
from services.decisions.states import PENDING
from services.errors import NotFound

# How long a recommendation stays actionable: fast faults go stale in hours, plans in weeks.
EXPIRY: dict[str, timedelta] = {
    "lb_param_change": timedelta(hours=2),
    "cell_restart": timedelta(hours=1),
    "traffic_reroute": timedelta(hours=2),
    "carrier_add_ticket": timedelta(days=14),
}
DEFAULT_EXPIRY = timedelta(hours=4)
SCAN_WINDOW = timedelta(hours=2)  # anomalies evaluated this recently are considered


def raise_for_anomaly(
    session: Session, *, anomaly_id: int, now: datetime, simulated: bool = False
) -> list[Recommendation]:
    """One recommendation per matching use case that has none pending for this episode."""
    anomaly = session.get(Anomaly, anomaly_id)
    if anomaly is None:
        raise NotFound(f"There is no anomaly #{anomaly_id}.")
    if anomaly.suppressed:
        return []
    element = session.get_one(Element, anomaly.element_id)
    kpi = session.get_one(Kpi, anomaly.kpi_id)
    thresholds = effective_thresholds(session)
    raised = []
    for case in _use_cases(session, kind="anomaly"):
        if not triggers.matches_anomaly(case, anomaly=anomaly, element=element, kpi=kpi):
            continue
        if anomaly.confidence < thresholds.for_use_case(case.key):
            continue
        if pending_for(session, case_id=case.id, element_id=element.id, anomaly_id=anomaly.id):
            continue
        explanation = anomaly.explanation or {}
        raised.append(
            create_recommendation(
                session,
                case=case,
                element=element,
                now=now,
                simulated=simulated,
                anomaly_id=anomaly.id,
                confidence=anomaly.confidence,
                severity=anomaly.severity,
                rationale=str(explanation.get("summary") or _anomaly_text(anomaly, kpi, element)),
                explanation={
                    "source": {"kind": "anomaly", "id": anomaly.id},
                    "kpi": kpi.name,
                    "direction": triggers.direction(anomaly),
                    "observed": anomaly.observed,
                    "expected": anomaly.expected,
                    "band": [anomaly.band_low, anomaly.band_high],
                    "started_at": anomaly.started_at.isoformat(),
                    "detector": anomaly.detector,
                    "model_version": anomaly.model_version,
                    "contributing_kpis": list(explanation.get("contributing_kpis") or []),
                    "data_quality": dict(anomaly.data_quality or {}),
                },
                context={"kpi": kpi.name},
            )
        )
    return raised


def raise_for_risk(
    session: Session, *, risk_id: int, now: datetime, simulated: bool = False
) -> list[Recommendation]:
    """One recommendation per matching forecast use case with none pending for the element."""
    risk = session.get(CapacityRisk, risk_id)
    if risk is None:
        raise NotFound(f"There is no capacity risk #{risk_id}.")
    element = session.get_one(Element, risk.element_id)
    kpi = session.get_one(Kpi, risk.kpi_id)
    forecast = session.get(Forecast, risk.forecast_id)
    raised = []
    for case in _use_cases(session, kind="forecast"):
        if not triggers.matches_risk(case, risk=risk, element=element):
            continue
        if pending_for(session, case_id=case.id, element_id=element.id, anomaly_id=None):
            continue
        if _raised_since(session, case=case, element_id=element.id, now=now):
            continue  # a person settled one lately; tomorrow's refit must not nag again
        when = risk.breach_date.date().isoformat() if risk.breach_date else "within 90 days"
        raised.append(
            create_recommendation(
                session,
                case=case,
                element=element,
                now=now,
                simulated=simulated,
                forecast_id=risk.forecast_id,
                confidence=round(float(risk.p_breach_90), 4),
                severity=triggers.risk_severity(risk),
                rationale=(
                    f"{kpi.name} on {element.name} is forecast to cross its capacity threshold "
                    f"{risk.threshold:g} around {when}: probability {risk.p_breach_30:.0%} in "
                    f"30 days, {risk.p_breach_60:.0%} in 60, {risk.p_breach_90:.0%} in 90."
                ),
                explanation={
                    "source": {"kind": "forecast", "id": risk.forecast_id, "risk_id": risk.id},
                    "kpi": kpi.name,
                    "threshold": risk.threshold,
                    "p_breach": {
                        "30": risk.p_breach_30,
                        "60": risk.p_breach_60,
                        "90": risk.p_breach_90,
                    },
                    "breach_date": _iso(risk.breach_date),
                    "breach_interval": [_iso(risk.breach_date_low), _iso(risk.breach_date_high)],
                    "model": None if forecast is None else forecast.model,
                    "model_version": None if forecast is None else forecast.model_version,
                    "data_quality": _forecast_quality(forecast),
                },
                context={"kpi": kpi.name, "breach_date": _iso(risk.breach_date)},
            )
        )
    return raised


def raise_new(
    session: Session, *, now: datetime, since: datetime | None = None, simulated: bool = False
) -> list[Recommendation]:
    """Scan recent anomaly episodes and current breach risks; raise what is missing."""
    since = since or now - SCAN_WINDOW
    anomaly_ids = session.scalars(
        select(Anomaly.id)
        .where(Anomaly.last_evaluated_at >= since, Anomaly.suppressed.is_(False))
        .where((Anomaly.ended_at.is_(None)) | (Anomaly.ended_at >= since))
        .where(~exists().where(Recommendation.anomaly_id == Anomaly.id))
        .order_by(Anomaly.id)
    ).all()
    risk_ids = session.scalars(
        select(CapacityRisk.id)
        .join(Forecast, Forecast.id == CapacityRisk.forecast_id)
        .where(Forecast.is_current.is_(True), CapacityRisk.computed_at >= since)
        .where(~exists().where(Recommendation.forecast_id == CapacityRisk.forecast_id))
        .order_by(CapacityRisk.id)
    ).all()
    raised: list[Recommendation] = []
    for anomaly_id in anomaly_ids:
        raised += raise_for_anomaly(session, anomaly_id=anomaly_id, now=now, simulated=simulated)
    for risk_id in risk_ids:
        raised += raise_for_risk(session, risk_id=risk_id, now=now, simulated=simulated)
    return raised


def raise_job(db: Database, *, now: datetime) -> list[int]:
    """Scheduler entry: raise what recent episodes and risks call for, in one transaction.

    L3+ recommendations are then run by the automation job (execution.run_automatic),
    which checks every guardrail first.
    """
    with db.session(write=True) as session:
        return [r.id for r in raise_new(session, now=now)]


def _use_cases(session: Session, *, kind: str) -> list[UseCase]:
    cases = session.scalars(select(UseCase).where(UseCase.enabled.is_(True)).order_by(UseCase.id))
    return [c for c in cases if triggers.trigger_kind(c.trigger) == kind]


def _raised_since(session: Session, *, case: UseCase, element_id: int, now: datetime) -> bool:
    since = now - EXPIRY.get(case.action, DEFAULT_EXPIRY)
    found = session.scalar(
        select(Recommendation.id)
        .where(
            Recommendation.use_case_id == case.id,
            Recommendation.element_id == element_id,
            Recommendation.created_at >= since,
        )
        .limit(1)
    )
    return found is not None


def pending_for(
    session: Session, *, case_id: int, element_id: int, anomaly_id: int | None = None
) -> bool:
    """True when the use case already has a live recommendation on the element (or episode)."""
    # One live recommendation per use case and element; an episode is never raised twice.
    clause = (Recommendation.element_id == element_id) & Recommendation.state.in_(PENDING)
    if anomaly_id is not None:
        clause = clause | (Recommendation.anomaly_id == anomaly_id)
    found = session.scalar(
        select(Recommendation.id).where(Recommendation.use_case_id == case_id, clause).limit(1)
    )
    return found is not None


def create_recommendation(
    session: Session,
    *,
    case: UseCase,
    element: Element,
    now: datetime,
    simulated: bool,
    confidence: float,
    severity: str,
    rationale: str,
    explanation: dict[str, Any],
    context: dict[str, Any],
    anomaly_id: int | None = None,
    forecast_id: int | None = None,
) -> Recommendation:
    """Store one recommendation of the use case on the element, with its plan; audited."""
    cells = blast_cells(session, element=element, action=case.action)
    plan = plan_for(case.action, element=element, cells=cells, context=context)
    rec = Recommendation(
        use_case_id=case.id,
        anomaly_id=anomaly_id,
        forecast_id=forecast_id,
        element_id=element.id,
        action=case.action,
        parameters=plan.parameters,
        rationale=rationale[:4000],
        explanation={**explanation, "element": {"dn": element.dn, "name": element.name}},
        confidence=float(confidence),
        severity=severity,
        expected_impact=plan.impact,
        blast_radius_cells=len(cells),
        blast_radius_users=estimated_users(session, cells=cells, now=now),
        rollback_plan=plan.rollback,
        maturity_level=case.maturity_level,
        state="shadow" if case.maturity_level == SHADOW else "open",
        simulated=simulated,
        created_at=now,
        expires_at=now + EXPIRY.get(case.action, DEFAULT_EXPIRY),
    )
    session.add(rec)
    session.flush()
    audit.record(
        session,
        actor=SYSTEM,
        action="recommendation.raise",
        object_type="recommendation",
        object_id=rec.id,
        after={
            "use_case": case.key,
            "action": rec.action,
            "element": element.dn,
            "state": rec.state,
            "confidence": rec.confidence,
            "severity": rec.severity,
            "anomaly_id": anomaly_id,
            "forecast_id": forecast_id,
            "simulated": simulated,
        },
    )
    return rec


def _anomaly_text(anomaly: Anomaly, kpi: Kpi, element: Element) -> str:
    return (
        f"{kpi.name} on {element.name} is {anomaly.observed:g} against an expected "
        f"{anomaly.expected:g} (confidence {anomaly.confidence:.0%})."
    )


def _forecast_quality(forecast: Forecast | None) -> dict[str, Any]:
    if forecast is None:
        return {}
    backtest = forecast.backtest or {}
    return {
        "status": forecast.status,
        "fitted_at": _iso(forecast.fitted_at),
        "backtest": {
            k: backtest[k] for k in sorted(backtest) if not isinstance(backtest[k], dict | list)
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
