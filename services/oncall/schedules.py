"""Schedules from the database: stored rotations and overrides as pure schedules, and shifts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import OncallOverride, Person, Rotation, RotationMember, Team, TeamMember
from services.errors import BeaconError, NotFound
from services.oncall import rotations as rot

log = logging.getLogger(__name__)

LOOK_BACK = timedelta(days=8)  # longer than a weekly shift, so "since" is its real start
LOOK_AHEAD = timedelta(days=15)  # far enough to find the next weekly hand-off


@dataclass(frozen=True)
class PersonRef:
    """A person as pages, the API and notifiers show them."""

    id: int
    name: str
    email: str | None = None
    phone: str | None = None
    tz: str = "UTC"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "tz": self.tz,
        }


@dataclass(frozen=True)
class TeamRef:
    """A team by id, key and name."""

    id: int
    key: str
    name: str


def rotation_spec(row: Rotation, *, members: Sequence[int]) -> rot.RotationSpec:
    """The pure RotationSpec of a stored rotation (InvalidInput when the row is malformed)."""
    return rot.RotationSpec(
        key=row.id,
        kind=row.kind,
        members=tuple(members),
        starts_at=row.starts_at,
        tz=row.tz,
        handoff=rot.parse_hhmm(row.handoff_time),
        handoff_weekday=row.handoff_weekday or 0,
        shift_hours=row.shift_hours,
        layer=row.layer,
        restriction=rot.parse_restriction(row.restriction),
    )


def team_schedule(
    session: Session, *, team_id: int, start: datetime, end: datetime
) -> rot.Schedule:
    """A team's layers and the overrides that touch [start, end)."""
    # Ordered, so rotations sharing a layer overlap the same way every time (the later wins).
    rows = list(
        session.scalars(
            select(Rotation)
            .where(Rotation.team_id == team_id)
            .order_by(Rotation.layer, Rotation.id)
        )
    )
    return _schedule(session, rows=rows, start=start, end=end)


def rotation_schedule(
    session: Session, *, rotation_id: int, start: datetime, end: datetime
) -> rot.Schedule:
    """One rotation alone with its own overrides (an escalation step's target)."""
    row = session.get(Rotation, rotation_id)
    if row is None:
        raise NotFound(f"no rotation with id {rotation_id}")
    return _schedule(session, rows=[row], start=start, end=end)


def team_shifts(
    session: Session, *, team_id: int, start: datetime, end: datetime
) -> list[rot.Shift]:
    """The team's final shifts over [start, end)."""
    schedule = team_schedule(session, team_id=team_id, start=start, end=end)
    return rot.shifts(schedule, start=start, end=end)


def person_shifts(
    session: Session, *, person_id: int, start: datetime, end: datetime
) -> list[tuple[TeamRef, rot.Shift]]:
    """Where and when one person is on call over [start, end), across all their teams."""
    team_ids = set(
        session.scalars(select(TeamMember.team_id).where(TeamMember.person_id == person_id))
    )
    team_ids |= set(
        session.scalars(
            select(Rotation.team_id)
            .join(RotationMember, RotationMember.rotation_id == Rotation.id)
            .where(RotationMember.person_id == person_id)
        )
    )
    team_ids |= set(
        session.scalars(
            select(Rotation.team_id)
            .join(OncallOverride, OncallOverride.rotation_id == Rotation.id)
            .where(OncallOverride.person_id == person_id)
        )
    )
    result = []
    for team in session.scalars(select(Team).where(Team.id.in_(team_ids)).order_by(Team.key)):
        ref = team_ref(team)
        for shift in team_shifts(session, team_id=team.id, start=start, end=end):
            if shift.person == person_id:
                result.append((ref, shift))
    return sorted(result, key=lambda pair: pair[1].start)


def _schedule(
    session: Session, *, rows: Sequence[Rotation], start: datetime, end: datetime
) -> rot.Schedule:
    ids = [r.id for r in rows]
    if not ids:
        return rot.Schedule()
    members: dict[int, list[int]] = {i: [] for i in ids}
    for rotation_id, person_id in session.execute(
        select(RotationMember.rotation_id, RotationMember.person_id)
        .where(RotationMember.rotation_id.in_(ids))
        .order_by(RotationMember.rotation_id, RotationMember.position)
    ):
        members[rotation_id].append(person_id)
    specs = []
    for row in rows:
        try:
            specs.append(rotation_spec(row, members=members[row.id]))
        except BeaconError as exc:
            # One malformed layer must not blank the whole wall screen: skip it, loudly.
            log.warning("rotation %s (%s) skipped: %s", row.id, row.name, exc.message)
    overrides = session.scalars(
        select(OncallOverride)
        .where(
            OncallOverride.rotation_id.in_(ids),
            OncallOverride.ends_at > start,
            OncallOverride.starts_at < end,
        )
        .order_by(OncallOverride.created_at, OncallOverride.id)
    )
    return rot.Schedule(
        rotations=tuple(specs),
        overrides=tuple(
            rot.Override(o.person_id, o.starts_at, o.ends_at, key=o.id, rotation=o.rotation_id)
            for o in overrides
            if o.ends_at > o.starts_at
        ),
    )


def people_by_id(session: Session, *, ids: Sequence[int] | set[int]) -> dict[int, PersonRef]:
    """PersonRefs by id for the given person ids (unknown ids are left out)."""
    if not ids:
        return {}
    rows = session.scalars(select(Person).where(Person.id.in_(list(ids))))
    return {p.id: PersonRef(p.id, p.name, p.email, p.phone, p.tz) for p in rows}


def team_ref(team: Team) -> TeamRef:
    """The TeamRef of a stored team."""
    return TeamRef(team.id, team.key, team.name)
