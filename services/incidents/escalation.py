"""The escalation runner: page each step's on-call, wait, go on, repeat; remind after ack.

Every timer lives in the incident row (position, round, next_escalation_at), so a restarted
scheduler carries on where the last one stopped; pages go through the outbox in the same
transaction as the escalation event they belong to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db import Database
from services.db.models import (
    EscalationPolicy,
    EscalationStep,
    Incident,
    Person,
    User,
    utcnow,
)
from services.errors import InvalidInput
from services.incidents import lifecycle, states, timeline
from services.notify import outbox
from services.notify.config import NotifyConfig
from services.oncall import resolve as oncall
from services.oncall.schedules import PersonRef, people_by_id

log = logging.getLogger(__name__)

JOB_ID = "incidents.escalate"
JOB_EVERY_S = 30
BATCH = 500


@dataclass
class EscalationReport:
    """What one run did: steps paged, reminders sent, policies run out, incidents that failed."""

    paged: int = 0
    reminded: int = 0
    exhausted: int = 0
    errors: list[str] = field(default_factory=list)


def due_incidents(session: Session, *, now: datetime, limit: int = BATCH) -> list[int]:
    """Open incidents whose escalation timer has passed, the longest overdue first."""
    return list(
        session.scalars(
            select(Incident.id)
            .where(
                Incident.next_escalation_at.is_not(None),
                Incident.next_escalation_at <= now,
                Incident.status.in_(states.OPEN_STATES),
            )
            .order_by(Incident.next_escalation_at, Incident.id)
            .limit(limit)
        )
    )


def run_escalations(
    db: Database, *, now: datetime | None = None, config: NotifyConfig | None = None
) -> EscalationReport:
    """Advance every due incident in its own transaction; one failure never stops the rest."""
    now = now or utcnow()
    config = config or NotifyConfig()
    report = EscalationReport()
    with db.session() as session:
        ids = due_incidents(session, now=now)
    for incident_id in ids:
        try:
            with db.session(write=True) as session:
                outcome = advance(session, incident_id=incident_id, now=now, config=config)
        except Exception as exc:  # logged per incident; the timer stays due for the next run
            log.exception("escalating incident %s failed", incident_id)
            report.errors.append(f"#{incident_id}: {type(exc).__name__}: {exc}"[:300])
            continue
        if outcome == "paged":
            report.paged += 1
        elif outcome == "reminded":
            report.reminded += 1
        elif outcome == "exhausted":
            report.exhausted += 1
    return report


def advance(
    session: Session, *, incident_id: int, now: datetime, config: NotifyConfig
) -> str | None:
    """Act on one due incident: page the next step, or remind; None when nothing was due."""
    incident = lifecycle.get_for_update(session, incident_id=incident_id)
    due = incident.next_escalation_at
    # Re-checked under the lock: an acknowledgement may have landed since the due query.
    if incident.status not in states.OPEN_STATES or due is None or due > now:
        return None
    if incident.status == "triggered":
        return _page_next(session, incident, now=now, config=config, actor=audit.SYSTEM)
    return _remind(session, incident, due=due, now=now, config=config)


def escalate_now(
    session: Session,
    *,
    incident_id: int,
    actor: Actor,
    now: datetime | None = None,
    config: NotifyConfig | None = None,
) -> str:
    """Page the next step at once (a responder asks for help); audited."""
    states.require_responder(actor)
    incident = lifecycle.get_for_update(session, incident_id=incident_id)
    if incident.status not in states.OPEN_STATES:
        raise states.IllegalTransition(f"Incident #{incident.id} is resolved; nothing to escalate.")
    if incident.escalation_policy_id is None:
        raise InvalidInput(f"Incident #{incident.id} has no escalation policy to follow.")
    return _page_next(
        session,
        incident,
        now=now or utcnow(),
        config=config or NotifyConfig(),
        actor=actor,
        manual=True,
    )


def _page_next(
    session: Session,
    incident: Incident,
    *,
    now: datetime,
    config: NotifyConfig,
    actor: Actor,
    manual: bool = False,
) -> str:
    policy = (
        None
        if incident.escalation_policy_id is None
        else session.get(EscalationPolicy, incident.escalation_policy_id)
    )
    steps = [] if policy is None else _steps(session, policy.id)
    if policy is None or not steps:
        return _exhausted(session, incident, now=now, reason="the policy has no steps")
    repeats = max(policy.repeat_count, 0)
    position, round_ = incident.escalation_position, incident.escalation_round
    # Steps with nobody on call (a restricted layer off hours) are skipped, not waited on.
    for _ in range(len(steps) * (repeats + 1) + 1):
        step = next((s for s in steps if s.position > position), None)
        if step is None:
            round_ += 1
            if round_ > repeats and not manual:
                break
            step = steps[0]
        position = step.position
        view = oncall.escalation_step(session, step=step, now=now)
        if not view.people:
            timeline.add_event(
                session,
                incident_id=incident.id,
                kind="escalation",
                actor=actor.name,
                text=f"Step {step.position} ({view.target_name}): nobody on call, skipped",
                data={"round": round_, "position": step.position, "people": []},
                at=now,
            )
            continue
        before = _timer(incident)
        incident.escalation_position, incident.escalation_round = position, round_
        if incident.status == "triggered":
            incident.next_escalation_at = now + timedelta(minutes=step.wait_minutes)
        names = ", ".join(p.name for p in view.people)
        message = (
            f"[{incident.severity.upper()}] Incident #{incident.id}: {incident.title} "
            f"— please acknowledge (step {position}: {view.target_name})"
        )
        outbox.page(
            session,
            incident=incident,
            people=view.people,
            event="incident.escalated",
            event_key=f"page:r{round_}:p{position}:{int(now.timestamp())}",
            message=message,
            config=config,
            now=now,
        )
        timeline.add_event(
            session,
            incident_id=incident.id,
            kind="escalation",
            actor=actor.name,
            text=(
                f"{'Escalated by hand' if manual else 'Paged'}: {names} "
                f"(step {position}: {view.target_name}; round {round_ + 1})"
            ),
            data={
                "round": round_,
                "position": position,
                "people": [p.id for p in view.people],
                "wait_minutes": step.wait_minutes,
                "manual": manual,
            },
            at=now,
        )
        audit.record(
            session,
            actor=actor,
            action="incident.escalate",
            object_type="incident",
            object_id=incident.id,
            before=before,
            after={**_timer(incident), "people": [p.id for p in view.people], "manual": manual},
        )
        return "paged"
    incident.escalation_position, incident.escalation_round = position, round_
    return _exhausted(session, incident, now=now, reason=f"{repeats + 1} round(s) without an ack")


def _remind(
    session: Session, incident: Incident, *, due: datetime, now: datetime, config: NotifyConfig
) -> str:
    people = _acknowledger(session, incident) or _current_step_people(session, incident, now)
    before = _timer(incident)
    incident.next_escalation_at = lifecycle.renotify_at(session, incident=incident, now=now)
    if people:
        outbox.page(
            session,
            incident=incident,
            people=people,
            event="incident.reminder",
            event_key=f"remind:{int(due.timestamp())}",
            message=(
                f"[{incident.severity.upper()}] Incident #{incident.id} is still "
                f"{incident.status}, not resolved: {incident.title}"
            ),
            config=config,
            now=now,
        )
    names = ", ".join(p.name for p in people) or "nobody reachable"
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="escalation",
        text=f"Reminder: still {incident.status}, not resolved; notified {names}",
        actor=audit.SYSTEM.name,
        data={"reminder": True, "people": [p.id for p in people]},
        at=now,
    )
    audit.record(
        session,
        actor=audit.SYSTEM,
        action="incident.remind",
        object_type="incident",
        object_id=incident.id,
        before=before,
        after={**_timer(incident), "people": [p.id for p in people]},
    )
    return "reminded"


def _exhausted(session: Session, incident: Incident, *, now: datetime, reason: str) -> str:
    before = _timer(incident)
    incident.next_escalation_at = None
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="escalation",
        actor=audit.SYSTEM.name,
        text=f"Escalation stopped: {reason}; the incident stays open",
        data={"exhausted": True},
        at=now,
    )
    audit.record(
        session,
        actor=audit.SYSTEM,
        action="incident.escalation.exhausted",
        object_type="incident",
        object_id=incident.id,
        before=before,
        after={**_timer(incident), "reason": reason},
    )
    return "exhausted"


def _acknowledger(session: Session, incident: Incident) -> list[PersonRef]:
    # The person who acknowledged is reminded first, when their login is linked to a person.
    if not incident.acknowledged_by:
        return []
    person_id = session.scalar(
        select(Person.id)
        .join(User, User.id == Person.user_id)
        .where(User.username == incident.acknowledged_by)
        .limit(1)
    )
    if person_id is None:
        return []
    return list(people_by_id(session, ids=[person_id]).values())


def _current_step_people(session: Session, incident: Incident, now: datetime) -> list[PersonRef]:
    if incident.escalation_policy_id is None:
        return []
    steps = _steps(session, incident.escalation_policy_id)
    step = next((s for s in steps if s.position == incident.escalation_position), None)
    step = step or (steps[0] if steps else None)
    return [] if step is None else list(oncall.escalation_step(session, step=step, now=now).people)


def _steps(session: Session, policy_id: int) -> list[EscalationStep]:
    return list(
        session.scalars(
            select(EscalationStep)
            .where(EscalationStep.policy_id == policy_id)
            .order_by(EscalationStep.position)
        )
    )


def _timer(incident: Incident) -> dict[str, object]:
    return {
        "position": incident.escalation_position,
        "round": incident.escalation_round,
        "next_escalation_at": incident.next_escalation_at,
    }
