"""Models of automation use cases, recommendations, decisions, executions and change windows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from services.api.schemas.common import MAX_ID, ApiQuery, UtcDateTime
from services.automation.levels import (
    CHANGE_WINDOW_KINDS,
    REASON_CODES,
    RECOMMENDATION_STATES,
)

LevelLabel = Literal["L0", "L1", "L2", "L3", "L4"]
Verdict = Literal["accept", "reject", "override"]
WindowKind = Literal["change", "maintenance", "freeze"]


# --- use cases and maturity --------------------------------------------------------------


class TeamRef(BaseModel):
    """The team that owns a use case."""

    id: int
    key: str
    name: str


class LevelOut(BaseModel):
    """One rung of the maturity ladder."""

    level: LevelLabel
    name: str


class CriterionCheck(BaseModel):
    """One promotion criterion: what is required, what was measured, whether it holds."""

    name: str
    required: float | int
    actual: float | int | None
    ok: bool


class UseCaseOut(BaseModel):
    """An automation use case with its level, owner, criteria and current metrics."""

    id: int
    key: str
    name: str
    description: str
    trigger: str
    action: str
    domain: str
    enabled: bool
    maturity_level: LevelLabel = Field(description="L0 shadow … L4 autonomous")
    maturity_name: str = Field(examples=["L2 approve-to-execute"])
    level_since: UtcDateTime | None
    owner: TeamRef | None = Field(description="The owning team (null until one owns it)")
    criteria: dict[str, Any] = Field(
        description="Promotion criteria: min_decisions, min_acceptance_rate, min_precision, "
        "no_harmful_rollback_days, window_days"
    )
    guardrails: dict[str, Any] = Field(
        description="Checked before any execution: min_confidence, max_blast_radius_cells, "
        "max_blast_radius_users, rate_limit_per_domain_per_hour, verification settings, actuator"
    )
    metrics: dict[str, Any] = Field(
        description="Measured over window_days: decisions, acceptance_rate, precision, "
        "review_precision, executions, rollbacks, harmful_rollbacks, …"
    )
    criteria_checks: list[CriterionCheck] = Field(description="Criteria against the metrics")
    levels: list[LevelOut]


class UseCaseList(BaseModel):
    """Every use case, by key."""

    items: list[UseCaseOut]


class UseCasePath(BaseModel):
    """A use case in the URL."""

    use_case_id: int = Field(ge=1, le=MAX_ID, description="The use case's id")


class LevelIn(BaseModel):
    """An admin sets a level directly (e.g. after an incident); the reason is audited."""

    model_config = ConfigDict(extra="forbid")

    level: LevelLabel
    reason: str = Field(min_length=1, max_length=2000)


class MaturityChangeOut(BaseModel):
    """A proposed, approved or rejected change of a use case's level."""

    id: int
    use_case_id: int
    use_case: str | None
    from_level: LevelLabel
    to_level: LevelLabel
    kind: str = Field(description="promotion, demotion or manual")
    status: str = Field(description="proposed, approved or rejected")
    reason: str
    evidence: dict[str, Any] = Field(description="The metrics and checks behind a proposal")
    proposed_at: UtcDateTime
    decided_at: UtcDateTime | None


class MaturityChangeList(BaseModel):
    """Proposals waiting for an admin, oldest first."""

    items: list[MaturityChangeOut]


class MaturityChangePath(BaseModel):
    """A maturity change in the URL."""

    change_id: int = Field(ge=1, le=MAX_ID, description="The change's id")


class MaturityRejectIn(BaseModel):
    """Why an admin turns a promotion down (optional, audited)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


# --- recommendations ---------------------------------------------------------------------


class RecommendationQuery(ApiQuery):
    """Filters of the recommendation list, newest first."""

    state: str | None = Field(
        default=None,
        max_length=32,
        description=f"One of {', '.join(RECOMMENDATION_STATES)}, or pending "
        "(open and awaiting second approval)",
    )
    use_case_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    simulated: bool | None = Field(default=None, description="Demo rows are simulated")
    limit: int = Field(default=100, ge=1, le=1000, description="Items per page (1-1000)")
    offset: int = Field(default=0, ge=0, le=MAX_ID, description="Items to skip")


class RecommendationPath(BaseModel):
    """A recommendation in the URL."""

    recommendation_id: int = Field(ge=1, le=MAX_ID, description="The recommendation's id")


class BlastRadius(BaseModel):
    """What an action touches."""

    cells: int
    users: int


class RecommendationOut(BaseModel):
    """What the AI proposes: action, rationale, confidence, impact, blast radius, rollback."""

    id: int
    use_case_id: int
    use_case: str | None
    maturity_level: LevelLabel = Field(description="The use case's level when raised")
    state: str = Field(description=f"One of {', '.join(RECOMMENDATION_STATES)}")
    action: str
    parameters: dict[str, Any]
    confidence: float = Field(description="Calibrated 0-1")
    severity: str
    element: dict[str, Any] | None = Field(description="dn and name of the element")
    rationale: str
    expected_impact: str
    blast_radius: BlastRadius
    rollback_plan: dict[str, Any]
    needs_second_approval: bool = Field(description="High-severity L2: two different people")
    anomaly_id: int | None
    forecast_id: int | None
    simulated: bool
    created_at: UtcDateTime | None
    expires_at: UtcDateTime | None
    decided_at: UtcDateTime | None


class RecommendationList(BaseModel):
    """One page of recommendations, newest first."""

    items: list[RecommendationOut]
    limit: int
    offset: int


class DecisionItem(BaseModel):
    """A human verdict on a recommendation."""

    id: int
    verdict: str
    reason_code: str | None
    note: str | None
    override_action: str | None
    approval_step: int = Field(description="1, or 2 for the second approver")
    by: str | None = Field(description="Username (null for API tokens: see the audit trail)")
    at: UtcDateTime | None


class ExecutionItem(BaseModel):
    """An execution of a recommendation, in short."""

    id: int
    state: str
    actuator: str
    dry_run: bool
    started_at: UtcDateTime | None
    rolled_back_at: UtcDateTime | None


class RecommendationDetail(RecommendationOut):
    """A recommendation with its explanation, decisions, executions and disagreement cases."""

    explanation: dict[str, Any]
    decisions: list[DecisionItem]
    executions: list[ExecutionItem]
    disagreement_ids: list[int]


class DecisionIn(BaseModel):
    """A verdict with a mandatory reason code (checked by the service, which names them all)."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    # Optional here on purpose: the decisions service refuses a missing reason with a
    # message listing every reason, which is more useful than pydantic's "field required".
    reason_code: str | None = Field(
        default=None, max_length=64, description=f"One of {', '.join(REASON_CODES)} (required)"
    )
    note: str = Field(default="", max_length=2000)
    override_action: str | None = Field(
        default=None, max_length=64, description="For override: the action taken instead"
    )


class DecisionOut(BaseModel):
    """The recorded verdict and where it left the recommendation."""

    id: int
    recommendation_id: int
    verdict: str
    reason_code: str
    note: str
    override_action: str | None
    approval_step: int
    state: str = Field(description="The recommendation's state after this verdict")
    created_at: UtcDateTime


class ExecuteQuery(ApiQuery):
    """`?dry_run=1` previews without changing anything."""

    dry_run: bool = Field(default=False, description="Only show what would happen")


class ExecutionOut(BaseModel):
    """An execution: state, pre/post state, guardrail report, verification and rollback."""

    id: int
    recommendation_id: int
    actuator: str
    state: str
    idempotency_key: str
    triggered_by: str
    automatic: bool
    pre_state: dict[str, Any]
    post_state: dict[str, Any]
    guardrails: dict[str, Any]
    verification: dict[str, Any]
    rollback: dict[str, Any]
    rollback_recommended: bool
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    verify_after: UtcDateTime | None
    rolled_back_at: UtcDateTime | None
    rolled_back_by: str | None
    error: str | None


class DryRunOut(BaseModel):
    """What executing would do now, without doing it."""

    recommendation_id: int
    allowed: bool
    guardrails: dict[str, Any] = Field(description="allowed, blocking, results[name, ok, detail]")
    actuator: str
    action: str
    element: str | None
    pre_state: dict[str, Any]
    planned: dict[str, Any]
    rollback: dict[str, Any]
    verification_minutes: int


class ExecuteOut(RootModel[ExecutionOut | DryRunOut]):
    """The execution, or with `?dry_run=1` the dry run."""


class RollbackIn(BaseModel):
    """Why the execution is rolled back (audited)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


# --- change windows ----------------------------------------------------------------------


class WindowScope(BaseModel):
    """What a window covers; empty means network-wide."""

    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    elements: list[str] = Field(default_factory=list, description="DNs; a site covers its cells")


class ChangeWindowIn(BaseModel):
    """Planned work or a freeze; the same external_id updates the window instead."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    kind: WindowKind = Field(description=f"One of {', '.join(CHANGE_WINDOW_KINDS)}")
    starts_at: str = Field(description="ISO-8601 with a time zone", max_length=64)
    ends_at: str = Field(description="ISO-8601 with a time zone", max_length=64)
    scope: WindowScope = Field(default_factory=WindowScope)
    external_id: str | None = Field(default=None, max_length=100)


class ChangeWindowOut(BaseModel):
    """A window of the change calendar."""

    id: int
    external_id: str | None
    title: str
    kind: str
    scope: dict[str, Any]
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    source: str
    created_by: str | None


class ChangeWindowList(BaseModel):
    """Windows overlapping the asked period, by start time."""

    items: list[ChangeWindowOut]


class ChangeWindowQuery(ApiQuery):
    """Which windows: overlapping [start, end), optionally of one kind."""

    start: UtcDateTime | None = None
    end: UtcDateTime | None = None
    kind: WindowKind | None = None


class ChangeWindowPath(BaseModel):
    """A change window in the URL."""

    window_id: int = Field(ge=1, le=MAX_ID, description="The window's id")


class RowErrorOut(BaseModel):
    """Why one CSV row was refused (the header is line 1)."""

    line: int
    message: str


class ImportOut(BaseModel):
    """What a CSV import did: windows created and updated, and every refused row."""

    created: int
    updated: int
    errors: list[RowErrorOut]


class ChangeWindowPosted(RootModel[ChangeWindowOut | ImportOut]):
    """The window (JSON body), or the import summary (CSV body)."""


class ChangeWindowDeleted(ChangeWindowOut):
    """The window that was removed."""

    deleted: bool = True
