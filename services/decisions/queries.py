"""Read side of the queue and of recommendations: filtered lists and detail views (JSON-ready)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from services.automation.levels import DISAGREEMENT_KINDS, RECOMMENDATION_STATES, level_label
from services.db.models import (
    AuditEvent,
    Decision,
    Disagreement,
    Execution,
    Person,
    Recommendation,
    Review,
    Team,
    UseCase,
    User,
)
from services.decisions import states
from services.errors import InvalidInput, NotFound

CASE_FILTERS = ("open", "resolved", "overdue", "escalated")
MAX_LIMIT = 1000


def case_query(
    *,
    now: datetime,
    state: str | None = None,
    kind: str | None = None,
    use_case_id: int | None = None,
    assignee_person_id: int | None = None,
    simulated: bool | None = None,
) -> Select[tuple[Disagreement]]:
    """Cases matching the filters, the most urgent first (open by due time, then newest)."""
    query = select(Disagreement)
    if state is not None:
        if state not in CASE_FILTERS:
            raise InvalidInput(f"state must be one of {', '.join(CASE_FILTERS)}")
        if state == "overdue":
            query = query.where(Disagreement.state == "open", Disagreement.due_at <= now)
        elif state == "escalated":
            query = query.where(
                Disagreement.state == "open", Disagreement.escalated_at.is_not(None)
            )
        else:
            query = query.where(Disagreement.state == state)
    if kind is not None:
        if kind not in DISAGREEMENT_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(DISAGREEMENT_KINDS)}")
        query = query.where(Disagreement.kind == kind)
    if use_case_id is not None:
        query = query.where(Disagreement.use_case_id == use_case_id)
    if assignee_person_id is not None:
        query = query.where(Disagreement.assignee_person_id == assignee_person_id)
    if simulated is not None:
        query = query.where(Disagreement.simulated.is_(simulated))
    return query.order_by(
        (Disagreement.state != "open"), Disagreement.due_at, Disagreement.id.desc()
    )


def list_cases(
    session: Session, *, now: datetime, limit: int = 200, offset: int = 0, **filters: Any
) -> list[dict[str, Any]]:
    """One row per case for the queue: both sides in a line each, owner, SLA, outcome and note."""
    cases = session.scalars(
        case_query(now=now, **filters).limit(_limit(limit)).offset(max(0, offset))
    ).all()
    reviews = _latest_reviews(session, [c.id for c in cases])
    names = _names(session, cases)
    return [_case_row(c, now=now, review=reviews.get(c.id), names=names) for c in cases]


def count_cases(session: Session, *, now: datetime, **filters: Any) -> int:
    """How many cases match the filters."""
    inner = case_query(now=now, **filters).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def case_detail(session: Session, *, disagreement_id: int, now: datetime) -> dict[str, Any]:
    """A case with both sides in full, data quality, every review and its audit trail."""
    case = session.get(Disagreement, disagreement_id)
    if case is None:
        raise NotFound(f"There is no disagreement #{disagreement_id}.")
    reviews = session.scalars(
        select(Review).where(Review.disagreement_id == case.id).order_by(Review.id)
    ).all()
    row = _case_row(
        case, now=now, review=reviews[-1] if reviews else None, names=_names(session, [case])
    )
    trail = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_type == "disagreement", AuditEvent.object_id == str(case.id))
        .order_by(AuditEvent.seq)
    ).all()
    return {
        **row,
        "ai_side": dict(case.ai_side or {}),
        "human_side": dict(case.human_side or {}),
        "data_quality": dict(case.data_quality or {}),
        "reviews": [
            {
                "id": r.id,
                "outcome": r.outcome,
                "note": r.note,
                "reviewer": _username(session, r.reviewer_id),
                "at": _iso(r.created_at),
            }
            for r in reviews
        ],
        "history": [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "after": e.after}
            for e in trail
        ],
    }


def list_recommendations(
    session: Session,
    *,
    state: str | None = None,
    use_case_id: int | None = None,
    simulated: bool | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Recommendations newest first, with the fields the REST list and the pages show."""
    query = select(Recommendation)
    if state is not None:
        if state not in (*RECOMMENDATION_STATES, "pending"):
            raise InvalidInput(f"state must be one of {', '.join(RECOMMENDATION_STATES)}")
        wanted = states.DECIDABLE if state == "pending" else (state,)
        query = query.where(Recommendation.state.in_(wanted))
    if use_case_id is not None:
        query = query.where(Recommendation.use_case_id == use_case_id)
    if simulated is not None:
        query = query.where(Recommendation.simulated.is_(simulated))
    recs = session.scalars(
        query.order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
        .limit(_limit(limit))
        .offset(max(0, offset))
    ).all()
    cases = {c.id: c for c in session.scalars(select(UseCase))}
    return [recommendation_row(r, use_case=cases.get(r.use_case_id)) for r in recs]


def recommendation_row(rec: Recommendation, *, use_case: UseCase | None) -> dict[str, Any]:
    """The JSON shape of one recommendation."""
    return {
        "id": rec.id,
        "use_case_id": rec.use_case_id,
        "use_case": None if use_case is None else use_case.name,
        "maturity_level": level_label(rec.maturity_level),
        "state": rec.state,
        "action": rec.action,
        "parameters": dict(rec.parameters or {}),
        "confidence": rec.confidence,
        "severity": rec.severity,
        "element": (rec.explanation or {}).get("element"),
        "rationale": rec.rationale,
        "expected_impact": rec.expected_impact,
        "blast_radius": {"cells": rec.blast_radius_cells, "users": rec.blast_radius_users},
        "rollback_plan": dict(rec.rollback_plan or {}),
        "needs_second_approval": states.needs_second_approval(rec),
        "anomaly_id": rec.anomaly_id,
        "forecast_id": rec.forecast_id,
        "simulated": rec.simulated,
        "created_at": _iso(rec.created_at),
        "expires_at": _iso(rec.expires_at),
        "decided_at": _iso(rec.decided_at),
    }


def recommendation_detail(session: Session, *, recommendation_id: int) -> dict[str, Any]:
    """A recommendation with its explanation, decisions, executions and disagreement cases."""
    rec = session.get(Recommendation, recommendation_id)
    if rec is None:
        raise NotFound(f"There is no recommendation #{recommendation_id}.")
    decisions = session.scalars(
        select(Decision).where(Decision.recommendation_id == rec.id).order_by(Decision.id)
    ).all()
    executions = session.scalars(
        select(Execution).where(Execution.recommendation_id == rec.id).order_by(Execution.id)
    ).all()
    cases = session.scalars(
        select(Disagreement.id).where(Disagreement.recommendation_id == rec.id)
    ).all()
    return {
        **recommendation_row(rec, use_case=session.get(UseCase, rec.use_case_id)),
        "explanation": dict(rec.explanation or {}),
        "decisions": [
            {
                "id": d.id,
                "verdict": d.verdict,
                "reason_code": d.reason_code,
                "note": d.note,
                "override_action": d.override_action,
                "approval_step": d.approval_step,
                "by": _username(session, d.user_id),
                "at": _iso(d.created_at),
            }
            for d in decisions
        ],
        "executions": [
            {
                "id": e.id,
                "state": e.state,
                "actuator": e.actuator,
                "dry_run": e.dry_run,
                "started_at": _iso(e.started_at),
                "rolled_back_at": _iso(e.rolled_back_at),
            }
            for e in executions
        ],
        "disagreement_ids": list(cases),
    }


def _case_row(
    case: Disagreement, *, now: datetime, review: Review | None, names: dict[str, dict[int, str]]
) -> dict[str, Any]:
    ai, human = case.ai_side or {}, case.human_side or {}
    return {
        "id": case.id,
        "kind": case.kind,
        "state": case.state,
        "use_case_id": case.use_case_id,
        "use_case": names["use_case"].get(case.use_case_id or 0),
        "recommendation_id": case.recommendation_id,
        "anomaly_id": case.anomaly_id,
        "incident_id": case.incident_id,
        "execution_id": case.execution_id,
        "ai_summary": _ai_line(ai),
        "human_summary": _human_line(human),
        "data_quality": (case.data_quality or {}).get("text", ""),
        "team": names["team"].get(case.assigned_team_id or 0),
        "assignee": names["person"].get(case.assignee_person_id or 0),
        "assignee_person_id": case.assignee_person_id,
        "created_at": _iso(case.created_at),
        "due_at": _iso(case.due_at),
        "overdue": case.state == "open" and case.due_at is not None and case.due_at <= now,
        "escalated_at": _iso(case.escalated_at),
        "outcome": None if review is None else review.outcome,
        "review_note": None if review is None else review.note,
        "reviewed_at": None if review is None else _iso(review.created_at),
        "simulated": case.simulated,
    }


def _ai_line(ai: dict[str, Any]) -> str:
    sure = f"{float(ai.get('confidence') or 0):.0%}"
    if ai.get("kind") == "recommendation":
        return f"{ai.get('action')} ({sure}): {ai.get('rationale', '')}"
    if ai.get("kind") == "anomaly":
        return f"Anomaly on {ai.get('kpi')} ({sure}): {ai.get('rationale', '')}"
    return str(ai.get("text", ""))


def _human_line(human: dict[str, Any]) -> str:
    kind, by = human.get("kind"), human.get("by") or human.get("actor") or "someone"
    if kind == "decision":
        text = f"{by}: {human.get('verdict')} — {human.get('reason') or human.get('reason_code')}"
        if human.get("override_action"):
            text += f" (did {human['override_action']} instead)"
        return text + (f". {human['note']}" if human.get("note") else "")
    if kind == "feedback":
        label = str(human.get("label", "")).replace("_", " ")
        return f"{by}: {label}" + (f". {human['note']}" if human.get("note") else "")
    if kind == "incident":
        return f"{by} opened incident #{human.get('incident_id')}: {human.get('title')}"
    if kind == "rollback" or "verification" in human:
        return f"Rolled back by {by}" + (f": {human['reason']}" if human.get("reason") else "")
    return f"{by}: {kind}"


def _latest_reviews(session: Session, ids: list[int]) -> dict[int, Review]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Review).where(Review.disagreement_id.in_(ids)).order_by(Review.id)
    ).all()
    return {r.disagreement_id: r for r in rows}


def _names(session: Session, cases: list[Disagreement]) -> dict[str, dict[int, str]]:
    def lookup(model: Any, column: Any, ids: set[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        return dict(session.execute(select(model.id, column).where(model.id.in_(wanted))).all())

    return {
        "use_case": lookup(UseCase, UseCase.name, {c.use_case_id for c in cases}),
        "team": lookup(Team, Team.name, {c.assigned_team_id for c in cases}),
        "person": lookup(Person, Person.name, {c.assignee_person_id for c in cases}),
    }


def _username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == user_id))


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
