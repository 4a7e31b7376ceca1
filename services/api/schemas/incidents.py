"""Models of incidents: opening one, the filtered list, the detail, and the actions on it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.api.schemas.common import MAX_ID, PageInfo, PageQuery, UtcDateTime
from services.api.schemas.oncall import PersonOut
from services.incidents.states import ORIGINS, SEVERITIES, STATUSES

Severity = Literal["sev1", "sev2", "sev3", "sev4"]


def _choices(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    wanted = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; use {', '.join(allowed)}")
    return ",".join(wanted) or None


class IncidentIn(BaseModel):
    """An incident opened by hand; routed to the owner of its domain (or the given team)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    severity: Severity = Field(description=f"One of {', '.join(SEVERITIES)} (sev1 worst)")
    summary: str = Field(default="", max_length=4000)
    domain: str | None = Field(default=None, min_length=1, max_length=16, examples=["RAN"])
    region: str | None = Field(default=None, min_length=1, max_length=64, examples=["North"])
    team_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Route to this team instead of the domain's owner",
    )
    external_ticket: str | None = Field(default=None, max_length=100, examples=["INC-10422"])


class IncidentQuery(PageQuery):
    """Filters of the incident list; all given filters must match. Newest first."""

    status: str | None = Field(
        default=None, max_length=100, description=f"Comma-separated: {', '.join(STATUSES)}"
    )
    severity: str | None = Field(
        default=None, max_length=100, description=f"Comma-separated: {', '.join(SEVERITIES)}"
    )
    origin: str | None = Field(
        default=None, max_length=100, description=f"Comma-separated: {', '.join(ORIGINS)}"
    )
    domain: str | None = Field(default=None, min_length=1, max_length=16)
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    ai_involved: bool | None = Field(
        default=None, description="true: the AI detected or recommended; false: neither"
    )
    open_only: bool = Field(default=False, description="Only triggered, acknowledged, mitigated")
    text: str | None = Field(
        default=None, min_length=1, max_length=200, description="In the title or ticket id"
    )
    since: UtcDateTime | None = Field(default=None, description="Opened at or after")
    until: UtcDateTime | None = Field(default=None, description="Opened before")

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return _choices(value, STATUSES, "status")

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        return _choices(value, SEVERITIES, "severity")

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        return _choices(value, ORIGINS, "origin")


class IncidentPath(BaseModel):
    """An incident in the URL."""

    incident_id: int = Field(ge=1, le=MAX_ID, description="The incident's id")


class EscalationStateOut(BaseModel):
    """Where the escalation runner stands."""

    position: int = Field(description="Step last paged (0: none yet)")
    round: int = Field(description="Times the whole path has been repeated")
    next_at: UtcDateTime | None = Field(description="When it pages or reminds next")


class IncidentRecord(BaseModel):
    """An incident's own fields."""

    id: int
    title: str
    summary: str
    severity: Severity
    status: Literal["triggered", "acknowledged", "mitigated", "resolved"]
    origin: Literal["anomaly", "alarm", "manual", "heartbeat"]
    domain: str | None
    team_id: int | None
    external_ticket: str | None
    ai_detected: bool | None = Field(description="Did the AI detect it (null: not judged yet)")
    ai_recommended: bool | None = Field(description="Did the AI recommend an action")
    ai_correct: bool | None = Field(description="Was the AI right")
    created_by: str | None
    created_at: UtcDateTime
    acknowledged_at: UtcDateTime | None
    acknowledged_by: str | None
    mitigated_at: UtcDateTime | None
    resolved_at: UtcDateTime | None
    resolved_by: str | None
    resolution_note: str | None
    escalation: EscalationStateOut


class IncidentListItem(IncidentRecord):
    """An incident in the list, with its team's name."""

    team: str | None


class IncidentPage(PageInfo):
    """One page of incidents, newest first."""

    items: list[IncidentListItem]


class TimelineEventOut(BaseModel):
    """One event on the incident's timeline."""

    at: UtcDateTime
    kind: str
    actor: str | None
    text: str
    data: dict[str, Any] | None


class ChangeWindowRef(BaseModel):
    """A change or freeze window linked to the incident."""

    id: int
    title: str
    kind: str


class NotificationOut(BaseModel):
    """One delivery-log line (the payload stays on the server)."""

    id: int
    notifier: str
    target: str
    status: str
    attempts: int
    next_attempt_at: UtcDateTime | None
    last_error: str | None
    created_at: UtcDateTime
    delivered_at: UtcDateTime | None


class IncidentDetailOut(IncidentRecord):
    """An incident with its team, roles, timeline, linked anomalies and delivery log."""

    team: str | None
    escalation_policy: str | None
    roles: dict[str, PersonOut] = Field(description="commander, ai_liaison, scribe")
    timeline: list[TimelineEventOut] = Field(description="Oldest first")
    anomalies: list[int] = Field(description="Linked anomaly episode ids")
    change_windows: list[ChangeWindowRef]
    notifications: list[NotificationOut] = Field(description="Newest first")


class ResolveIn(BaseModel):
    """Closing an incident needs a note: what happened and what fixed it."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(max_length=4000, description="The resolution note (required)")


class NoteIn(BaseModel):
    """A line for the timeline."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)
