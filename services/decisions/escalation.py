"""Review SLA of disagreement cases: overdue cases go to the next person on the owner's path."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import SYSTEM, Actor
from services.db import Database
from services.db.models import Disagreement, Person, UseCase
from services.decisions import context, states
from services.errors import Conflict, NotFound
from services.oncall import resolve

log = logging.getLogger(__name__)

ESCALATION_BATCH = 200


@dataclass
class EscalationRun:
    """What one escalation run did."""

    escalated: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def reassign(
    session: Session, *, disagreement_id: int, person_id: int, actor: Actor
) -> Disagreement:
    """Hand a case to another reviewer; audited."""
    states.require_role(actor, roles=states.REVIEW_ROLES, doing="reassign disagreements")
    case = states.case_for_update(session, disagreement_id)
    if case.state != "open":
        raise Conflict(f"Disagreement #{case.id} is already {case.state}.")
    if session.get(Person, person_id) is None:
        raise NotFound(f"There is no person #{person_id}.")
    before = case.assignee_person_id
    case.assignee_person_id = person_id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="disagreement.reassign",
        object_type="disagreement",
        object_id=case.id,
        before={"assignee_person_id": before},
        after={"assignee_person_id": person_id},
    )
    return case


def overdue_ids(session: Session, *, now: datetime) -> list[int]:
    """Open cases past their review SLA that have not been escalated yet, oldest first."""
    return list(
        session.scalars(
            select(Disagreement.id)
            .where(
                Disagreement.state == "open",
                Disagreement.due_at.is_not(None),
                Disagreement.due_at <= now,
                Disagreement.escalated_at.is_(None),
            )
            .order_by(Disagreement.due_at, Disagreement.id)
            .limit(ESCALATION_BATCH)
        )
    )


def escalate_overdue(db: Database, *, now: datetime) -> EscalationRun:
    """Job: escalate every overdue case in its own transaction; one failure never stops the rest."""
    run = EscalationRun()
    with db.session() as session:
        ids = overdue_ids(session, now=now)
    for case_id in ids:
        try:
            with db.session(write=True) as session:
                if escalate(session, disagreement_id=case_id, now=now):
                    run.escalated.append(case_id)
        except Exception as exc:  # logged per case; it stays overdue for the next run
            log.exception("escalating disagreement %s failed", case_id)
            run.errors.append(f"#{case_id}: {type(exc).__name__}: {exc}"[:300])
    return run


def escalate(
    session: Session, *, disagreement_id: int, now: datetime, actor: Actor = SYSTEM
) -> bool:
    """Hand an overdue case to the next person on the owner's escalation path; audited."""
    states.require_role(actor, roles=states.DECIDE_ROLES, doing="escalate disagreements")
    case = states.case_for_update(session, disagreement_id)
    if case.state != "open" or case.escalated_at is not None:
        return False
    if actor.kind == "system" and (case.due_at is None or case.due_at > now):
        return False
    before = {"assignee_person_id": case.assignee_person_id, "due_at": _iso(case.due_at)}
    case.assignee_person_id = _next_person(session, case, now) or case.assignee_person_id
    case.escalated_at = now
    case.due_at = now + states.ESCALATION_GRACE
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="disagreement.escalate",
        object_type="disagreement",
        object_id=case.id,
        before=before,
        after={"assignee_person_id": case.assignee_person_id, "due_at": _iso(case.due_at)},
    )
    return True


def _next_person(session: Session, case: Disagreement, now: datetime) -> int | None:
    # The first escalation step that names someone other than the current assignee.
    use_case = session.get(UseCase, case.use_case_id) if case.use_case_id else None
    component = f"usecase:{use_case.key}" if use_case is not None else context.DETECTOR_COMPONENT
    try:
        answer = resolve.oncall_for(session, now=now, component=component)
    except NotFound:
        return None
    for step in answer.escalation:
        for person in step.people:
            if person.id != case.assignee_person_id:
                return person.id
    return None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
