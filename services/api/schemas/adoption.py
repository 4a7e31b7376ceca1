"""Models of the adoption report: how far each AI use case has moved from advisory to automated."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.api.schemas.common import ApiQuery, UtcDateTime


class AdoptionQuery(ApiQuery):
    """How many weeks the report covers (weeks start on Monday, UTC)."""

    weeks: int = Field(default=12, ge=1, le=104, description="Weeks covered, this one included")


class AdoptionLadderStep(BaseModel):
    """One maturity level of a use case and the days it spent there."""

    level: str = Field(description="L0 … L4")
    name: str = Field(examples=["L2 approve-to-execute"])
    days: float = Field(description="Days spent at this level")
    current: bool
    reached: bool


class AdoptionWeek(BaseModel):
    """Decisions people made in one week (labelled by its Monday)."""

    week: str = Field(examples=["2026-11-23"])
    decisions: int


class AdoptionTimes(BaseModel):
    """Mean time to acknowledge and to resolve, weighted to the same severity mix."""

    incidents: int
    mtta_minutes: float | None = Field(description="Null: no comparable incidents")
    mttr_minutes: float | None = Field(description="Null: no comparable incidents")


class AdoptionIncidents(BaseModel):
    """Incidents with AI involvement, and MTTA/MTTR before and after AI on comparable ones."""

    with_ai: int = Field(description="Incidents the AI detected, recommended on or was linked to")
    total: int
    cutover: UtcDateTime | None = Field(description="When the AI first advised anyone")
    comparable_severities: list[str] = Field(description="Severities both periods share")
    before: AdoptionTimes
    after: AdoptionTimes


class AdoptionMetrics(BaseModel):
    """Rates and counts over the report's weeks (rates are fractions; null when nothing to rate)."""

    window_start: UtcDateTime
    recommendations: int
    simulated_share: float | None = Field(description="Share of recommendations that are demo")
    decided: int = Field(description="Recommendations a person settled")
    accepted: int
    overridden: int
    rejected: int
    acceptance_rate: float | None
    override_rate: float | None
    rejection_rate: float | None
    reason_codes: dict[str, int] = Field(description="Reasons given for rejections and overrides")
    median_hours_to_decision: float | None
    judged: int = Field(description="Recommendations whose rightness is known")
    right: int
    precision: float | None = Field(description="right ÷ judged, from decisions and reviews")
    automated_actions: int
    executions: int
    rollbacks: int
    harmful_rollbacks: int
    disagreements: int
    open_disagreements: int
    review_outcomes: dict[str, int]
    incidents: AdoptionIncidents


class AdoptionNetwork(AdoptionMetrics):
    """Every use case together."""

    use_cases: int
    use_cases_by_level: dict[str, int]


class AdoptionUseCase(AdoptionMetrics):
    """One AI use case."""

    id: int
    key: str
    name: str
    maturity_level: str = Field(description="L0 … L4")
    ladder: list[AdoptionLadderStep]
    decisions_per_week: list[AdoptionWeek]


class AdoptionReport(BaseModel):
    """Network-wide summary on top, then every use case."""

    generated_at: UtcDateTime
    weeks: int
    network: AdoptionNetwork
    use_cases: list[AdoptionUseCase]
