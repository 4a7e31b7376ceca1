"""Schedules at a glance for the on-call page and GET /api/v1/oncall/schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Ownership, Rotation, RotationMember, Team
from services.oncall.resolve import HandoffView, OnCall, next_handoffs, oncall_now
from services.oncall.schedules import PersonRef, people_by_id


@dataclass(frozen=True)
class RotationView:
    """A rotation as the schedules page and API describe it."""

    id: int
    name: str
    kind: str
    layer: int
    tz: str
    handoff_time: str
    handoff_weekday: int | None
    shift_hours: int | None
    restriction: dict[str, Any]
    members: tuple[PersonRef, ...]


@dataclass(frozen=True)
class TeamOverview:
    """A team's schedule at a glance: on call now, next hand-offs, layers, what it owns."""

    oncall: OnCall
    handoffs: tuple[HandoffView, ...]
    rotations: tuple[RotationView, ...]
    owns: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the shape of GET /api/v1/oncall/schedules items)."""
        return {
            **self.oncall.as_dict(),
            "next_handoffs": [
                {
                    "at": h.at.isoformat(),
                    "from": h.previous.as_dict() if h.previous else None,
                    "to": h.next.as_dict() if h.next else None,
                }
                for h in self.handoffs
            ],
            "rotations": [
                {
                    "id": r.id,
                    "name": r.name,
                    "kind": r.kind,
                    "layer": r.layer,
                    "tz": r.tz,
                    "handoff_time": r.handoff_time,
                    "handoff_weekday": r.handoff_weekday,
                    "shift_hours": r.shift_hours,
                    "restriction": r.restriction,
                    "members": [m.as_dict() for m in r.members],
                }
                for r in self.rotations
            ],
            "owns": list(self.owns),
        }


def team_overviews(
    session: Session, *, now: datetime, within: timedelta = timedelta(days=7)
) -> list[TeamOverview]:
    """Every team's on-call now, hand-offs within `within`, rotations and owned subjects."""
    result = []
    for team in session.scalars(select(Team).order_by(Team.name)):
        rows = session.scalars(
            select(Rotation)
            .where(Rotation.team_id == team.id)
            .order_by(Rotation.layer, Rotation.id)
        ).all()
        member_ids = {
            row.id: list(
                session.scalars(
                    select(RotationMember.person_id)
                    .where(RotationMember.rotation_id == row.id)
                    .order_by(RotationMember.position)
                )
            )
            for row in rows
        }
        people = people_by_id(session, ids={p for ids in member_ids.values() for p in ids})
        owns = session.scalars(
            select(Ownership.subject_key)
            .where(Ownership.team_id == team.id)
            .order_by(Ownership.subject_kind, Ownership.subject_key)
        )
        result.append(
            TeamOverview(
                oncall=oncall_now(session, team_id=team.id, now=now),
                handoffs=tuple(next_handoffs(session, team_id=team.id, now=now, within=within)),
                rotations=tuple(
                    RotationView(
                        id=row.id,
                        name=row.name,
                        kind=row.kind,
                        layer=row.layer,
                        tz=row.tz,
                        handoff_time=row.handoff_time,
                        handoff_weekday=row.handoff_weekday,
                        shift_hours=row.shift_hours,
                        restriction=dict(row.restriction or {}),
                        members=tuple(people[i] for i in member_ids[row.id] if i in people),
                    )
                    for row in rows
                ),
                owns=tuple(owns),
            )
        )
    return result
