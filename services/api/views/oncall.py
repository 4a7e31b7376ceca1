"""On call: who is on call now for a domain or AI component, team schedules, iCal exports."""

from __future__ import annotations

from datetime import timedelta

from flask import Response

from services.api.blueprint import api, endpoint
from services.api.schemas.oncall import (
    CalendarQuery,
    OncallNowOut,
    OncallNowQuery,
    PersonPath,
    SchedulesOut,
    SchedulesQuery,
    TeamPath,
    TeamScheduleOut,
)
from services.auth import Scope
from services.db.models import utcnow
from services.oncall import ical
from services.oncall.overview import team_overviews
from services.oncall.resolve import oncall_for
from services.web.context import beacon

CALENDAR_TYPE = "text/calendar; charset=utf-8"


@api.get("/oncall/now")
@endpoint(scope=Scope.READ, resp=OncallNowOut, errors=(404,), tags=["oncall"])
def oncall_now(query: OncallNowQuery) -> OncallNowOut:
    """Who is on call now for a network domain (and region) or an AI component, until when.

    Answers the owning team, the person on call, the next hand-off (`until`) and the
    escalation path with whom each step would notify now. 404 names an unknown domain or
    component; 422 when neither (or both) is given.
    """
    with beacon().db.session() as session:
        answer = oncall_for(
            session,
            now=utcnow(),
            domain=query.domain,
            region=query.region,
            component=query.component,
        )
    return OncallNowOut.model_validate(answer.as_dict())


@api.get("/oncall/schedules")
@endpoint(scope=Scope.READ, resp=SchedulesOut, tags=["oncall"])
def oncall_schedules(query: SchedulesQuery) -> SchedulesOut:
    """Every team: on call now, next hand-offs, rotation layers and what it owns."""
    now = utcnow()
    with beacon().db.session() as session:
        teams = team_overviews(session, now=now, within=timedelta(days=query.days))
    return SchedulesOut(at=now, items=[TeamScheduleOut.model_validate(t.as_dict()) for t in teams])


@api.get("/oncall/teams/<int:team_id>/calendar.ics")
@endpoint(scope=Scope.READ, resp=None, errors=(404,), tags=["oncall"])
def team_calendar(path: TeamPath, query: CalendarQuery) -> Response:
    """The team's final on-call schedule as an iCalendar (text/calendar) file to subscribe to."""
    now = utcnow()
    with beacon().db.session() as session:
        body = ical.team_calendar(
            session,
            team_id=path.team_id,
            start=now - timedelta(days=query.past_days),
            end=now + timedelta(days=query.days),
            now=now,
        )
    return _calendar(body, f"oncall-team-{path.team_id}.ics")


@api.get("/oncall/people/<int:person_id>/calendar.ics")
@endpoint(scope=Scope.READ, resp=None, errors=(404,), tags=["oncall"])
def person_calendar(path: PersonPath, query: CalendarQuery) -> Response:
    """One person's on-call shifts across all their teams as an iCalendar (text/calendar) file."""
    now = utcnow()
    with beacon().db.session() as session:
        body = ical.person_calendar(
            session,
            person_id=path.person_id,
            start=now - timedelta(days=query.past_days),
            end=now + timedelta(days=query.days),
            now=now,
        )
    return _calendar(body, f"oncall-person-{path.person_id}.ics")


def _calendar(body: bytes, filename: str) -> Response:
    response = Response(body, status=200, content_type=CALENDAR_TYPE)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # Shifts move with overrides: calendar clients should fetch again, not reuse a copy.
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
