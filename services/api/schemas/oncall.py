"""Models of on-call answers: who is on call for a subject, team schedules, calendar requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.schemas.common import MAX_ID, ApiQuery, UtcDateTime


class OncallNowQuery(ApiQuery):
    """Ask about exactly one subject: a network domain (optionally a region) or an AI component."""

    domain: str | None = Field(
        default=None, min_length=1, max_length=64, examples=["RAN", "Transport", "Core"]
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="With `domain`: the region's own team if it has one, else the domain's",
        examples=["North"],
    )
    component: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="An AI component: detector, forecaster, scheduler, ingest:<source>, "
        "usecase:<name>",
        examples=["detector", "ingest:sim-core"],
    )

    @model_validator(mode="after")
    def _one_subject(self) -> OncallNowQuery:
        if bool(self.domain) == bool(self.component):
            raise ValueError("give either domain=… (optionally with region=…) or component=…")
        if self.region and not self.domain:
            raise ValueError("region=… needs domain=…")
        return self


class PersonOut(BaseModel):
    """A person who can be on call, with how to reach them."""

    id: int
    name: str
    email: str | None
    phone: str | None
    tz: str = Field(description="The person's own IANA time zone")


class TeamOut(BaseModel):
    """A team by id, key and name."""

    id: int
    key: str
    name: str


class SubjectOut(BaseModel):
    """What was asked about."""

    kind: Literal["domain", "region", "component"]
    key: str


class EscalationStepOut(BaseModel):
    """One step of the escalation path and whom it notifies now."""

    position: int
    target_kind: Literal["schedule", "rotation", "person", "team"]
    target: str = Field(description="The schedule, rotation, person or team, by name")
    wait_minutes: int = Field(description="Minutes to wait for an acknowledgement before the next")
    people: list[PersonOut]


class OncallNowOut(BaseModel):
    """The owning team of a subject, who is on call for it now, until when, and escalation."""

    subject: SubjectOut
    team: TeamOut
    person: PersonOut | None = Field(description="Null when no layer covers this instant")
    since: UtcDateTime | None = Field(description="Start of this person's current stretch")
    until: UtcDateTime | None = Field(description="The next hand-off (null: beyond two weeks)")
    rotation: str | None = Field(description="The covering layer's name, or `override`")
    escalation: list[EscalationStepOut]


class HandoffOut(BaseModel):
    """A coming change of on-call person."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    at: UtcDateTime
    from_: PersonOut | None = Field(alias="from")
    to: PersonOut | None


class RotationOut(BaseModel):
    """One layer of a team's schedule."""

    id: int
    name: str
    kind: Literal["daily", "weekly", "custom"]
    layer: int = Field(description="Higher layers cover lower ones where they apply")
    tz: str = Field(description="Hand-offs happen at this zone's wall-clock time")
    handoff_time: str = Field(examples=["09:00"])
    handoff_weekday: int | None = Field(description="0 = Monday, for weekly rotations")
    shift_hours: int | None = Field(description="Shift length of custom rotations")
    restriction: dict[str, Any] = Field(description="Hours and weekdays the layer applies")
    members: list[PersonOut] = Field(description="In rotation order")


class TeamScheduleOut(BaseModel):
    """A team's schedule at a glance."""

    team: TeamOut
    person: PersonOut | None
    since: UtcDateTime | None
    until: UtcDateTime | None
    rotation: str | None
    next_handoffs: list[HandoffOut]
    rotations: list[RotationOut]
    owns: list[str] = Field(description="Domains, regions (domain:region) and AI components")


class SchedulesQuery(ApiQuery):
    """How far ahead to list hand-offs."""

    days: int = Field(default=7, ge=1, le=31, description="Hand-offs within this many days")


class SchedulesOut(BaseModel):
    """Every team's schedule, at one instant."""

    at: UtcDateTime
    items: list[TeamScheduleOut]


class TeamPath(BaseModel):
    """A team in the URL."""

    team_id: int = Field(ge=1, le=MAX_ID, description="The team's id")


class PersonPath(BaseModel):
    """A person in the URL."""

    person_id: int = Field(ge=1, le=MAX_ID, description="The person's id")


class CalendarQuery(ApiQuery):
    """The span of an iCalendar export, around now."""

    days: int = Field(default=60, ge=1, le=365, description="Days ahead")
    past_days: int = Field(default=7, ge=0, le=31, description="Days back")
