"""What a disagreement case shows: the AI side, the human side, the data quality at the time,
and whose job it is to review it (the on-call owner of the AI use case)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.automation.levels import REASON_LABELS, level_label
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    DataGap,
    DataHealthEvent,
    Decision,
    Element,
    Execution,
    Incident,
    Kpi,
    Recommendation,
    Source,
    UseCase,
    User,
)
from services.errors import NotFound
from services.oncall import resolve

HEALTH_LOOKBACK = timedelta(days=7)
GAP_LOOKBACK = timedelta(hours=24)
# The AI component that answers for anomalies no use case acts on, and for misses.
DETECTOR_COMPONENT = "detector"


@dataclass(frozen=True)
class Assignment:
    """Who reviews a case: the owning team and its on-call person at the time it opened."""

    team_id: int | None
    person_id: int | None
    subject: str | None


def assign(session: Session, *, use_case: UseCase | None, now: datetime) -> Assignment:
    """The on-call owner of the use case ("usecase:<key>"), else its team, else the detector's."""
    components = [f"usecase:{use_case.key}"] if use_case is not None else []
    for component in [*components, DETECTOR_COMPONENT]:
        try:
            answer = resolve.oncall_for(session, now=now, component=component)
        except NotFound:
            continue
        person = answer.oncall.person
        return Assignment(answer.oncall.team.id, None if person is None else person.id, component)
    if use_case is not None and use_case.owner_team_id is not None:
        person = resolve.oncall_now(session, team_id=use_case.owner_team_id, now=now).person
        return Assignment(use_case.owner_team_id, None if person is None else person.id, None)
    return Assignment(None, None, None)


def recommendation_side(session: Session, rec: Recommendation) -> dict[str, Any]:
    """The AI's proposal as it was raised: action, confidence, rationale, level."""
    case = session.get(UseCase, rec.use_case_id)
    return {
        "kind": "recommendation",
        "recommendation_id": rec.id,
        "use_case": None if case is None else case.key,
        "action": rec.action,
        "parameters": dict(rec.parameters or {}),
        "confidence": rec.confidence,
        "severity": rec.severity,
        "maturity_level": level_label(rec.maturity_level),
        "rationale": rec.rationale,
        "expected_impact": rec.expected_impact,
        "blast_radius": {"cells": rec.blast_radius_cells, "users": rec.blast_radius_users},
        "model_version": (rec.explanation or {}).get("model_version"),
        "raised_at": _iso(rec.created_at),
    }


def anomaly_side(session: Session, anomaly: Anomaly) -> dict[str, Any]:
    """The detector's output: the episode with its explanation and confidence."""
    element = session.get(Element, anomaly.element_id)
    kpi = session.get(Kpi, anomaly.kpi_id)
    explanation = anomaly.explanation or {}
    return {
        "kind": "anomaly",
        "anomaly_id": anomaly.id,
        "element": None if element is None else element.dn,
        "kpi": None if kpi is None else kpi.name,
        "observed": anomaly.observed,
        "expected": anomaly.expected,
        "band": [anomaly.band_low, anomaly.band_high],
        "confidence": anomaly.confidence,
        "severity": anomaly.severity,
        "detector": anomaly.detector,
        "model_version": anomaly.model_version,
        "rationale": str(explanation.get("summary") or ""),
        "started_at": _iso(anomaly.started_at),
    }


def decision_side(session: Session, decision: Decision, *, by: str | None = None) -> dict[str, Any]:
    """The human verdict: who, when, the reason and the note."""
    return {
        "kind": "decision",
        "decision_id": decision.id,
        "verdict": decision.verdict,
        "reason_code": decision.reason_code,
        "reason": REASON_LABELS.get(decision.reason_code, decision.reason_code),
        "note": decision.note,
        "override_action": decision.override_action,
        "override_parameters": dict(decision.override_parameters or {}),
        "by": by or _username(session, decision.user_id),
        "at": _iso(decision.created_at),
    }


def feedback_side(
    session: Session, feedback: AnomalyFeedback | None, *, label: str, actor: str
) -> dict[str, Any]:
    """An operator's verdict on an episode ("not an anomaly", "new normal")."""
    return {
        "kind": "feedback",
        "label": label,
        "note": "" if feedback is None else feedback.note,
        "by": actor,
        "at": None if feedback is None else _iso(feedback.created_at),
    }


def incident_side(incident: Incident) -> dict[str, Any]:
    """An incident a person opened that the AI did not see coming."""
    return {
        "kind": "incident",
        "incident_id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "domain": incident.domain,
        "by": incident.created_by,
        "at": _iso(incident.created_at),
    }


def triage_side(incident: Incident) -> dict[str, Any]:
    """The responders' verdict on an incident: the AI took part and was wrong."""
    return {
        "kind": "triage",
        "incident_id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "domain": incident.domain,
        "ai_detected": incident.ai_detected,
        "ai_recommended": incident.ai_recommended,
        "text": f"Incident #{incident.id} ({incident.title}): the responders judged the AI wrong.",
    }


def execution_side(execution: Execution, *, actor: str, reason: str) -> dict[str, Any]:
    """A rollback of an executed action: who undid it, why, and what verification saw."""
    return {
        "kind": "rollback",
        "execution_id": execution.id,
        "by": actor,
        "reason": reason,
        "verification": dict(execution.verification or {}),
        "at": _iso(execution.rolled_back_at),
    }


def data_quality_at(
    session: Session, *, element_id: int | None, now: datetime, ai_input: dict[str, Any] | None
) -> dict[str, Any]:
    """Source freshness, the element's recent gaps and health events, and the AI's own flags."""
    sources = session.execute(select(Source.name, Source.status).order_by(Source.name)).all()
    stale = [name for name, status in sources if status in ("stale", "failing")]
    doc: dict[str, Any] = {
        "captured_at": _iso(now),
        "sources": {"total": len(sources), "stale": stale},
        "ai_input": dict(ai_input or {}),
    }
    notes = []
    if stale:
        notes.append(f"{len(stale)} of {len(sources)} sources stale or failing: {', '.join(stale)}")
    if element_id is not None:
        gaps = session.scalar(
            select(func.count(DataGap.id)).where(
                DataGap.element_id == element_id,
                DataGap.period_end >= now - GAP_LOOKBACK,
                DataGap.period_start <= now,
            )
        )
        events = session.execute(
            select(DataHealthEvent.kind, DataHealthEvent.summary)
            .where(
                DataHealthEvent.element_id == element_id,
                DataHealthEvent.detected_at >= now - HEALTH_LOOKBACK,
                DataHealthEvent.detected_at <= now,
            )
            .order_by(DataHealthEvent.detected_at.desc())
            .limit(5)
        ).all()
        doc["element"] = {
            "gaps_24h": int(gaps or 0),
            "health_events": [{"kind": k, "summary": s} for k, s in events],
        }
        if gaps:
            notes.append(f"{gaps} data gaps on the element in the last 24 hours")
        if events:
            notes.append(f"{len(events)} data-health events on the element this week")
    flags = list((ai_input or {}).get("flags") or [])
    if flags:
        notes.append("AI input flagged: " + ", ".join(str(f) for f in flags))
    doc["text"] = "; ".join(notes) + "." if notes else "Data was complete and fresh."
    doc["ok"] = not notes
    return doc


def _username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == user_id))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
