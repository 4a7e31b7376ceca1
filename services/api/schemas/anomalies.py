"""Models of anomaly episodes, their filters and the feedback people give on them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.anomaly.feed import LABELS, SEVERITIES, STATUSES
from services.api.schemas.common import MAX_ID, PageInfo, PageQuery, UtcDateTime

Label = Literal["true_anomaly", "expected", "not_anomaly", "new_normal"]


def _choices(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    wanted = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; use {', '.join(allowed)}")
    return ",".join(wanted) or None


class AnomalyQuery(PageQuery):
    """Filters of the episode feed; all given filters must match. Newest start first."""

    severity: str | None = Field(
        default=None, max_length=100, description=f"Comma-separated: {', '.join(SEVERITIES)}"
    )
    status: str | None = Field(
        default=None, max_length=100, description=f"Comma-separated: {', '.join(STATUSES)}"
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Only episodes at least this confident"
    )
    ongoing: bool | None = Field(default=None, description="true: still anomalous; false: ended")
    suppressed: bool | None = Field(
        default=None, description="Inside a change or maintenance window (hidden on the wall)"
    )
    region: str | None = Field(default=None, max_length=64)
    domain: str | None = Field(default=None, max_length=16, examples=["RAN"])
    kpi: str | None = Field(default=None, max_length=64, examples=["prb_util_dl"])
    element: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Case-insensitive substring of the element's name or DN",
    )
    since: UtcDateTime | None = Field(
        default=None, description="Episodes still going on at or after this time"
    )
    until: UtcDateTime | None = Field(default=None, description="Episodes started before this time")

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        return _choices(value, SEVERITIES, "severity")

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return _choices(value, STATUSES, "status")


class AnomalyPath(BaseModel):
    """An episode in the URL."""

    anomaly_id: int = Field(ge=1, le=MAX_ID, description="The episode's id")


class ElementRef(BaseModel):
    """The element an episode is on."""

    id: int
    name: str
    dn: str = Field(description="3GPP-style distinguished name")
    element_type: str
    region: str | None
    domain: str


class AnomalyOut(BaseModel):
    """One anomaly episode on one element and KPI: start, peak, end (null while ongoing)."""

    id: int
    element: ElementRef
    kpi: str
    unit: str
    severity: str = Field(description=f"One of {', '.join(SEVERITIES)}")
    confidence: float = Field(description="Calibrated 0-1, times the data-quality factor")
    score: float = Field(description="Deviation at the peak in robust σ (signed)")
    observed: float = Field(description="Value at the peak")
    expected: float = Field(description="Expected value at the peak")
    band_low: float
    band_high: float
    status: str = Field(description=f"One of {', '.join(STATUSES)}")
    ongoing: bool
    started_at: UtcDateTime
    peak_at: UtcDateTime
    ended_at: UtcDateTime | None
    last_evaluated_at: UtcDateTime
    acknowledged_at: UtcDateTime | None
    suppressed: bool = Field(description="Inside a change window: kept off the wall screen")
    suppressed_reason: str | None
    revised: bool = Field(description="Late or corrected data changed it after first report")
    incident_id: int | None
    group_key: str | None = Field(description="Shared by simultaneous episodes on one site")
    related_kpis: list[Any] = Field(description="Other KPIs deviating on the element")
    data_quality_flags: list[str]
    summary: str = Field(description="Plain-language explanation")
    detector: str
    model_version: str


class AnomalyPage(PageInfo):
    """One page of episodes, newest start first."""

    items: list[AnomalyOut]


class FeedbackOut(BaseModel):
    """A human verdict on an episode."""

    id: int
    anomaly_id: int
    label: Label
    note: str
    user: str | None = Field(description="Who gave it (null for API tokens: see the audit trail)")
    created_at: UtcDateTime


class HistoryOut(BaseModel):
    """One audited action on the episode."""

    at: UtcDateTime
    actor: str
    role: str | None
    action: str
    after: dict[str, Any] | None


class IncidentOut(BaseModel):
    """The incident an episode is linked to."""

    id: int
    title: str
    severity: str
    status: str
    created_at: UtcDateTime


class AnomalyDetail(AnomalyOut):
    """An episode with its explanation, data quality, verdicts, history and incident."""

    explanation: dict[str, Any] = Field(description="See the explanation schema in the README")
    data_quality: dict[str, Any] = Field(description="flags, factor, history_points, text")
    feedback: list[FeedbackOut]
    history: list[HistoryOut]
    incident: IncidentOut | None
    group: list[int] = Field(description="Other episodes of the same site group")


class FeedbackIn(BaseModel):
    """A verdict on an episode; it feeds calibration and later review."""

    model_config = ConfigDict(extra="forbid")

    label: Label = Field(description=f"One of {', '.join(LABELS)}")
    note: str = Field(default="", max_length=2000, description="Why (optional)")
