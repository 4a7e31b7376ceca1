"""Overrides and shift swaps: validated, audited, and reporting whose shifts moved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.db.models import OncallOverride, Person, Rotation, TeamMember
from services.errors import InvalidInput, NotFound
from services.oncall import rotations as rot
from services.oncall import schedules

MAX_OVERRIDE = timedelta(days=31)
# A form filled in a minute ago still means "from now"; older starts would rewrite history.
PAST_TOLERANCE = timedelta(minutes=15)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class ShiftChange:
    """One person's on-call time gained and lost by a change: who must be notified, and of what."""

    person: schedules.PersonRef
    gained: tuple[Interval, ...]
    lost: tuple[Interval, ...]


@dataclass(frozen=True)
class OverrideResult:
    """The overrides written (or removed) and the people whose shifts moved."""

    overrides: tuple[OncallOverride, ...]
    changes: tuple[ShiftChange, ...]


def create_override(
    session: Session,
    *,
    rotation_id: int,
    person_id: int,
    starts_at: datetime,
    ends_at: datetime,
    actor: audit.Actor,
    now: datetime,
    reason: str = "",
) -> OverrideResult:
    """Put a team member on call from starts_at to ends_at over the team's layers (audited)."""
    rotation = _get_rotation(session, rotation_id)
    _validate(
        session, rotation=rotation, person_id=person_id, start=starts_at, end=ends_at, now=now
    )
    before = _team_shifts(session, rotation.team_id, [(starts_at, ends_at)])
    override = _add(session, rotation, person_id, starts_at, ends_at, reason, actor)
    audit.record(
        session,
        actor=actor,
        action="oncall.override.create",
        object_type="oncall_override",
        object_id=override.id,
        after=_doc(override),
    )
    changes = _changes(session, rotation.team_id, before, [(starts_at, ends_at)])
    return OverrideResult((override,), changes)


def swap_shifts(
    session: Session,
    *,
    rotation_id: int,
    first_at: datetime,
    second_at: datetime,
    actor: audit.Actor,
    now: datetime,
    reason: str = "",
) -> OverrideResult:
    """Swap the rotation's shift covering first_at with the one covering second_at (audited)."""
    rotation = _get_rotation(session, rotation_id)
    first, second = (_shift_at(session, rotation, at) for at in (first_at, second_at))
    if first.person == second.person:
        raise InvalidInput("both shifts belong to the same person: nothing to swap")
    if first.start < second.end and second.start < first.end:
        raise InvalidInput("the two shifts overlap; pick two different shifts")
    # A shift under way is swapped from now on: who was on call so far stays on record.
    windows = [(max(first.start, now), first.end), (max(second.start, now), second.end)]
    if any(start >= end for start, end in windows):
        raise InvalidInput("a shift that is over cannot be swapped")
    for person, (start, end) in zip((second.person, first.person), windows, strict=True):
        _validate(session, rotation=rotation, person_id=int(person), start=start, end=end, now=now)
    before = _team_shifts(session, rotation.team_id, windows)
    text = reason or "shift swap"
    written = (
        _add(session, rotation, int(second.person), *windows[0], text, actor),
        _add(session, rotation, int(first.person), *windows[1], text, actor),
    )
    audit.record(
        session,
        actor=actor,
        action="oncall.swap",
        object_type="rotation",
        object_id=rotation.id,
        after={"overrides": [_doc(o) for o in written]},
    )
    return OverrideResult(written, _changes(session, rotation.team_id, before, windows))


def delete_override(
    session: Session, *, override_id: int, actor: audit.Actor, now: datetime
) -> OverrideResult:
    """Remove an override that has not ended yet (audited); its layers take over again."""
    override = session.get(OncallOverride, override_id)
    if override is None:
        raise NotFound(f"no override with id {override_id}")
    if override.ends_at <= now:
        raise InvalidInput("this override is over; past on-call history is kept")
    rotation = _get_rotation(session, override.rotation_id)
    window = [(max(override.starts_at, now), override.ends_at)]
    before = _team_shifts(session, rotation.team_id, window)
    doc = _doc(override)
    session.delete(override)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall.override.delete",
        object_type="oncall_override",
        object_id=override_id,
        before=doc,
    )
    return OverrideResult((override,), _changes(session, rotation.team_id, before, window))


def list_overrides(session: Session, *, team_id: int, since: datetime) -> list[OncallOverride]:
    """The team's overrides that end after `since`, oldest first."""
    return list(
        session.scalars(
            select(OncallOverride)
            .join(Rotation, Rotation.id == OncallOverride.rotation_id)
            .where(Rotation.team_id == team_id, OncallOverride.ends_at > since)
            .order_by(OncallOverride.starts_at, OncallOverride.id)
        )
    )


def _validate(
    session: Session,
    *,
    rotation: Rotation,
    person_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    for moment, name in ((start, "starts_at"), (end, "ends_at")):
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise InvalidInput(f"{name} must be a timezone-aware datetime")
    if end <= start:
        raise InvalidInput("an override must end after it starts")
    if end - start > MAX_OVERRIDE:
        raise InvalidInput(f"an override may last at most {MAX_OVERRIDE.days} days")
    if start < now - PAST_TOLERANCE:
        raise InvalidInput("an override cannot start in the past; on-call history is kept")
    if session.get(Person, person_id) is None:
        raise NotFound(f"no person with id {person_id}")
    member = session.scalar(
        select(TeamMember.id).where(
            TeamMember.team_id == rotation.team_id, TeamMember.person_id == person_id
        )
    )
    if member is None:
        raise InvalidInput("only a member of the rotation's team can take its shifts")


def _shift_at(session: Session, rotation: Rotation, at: datetime) -> rot.Shift:
    # The rotation alone (with its overrides), so a swap trades that layer's shifts.
    schedule = schedules.rotation_schedule(
        session,
        rotation_id=rotation.id,
        start=at - schedules.LOOK_BACK,
        end=at + schedules.LOOK_AHEAD,
    )
    shift = rot.oncall_at(schedule, at=at)
    if shift is None:
        raise InvalidInput(f"nobody is on call on {rotation.name!r} at {at.isoformat()}")
    return shift


def _add(
    session: Session,
    rotation: Rotation,
    person_id: int,
    start: datetime,
    end: datetime,
    reason: str,
    actor: audit.Actor,
) -> OncallOverride:
    override = OncallOverride(
        rotation_id=rotation.id,
        person_id=person_id,
        starts_at=start,
        ends_at=end,
        reason=reason.strip(),
        created_by=actor.name,
    )
    session.add(override)
    session.flush()
    return override


def _team_shifts(session: Session, team_id: int, windows: Sequence[Interval]) -> list[rot.Shift]:
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    return schedules.team_shifts(session, team_id=team_id, start=start, end=end)


def _changes(
    session: Session, team_id: int, before: list[rot.Shift], windows: Sequence[Interval]
) -> tuple[ShiftChange, ...]:
    after = _team_shifts(session, team_id, windows)
    old, new = _by_person(before), _by_person(after)
    moved: dict[int, tuple[list[Interval], list[Interval]]] = {}
    for person in old.keys() | new.keys():
        gained = _subtract(new.get(person, []), old.get(person, []))
        lost = _subtract(old.get(person, []), new.get(person, []))
        if gained or lost:
            moved[int(person)] = (gained, lost)
    people = schedules.people_by_id(session, ids=set(moved))
    return tuple(
        ShiftChange(people[pid], tuple(gained), tuple(lost))
        for pid, (gained, lost) in sorted(moved.items())
        if pid in people
    )


def _by_person(shifts: list[rot.Shift]) -> dict[rot.PersonKey, list[Interval]]:
    result: dict[rot.PersonKey, list[Interval]] = {}
    for run in rot.person_runs(shifts):
        result.setdefault(run.person, []).append((run.start, run.end))
    return result


def _subtract(intervals: list[Interval], minus: list[Interval]) -> list[Interval]:
    result = []
    for start, end in intervals:
        pieces = [(start, end)]
        for m_start, m_end in minus:
            pieces = [
                part
                for s, e in pieces
                for part in ((s, min(e, m_start)), (max(s, m_end), e))
                if part[0] < part[1]
            ]
        result.extend(pieces)
    return _joined(sorted(result))


def _joined(intervals: list[Interval]) -> list[Interval]:
    joined: list[Interval] = []
    for start, end in intervals:
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _get_rotation(session: Session, rotation_id: int) -> Rotation:
    rotation = session.get(Rotation, rotation_id)
    if rotation is None:
        raise NotFound(f"no rotation with id {rotation_id}")
    return rotation


def _doc(override: OncallOverride) -> dict[str, object]:
    return {
        "rotation_id": override.rotation_id,
        "person_id": override.person_id,
        "starts_at": override.starts_at.isoformat(),
        "ends_at": override.ends_at.isoformat(),
        "reason": override.reason,
        "created_by": override.created_by,
    }
