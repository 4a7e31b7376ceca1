"""Who is on call now: the ownership map, current on-call, next hand-offs, escalation paths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.models import (
    EscalationPolicy,
    EscalationStep,
    Ownership,
    Person,
    Rotation,
    Team,
    TeamMember,
)
from services.errors import InvalidInput, NotFound
from services.oncall import rotations as rot
from services.oncall.schedules import (
    LOOK_AHEAD,
    LOOK_BACK,
    PersonRef,
    TeamRef,
    people_by_id,
    rotation_schedule,
    team_ref,
    team_shifts,
)

SUBJECT_KINDS = ("domain", "region", "component")
TARGET_KINDS = ("schedule", "rotation", "person", "team")


@dataclass(frozen=True)
class OnCall:
    """Who is on call for a team at one instant, since when and until when."""

    team: TeamRef
    person: PersonRef | None
    since: datetime | None
    until: datetime | None
    rotation: str | None  # the layer's name, or "override"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "team": {"id": self.team.id, "key": self.team.key, "name": self.team.name},
            "person": self.person.as_dict() if self.person else None,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "rotation": self.rotation,
        }


@dataclass(frozen=True)
class HandoffView:
    """A coming change of on-call person, with people resolved."""

    at: datetime
    previous: PersonRef | None
    next: PersonRef | None


@dataclass(frozen=True)
class EscalationStepView:
    """One step of an escalation path with the people it would notify now."""

    position: int
    target_kind: str  # schedule, rotation, person, team
    target_name: str
    wait_minutes: int
    people: tuple[PersonRef, ...]


@dataclass(frozen=True)
class OwnerAnswer:
    """The owning team of a subject, who is on call for it now and how it escalates."""

    subject_kind: str
    subject_key: str
    oncall: OnCall
    escalation: tuple[EscalationStepView, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The REST shape: {"team", "person", "until", "escalation": [...]}."""
        return {
            "subject": {"kind": self.subject_kind, "key": self.subject_key},
            **self.oncall.as_dict(),
            "escalation": [
                {
                    "position": step.position,
                    "target_kind": step.target_kind,
                    "target": step.target_name,
                    "wait_minutes": step.wait_minutes,
                    "people": [p.as_dict() for p in step.people],
                }
                for step in self.escalation
            ],
        }


def oncall_now(session: Session, *, team_id: int, now: datetime) -> OnCall:
    """Who is on call for the team at `now`; since/until span that person's unbroken run."""
    team = _get_team(session, team_id)
    final = team_shifts(session, team_id=team_id, start=now - LOOK_BACK, end=now + LOOK_AHEAD)
    current = next((s for s in final if s.start <= now < s.end), None)
    if current is None:
        # Nobody now (every layer restricted): "until" is when someone comes on call.
        upcoming = next((s for s in final if s.start > now), None)
        return OnCall(team_ref(team), None, None, upcoming.start if upcoming else None, None)
    run = next(r for r in rot.person_runs(final) if r.start <= now < r.end)
    people = people_by_id(session, ids=[int(current.person)])
    return OnCall(
        team=team_ref(team),
        person=people.get(int(current.person)),
        since=run.start if run.start > now - LOOK_BACK else None,
        until=run.end if run.end < now + LOOK_AHEAD else None,
        rotation="override" if current.override is not None else _rotation_name(session, current),
    )


def next_handoffs(
    session: Session, *, team_id: int, now: datetime, within: timedelta = timedelta(days=7)
) -> list[HandoffView]:
    """The team's coming changes of on-call person within `within` of `now`."""
    _get_team(session, team_id)
    final = team_shifts(session, team_id=team_id, start=now, end=now + within)
    changes = rot.handoffs_of(final, start=now, end=now + within)
    ids = {int(p) for h in changes for p in (h.previous, h.next) if p is not None}
    people = people_by_id(session, ids=ids)
    return [
        HandoffView(
            at=h.at,
            previous=None if h.previous is None else people.get(int(h.previous)),
            next=None if h.next is None else people.get(int(h.next)),
        )
        for h in changes
    ]


def find_ownership(
    session: Session,
    *,
    domain: str | None = None,
    region: str | None = None,
    component: str | None = None,
) -> Ownership:
    """The ownership row for a component, or for a region of a domain falling back to the domain."""
    if component:
        row = _ownership(session, kind="component", key=component.strip())
        if row is None:
            raise NotFound(f"no team owns the AI component {component!r}")
        return row
    if not domain:
        raise InvalidInput("give a domain (optionally with a region) or a component")
    domain = domain.strip()
    if region:
        row = _ownership(session, kind="region", key=f"{domain}:{region.strip()}")
        if row is not None:
            return row
    row = _ownership(session, kind="domain", key=domain)
    if row is None:
        raise NotFound(f"no team owns the network domain {domain!r}")
    return row


def oncall_for(
    session: Session,
    *,
    now: datetime,
    domain: str | None = None,
    region: str | None = None,
    component: str | None = None,
) -> OwnerAnswer:
    """Owner, on-call person and escalation path for a domain/region or an AI component."""
    row = find_ownership(session, domain=domain, region=region, component=component)
    return _answer(session, row=row, now=now)


def oncall_board(session: Session, *, now: datetime) -> list[OwnerAnswer]:
    """Every ownership with who is on call now: domains, regions, then AI components."""
    rows = session.scalars(
        select(Ownership).order_by(Ownership.subject_kind, Ownership.subject_key)
    )
    order = {kind: i for i, kind in enumerate(SUBJECT_KINDS)}
    memo: dict[Any, Any] = {}
    return [
        _answer(session, row=row, now=now, memo=memo)
        for row in sorted(rows, key=lambda r: (order.get(r.subject_kind, 9), r.subject_key))
    ]


def escalation_path(
    session: Session, *, policy_id: int, now: datetime, memo: dict[Any, Any] | None = None
) -> list[EscalationStepView]:
    """The policy's steps in order, each with the people it would notify at `now`.

    `memo` shares computed on-call answers between calls made for the same `now`.
    """
    if session.get(EscalationPolicy, policy_id) is None:
        raise NotFound(f"no escalation policy with id {policy_id}")
    steps = session.scalars(
        select(EscalationStep)
        .where(EscalationStep.policy_id == policy_id)
        .order_by(EscalationStep.position)
    )
    return [escalation_step(session, step=step, now=now, memo=memo) for step in steps]


def _answer(
    session: Session, *, row: Ownership, now: datetime, memo: dict[Any, Any] | None = None
) -> OwnerAnswer:
    memo = {} if memo is None else memo
    policy_id = row.escalation_policy_id or _team_policy_id(session, row.team_id)
    if ("policy", policy_id) not in memo:
        steps = (
            []
            if policy_id is None
            else escalation_path(session, policy_id=policy_id, now=now, memo=memo)
        )
        memo[("policy", policy_id)] = tuple(steps)
    return OwnerAnswer(
        subject_kind=row.subject_kind,
        subject_key=row.subject_key,
        oncall=_team_oncall(session, team_id=row.team_id, now=now, memo=memo),
        escalation=memo[("policy", policy_id)],
    )


def _team_oncall(session: Session, *, team_id: int, now: datetime, memo: dict[Any, Any]) -> OnCall:
    if ("team", team_id) not in memo:
        memo[("team", team_id)] = oncall_now(session, team_id=team_id, now=now)
    return memo[("team", team_id)]


def escalation_step(
    session: Session, *, step: EscalationStep, now: datetime, memo: dict[Any, Any] | None = None
) -> EscalationStepView:
    """Whom one step notifies at `now`.

    `schedule` (target: a team) is the team's on-call across all its layers, `rotation`
    that one rotation's on-call, `person` that person, `team` every member of the team.
    """
    name, ids = "?", []
    if step.target_kind == "schedule":
        team = session.get(Team, step.target_id)
        if team is not None:
            name = f"On call: {team.name}"
            memo = {} if memo is None else memo
            person = _team_oncall(session, team_id=team.id, now=now, memo=memo).person
            ids = [] if person is None else [person.id]
    elif step.target_kind == "rotation":
        rotation = session.get(Rotation, step.target_id)
        if rotation is not None:
            name = rotation.name
            schedule = rotation_schedule(
                session, rotation_id=rotation.id, start=now - LOOK_BACK, end=now + LOOK_AHEAD
            )
            shift = rot.oncall_at(schedule, at=now)
            ids = [] if shift is None else [int(shift.person)]
    elif step.target_kind == "person":
        person = session.get(Person, step.target_id)
        if person is not None:
            name, ids = person.name, [person.id]
    elif step.target_kind == "team":
        team = session.get(Team, step.target_id)
        if team is not None:
            name = team.name
            ids = list(
                session.scalars(
                    select(TeamMember.person_id)
                    .where(TeamMember.team_id == team.id)
                    .order_by(TeamMember.id)
                )
            )
    people = people_by_id(session, ids=ids)
    return EscalationStepView(
        position=step.position,
        target_kind=step.target_kind,
        target_name=name,
        wait_minutes=step.wait_minutes,
        people=tuple(people[i] for i in ids if i in people),
    )


def _ownership(session: Session, *, kind: str, key: str) -> Ownership | None:
    # Domains and regions match case-insensitively ("transport" finds "Transport").
    query = select(Ownership).where(Ownership.subject_kind == kind)
    if kind == "component":
        query = query.where(Ownership.subject_key == key)
    else:
        query = query.where(func.lower(Ownership.subject_key) == key.lower())
    return session.scalars(query.order_by(Ownership.id).limit(1)).first()


def _team_policy_id(session: Session, team_id: int) -> int | None:
    return session.scalar(
        select(EscalationPolicy.id)
        .where(EscalationPolicy.team_id == team_id)
        .order_by(EscalationPolicy.id)
        .limit(1)
    )


def _get_team(session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team with id {team_id}")
    return team


def _rotation_name(session: Session, shift: rot.Shift) -> str | None:
    if shift.rotation is None:
        return None
    row = session.get(Rotation, int(shift.rotation))
    return None if row is None else row.name


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
