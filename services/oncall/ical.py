"""iCalendar (RFC 5545) export of on-call shifts, per person and per team."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vDuration
from sqlalchemy.orm import Session

from services.db.models import Person, Team
from services.errors import InvalidInput, NotFound
from services.oncall import rotations as rot
from services.oncall import schedules

PRODID = "-//Beacon//On-call//EN"
UID_DOMAIN = "oncall.beacon"
# Subscribed calendars poll: hourly keeps overrides and swaps visible the same morning.
REFRESH = timedelta(hours=1)
MAX_SPAN = timedelta(days=400)


@dataclass(frozen=True)
class CalendarEntry:
    """One on-call stretch as a calendar event."""

    uid: str
    summary: str
    description: str
    start: datetime
    end: datetime


def calendar_bytes(*, name: str, entries: Sequence[CalendarEntry], now: datetime) -> bytes:
    """A VCALENDAR of VEVENTs in UTC, CRLF-terminated and folded as RFC 5545 requires."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    stamp = _utc(now)
    for entry in entries:
        event = Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", _utc(entry.start))
        event.add("dtend", _utc(entry.end))
        event.add("summary", entry.summary)
        event.add("description", entry.description)
        # On call is not a meeting: it should not mark the person busy in free/busy lookups.
        event.add("transp", "TRANSPARENT")
        event.add("status", "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()


def team_calendar(
    session: Session, *, team_id: int, start: datetime, end: datetime, now: datetime
) -> bytes:
    """The team's final on-call schedule over [start, end) as an iCalendar file."""
    _check_span(start, end)
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team with id {team_id}")
    runs = rot.person_runs(schedules.team_shifts(session, team_id=team_id, start=start, end=end))
    people = schedules.people_by_id(session, ids={int(r.person) for r in runs})
    entries = [
        CalendarEntry(
            uid=_uid(team.key, int(run.person), run.start),
            summary=f"On call: {_name(people, run.person)} ({team.name})",
            description=_description(team.name, people.get(int(run.person))),
            start=run.start,
            end=run.end,
        )
        for run in runs
    ]
    return calendar_bytes(name=f"On call — {team.name}", entries=entries, now=now)


def person_calendar(
    session: Session, *, person_id: int, start: datetime, end: datetime, now: datetime
) -> bytes:
    """One person's on-call shifts over [start, end), across all their teams, as iCalendar."""
    _check_span(start, end)
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    ref = schedules.PersonRef(person.id, person.name, person.email, person.phone, person.tz)
    by_team: dict[schedules.TeamRef, list[rot.Shift]] = {}
    for team, shift in schedules.person_shifts(session, person_id=person_id, start=start, end=end):
        by_team.setdefault(team, []).append(shift)
    entries = [
        CalendarEntry(
            uid=_uid(team.key, person.id, run.start),
            summary=f"On call for {team.name}",
            description=_description(team.name, ref),
            start=run.start,
            end=run.end,
        )
        for team, team_shifts in by_team.items()
        for run in rot.person_runs(team_shifts)
    ]
    entries.sort(key=lambda e: (e.start, e.uid))
    return calendar_bytes(name=f"On call — {person.name}", entries=entries, now=now)


def _uid(team_key: str, person_id: int, start: datetime) -> str:
    # Stable for the same stretch, so a re-export updates events instead of duplicating them.
    return f"{team_key}-{person_id}-{_utc(start):%Y%m%dT%H%M%SZ}@{UID_DOMAIN}"


def _description(team_name: str, person: schedules.PersonRef | None) -> str:
    lines = [f"On call for {team_name}."]
    if person is not None:
        contacts = [c for c in (person.email, person.phone) if c]
        lines.append(f"{person.name}" + (f": {', '.join(contacts)}" if contacts else ""))
    return "\n".join(lines)


def _name(people: dict[int, schedules.PersonRef], key: rot.PersonKey) -> str:
    person = people.get(int(key))
    return person.name if person else f"person {key}"


def _check_span(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must be timezone-aware")
    if not start < end <= start + MAX_SPAN:
        raise InvalidInput(f"the calendar span must be positive and at most {MAX_SPAN.days} days")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
