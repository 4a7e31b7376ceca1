"""The disagreement queue: every case where human and AI differ, its owner, SLA and review.

The human decision always stands; the case records both sides and the data quality at the
time, goes to the on-call owner of the AI use case, and is escalated when its review SLA
passes. The review outcome decides what the AI learns (services/decisions/learning.py).

Sources: a rejected or overridden recommendation (decide.py), an anomaly labelled "not an
anomaly" or "new normal" (`on_anomaly_feedback`), an incident opened by a person with no
AI anomaly linked before it (`on_incident_opened`), an incident whose triage says the AI
detected or recommended but was wrong (`on_incident_triage`), and a rolled-back action
(`on_rollback`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit
from services.audit import SYSTEM, Actor
from services.automation.levels import DISAGREEMENT_KINDS
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    Decision,
    Disagreement,
    Element,
    Execution,
    Incident,
    Kpi,
    Recommendation,
    UseCase,
)
from services.decisions import context, learning, triggers
from services.decisions.escalation import (
    EscalationRun,
    escalate,
    escalate_overdue,
    overdue_ids,
    reassign,
)
from services.decisions.reviews import BulkReview, review, review_many
from services.decisions.states import REVIEW_SLA
from services.errors import InvalidInput, NotFound

__all__ = [
    "FALSE_POSITIVE_LABELS",
    "BulkReview",
    "EscalationRun",
    "escalate",
    "escalate_overdue",
    "on_anomaly_feedback",
    "on_incident_opened",
    "on_incident_triage",
    "on_rollback",
    "open_case",
    "overdue_ids",
    "reassign",
    "review",
    "review_many",
]

# Anomaly labels that say the AI was wrong to flag the episode.
FALSE_POSITIVE_LABELS = ("not_anomaly", "new_normal")
# What the human side is when a caller hands it in without saying.
_HUMAN_KINDS = {
    "rolled_back": "rollback",
    "false_positive": "feedback",
    "missed": "incident",
    "ai_wrong": "triage",
}
# The link each kind must carry: what the case stems from.
_REQUIRED = {
    "rejected": "recommendation_id",
    "overridden": "recommendation_id",
    "false_positive": "anomaly_id",
    "missed": "incident_id",
    "ai_wrong": "incident_id",
    "rolled_back": "execution_id",
}


def open_case(
    session: Session,
    *,
    kind: str,
    now: datetime,
    actor: Actor = SYSTEM,
    recommendation_id: int | None = None,
    decision_id: int | None = None,
    anomaly_id: int | None = None,
    incident_id: int | None = None,
    execution_id: int | None = None,
    use_case_id: int | None = None,
    ai_side: dict[str, Any] | None = None,
    human_side: dict[str, Any] | None = None,
    simulated: bool = False,
) -> Disagreement:
    """Open a case (or return the open one for the same source); assigned and audited."""
    if kind not in DISAGREEMENT_KINDS:
        raise InvalidInput(f"Unknown disagreement kind {kind!r}.")
    links = {
        "recommendation_id": recommendation_id,
        "anomaly_id": anomaly_id,
        "incident_id": incident_id,
        "execution_id": execution_id,
    }
    if links[_REQUIRED[kind]] is None:
        raise InvalidInput(f"A {kind} case needs {_REQUIRED[kind]}.")
    existing = session.scalar(
        select(Disagreement).where(
            Disagreement.kind == kind,
            Disagreement.state == "open",
            getattr(Disagreement, _REQUIRED[kind]) == links[_REQUIRED[kind]],
        )
    )
    if existing is not None:
        return existing
    execution = _get(session, Execution, execution_id)
    if execution is not None and recommendation_id is None:
        recommendation_id = execution.recommendation_id
    rec = _get(session, Recommendation, recommendation_id)
    if anomaly_id is None and rec is not None:
        anomaly_id = rec.anomaly_id
    anomaly = _get(session, Anomaly, anomaly_id)
    incident = _get(session, Incident, incident_id)
    found = {"recommendation_id": rec, "anomaly_id": anomaly, "incident_id": incident}
    if found.get(_REQUIRED[kind], execution) is None:
        raise NotFound(f"There is no {_REQUIRED[kind][:-3]} #{links[_REQUIRED[kind]]}.")
    simulated = simulated or (rec is not None and rec.simulated)
    if use_case_id is None and rec is not None:
        use_case_id = rec.use_case_id
    use_case = _get(session, UseCase, use_case_id) or _use_case_of(session, anomaly)
    if ai_side is None:
        ai_side = _ai_side(session, rec=rec, anomaly=anomaly, incident=incident)
    if human_side is None:
        human_side = _human_side(
            session, kind=kind, rec=rec, decision_id=decision_id, incident=incident, actor=actor
        )
    else:
        human_side = {"kind": _HUMAN_KINDS.get(kind, kind), "by": actor.name, **human_side}
    element_id = rec.element_id if rec is not None else None
    if element_id is None and anomaly is not None:
        element_id = anomaly.element_id
    ai_input = (anomaly.data_quality if anomaly is not None else None) or (
        (rec.explanation or {}).get("data_quality") if rec is not None else None
    )
    who = context.assign(session, use_case=use_case, now=now)
    case = Disagreement(
        kind=kind,
        state="open",
        use_case_id=None if use_case is None else use_case.id,
        recommendation_id=None if rec is None else rec.id,
        anomaly_id=None if anomaly is None else anomaly.id,
        incident_id=incident_id,
        execution_id=execution_id,
        ai_side=ai_side,
        human_side=human_side,
        data_quality=context.data_quality_at(
            session, element_id=element_id, now=now, ai_input=ai_input
        ),
        assigned_team_id=who.team_id,
        assignee_person_id=who.person_id,
        due_at=now + REVIEW_SLA[kind],
        simulated=simulated,
        created_at=now,
    )
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="disagreement.open",
        object_type="disagreement",
        object_id=case.id,
        after={
            "kind": kind,
            **{k: v for k, v in links.items() if v is not None},
            "recommendation_id": case.recommendation_id,
            "use_case_id": case.use_case_id,
            "assigned_team_id": who.team_id,
            "assignee_person_id": who.person_id,
            "due_at": case.due_at.isoformat() if case.due_at else None,
            "simulated": simulated,
        },
    )
    return case


def on_anomaly_feedback(
    session: Session, *, anomaly_id: int, label: str, actor: Actor | str, now: datetime
) -> Disagreement | None:
    """Hook after feedback on an episode: "not an anomaly" / "new normal" open a case."""
    if label not in FALSE_POSITIVE_LABELS:
        return None
    who = actor if isinstance(actor, Actor) else Actor(name=actor)
    feedback = session.scalar(
        select(AnomalyFeedback)
        .where(AnomalyFeedback.anomaly_id == anomaly_id, AnomalyFeedback.label == label)
        .order_by(AnomalyFeedback.id.desc())
        .limit(1)
    )
    if session.get(Anomaly, anomaly_id) is None:
        raise NotFound(f"There is no anomaly #{anomaly_id}.")
    return open_case(
        session,
        kind="false_positive",
        anomaly_id=anomaly_id,
        human_side=context.feedback_side(session, feedback, label=label, actor=who.name),
        actor=who,
        now=now,
    )


def on_incident_opened(session: Session, *, incident_id: int, now: datetime) -> Disagreement | None:
    """Hook after an incident opens: one a person opened with no AI anomaly linked is a miss."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"There is no incident #{incident_id}.")
    if incident.origin != "manual" or incident.ai_detected:
        return None
    linked = session.scalar(
        select(func.count(Anomaly.id)).where(
            Anomaly.incident_id == incident.id, Anomaly.started_at <= incident.created_at
        )
    )
    if linked:
        return None
    return open_case(session, kind="missed", incident_id=incident.id, now=now)


def on_incident_triage(
    session: Session, *, incident_id: int, actor: Actor, now: datetime
) -> Disagreement | None:
    """Hook after AI triage: "the AI detected or recommended, and was wrong" opens a case.

    The AI side is the episode linked to the incident (with its explanation) when there is
    one; the case goes to that episode's use case owner, else to the detector's.
    """
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"There is no incident #{incident_id}.")
    if incident.ai_correct is not False:
        return None
    anomaly_id = session.scalar(
        select(Anomaly.id)
        .where(Anomaly.incident_id == incident.id)
        .order_by(Anomaly.confidence.desc(), Anomaly.id)
        .limit(1)
    )
    return open_case(
        session,
        kind="ai_wrong",
        incident_id=incident.id,
        anomaly_id=anomaly_id,
        human_side={**context.triage_side(incident), "at": now.isoformat()},
        actor=actor,
        now=now,
    )


def on_rollback(
    session: Session, *, execution_id: int, actor: Actor | str, now: datetime, reason: str = ""
) -> Disagreement:
    """Hook after an executed action was rolled back (automatically or by a person)."""
    who = actor if isinstance(actor, Actor) else Actor(name=actor, kind="system")
    execution = _get(session, Execution, execution_id)
    if execution is None:
        raise NotFound(f"There is no execution #{execution_id}.")
    return open_case(
        session,
        kind="rolled_back",
        execution_id=execution.id,
        human_side=context.execution_side(execution, actor=who.name, reason=reason),
        actor=who,
        now=now,
    )


def _ai_side(
    session: Session,
    *,
    rec: Recommendation | None,
    anomaly: Anomaly | None,
    incident: Incident | None,
) -> dict[str, Any]:
    if rec is not None:
        side = context.recommendation_side(session, rec)
        if anomaly is not None:
            side["anomaly"] = context.anomaly_side(session, anomaly)
        return side
    if anomaly is not None:
        side = context.anomaly_side(session, anomaly)
        if incident is not None:
            side["incident_id"] = incident.id
        return side
    if incident is not None and incident.ai_correct is False:
        return {
            "kind": "incident_triage",
            "text": "The responders recorded that the AI "
            + " and ".join(
                w
                for w, on in (
                    ("detected", incident.ai_detected),
                    ("recommended", incident.ai_recommended),
                )
                if on
            )
            + " on this incident, with no episode linked to it.",
            "incident_id": incident.id,
        }
    if incident is not None:
        return _miss_side(session, incident)
    return {}


def _miss_side(session: Session, incident: Incident) -> dict[str, Any]:
    # What the detector had open on the incident's domain then: the reviewer judges the miss.
    start = incident.created_at - learning.MISS_LOOKBACK
    query = (
        select(func.count(Anomaly.id))
        .join(Element, Element.id == Anomaly.element_id)
        .where(Anomaly.started_at <= incident.created_at, Anomaly.started_at >= start)
    )
    if incident.domain:
        query = query.where(func.lower(Element.domain) == incident.domain.lower())
    nearby = int(session.scalar(query) or 0)
    hours = int(learning.MISS_LOOKBACK.total_seconds() // 3600)
    return {
        "kind": "none",
        "text": f"No AI anomaly was linked to this incident. {nearby} anomalies started in "
        f"its domain in the {hours} hours before it.",
        "anomalies_in_domain": nearby,
        "lookback_hours": hours,
    }


def _human_side(
    session: Session,
    *,
    kind: str,
    rec: Recommendation | None,
    decision_id: int | None,
    incident: Incident | None,
    actor: Actor,
) -> dict[str, Any]:
    if kind in ("rejected", "overridden") and rec is not None:
        query = select(Decision).where(Decision.recommendation_id == rec.id)
        if decision_id is not None:
            query = query.where(Decision.id == decision_id)
        decision = session.scalar(query.order_by(Decision.id.desc()).limit(1))
        if decision is not None:
            return context.decision_side(session, decision, by=actor.name)
    if kind == "missed" and incident is not None:
        return context.incident_side(incident)
    return {"kind": _HUMAN_KINDS.get(kind, kind), "by": actor.name}


def _use_case_of(session: Session, anomaly: Anomaly | None) -> UseCase | None:
    if anomaly is None:
        return None
    element = session.get(Element, anomaly.element_id)
    kpi = session.get(Kpi, anomaly.kpi_id)
    if element is None or kpi is None:
        return None
    for case in session.scalars(select(UseCase).order_by(UseCase.id)):
        if triggers.matches_anomaly(case, anomaly=anomaly, element=element, kpi=kpi):
            return case
    return None


def _get(session: Session, model: Any, key: int | None) -> Any:
    return None if key is None else session.get(model, key)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
