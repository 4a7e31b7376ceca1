"""Models of the disagreement queue: the filtered list, one case in full, and its review."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.api.schemas.common import MAX_ID, PageInfo, PageQuery, UtcDateTime
from services.automation.levels import DISAGREEMENT_KINDS, REVIEW_OUTCOMES
from services.decisions.queries import CASE_FILTERS
from services.decisions.reviews import MAX_NOTE

OUTCOME_WORDS = {
    "ai_right": "the AI was right",
    "human_right": "the person was right",
    "both_reasonable": "both were reasonable",
    "data_issue": "the data was at fault",
    "inconclusive": "nobody can tell",
}


def _enum(values: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    """Document the allowed values on the string branch of an optional field."""

    def add(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", []):
            if branch.get("type") == "string":
                branch["enum"] = list(values)

    return add


class DisagreementQuery(PageQuery):
    """Filters of the queue; all given filters must match. Open cases first, by due time."""

    state: str | None = Field(
        default=None,
        description=f"One of {', '.join(CASE_FILTERS)} (overdue and escalated are open cases)",
        json_schema_extra=_enum(CASE_FILTERS),
    )
    kind: str | None = Field(
        default=None,
        description=f"One of {', '.join(DISAGREEMENT_KINDS)}",
        json_schema_extra=_enum(DISAGREEMENT_KINDS),
    )
    use_case_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    simulated: bool | None = Field(
        default=None, description="true: only demo history; false: only real cases"
    )

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        if value is not None and value not in CASE_FILTERS:
            raise ValueError(f"unknown state {value!r}; use {', '.join(CASE_FILTERS)}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and value not in DISAGREEMENT_KINDS:
            raise ValueError(f"unknown kind {value!r}; use {', '.join(DISAGREEMENT_KINDS)}")
        return value


class DisagreementPath(BaseModel):
    """A case in the URL."""

    disagreement_id: int = Field(ge=1, le=MAX_ID, description="The case's id")


class DisagreementOut(BaseModel):
    """One case of the queue: what it stems from, both sides in a line, owner, SLA, review."""

    id: int
    kind: str = Field(description=f"One of {', '.join(DISAGREEMENT_KINDS)}")
    state: str = Field(description="open or resolved")
    use_case_id: int | None
    use_case: str | None = Field(description="Name of the AI use case")
    recommendation_id: int | None = Field(description="The recommendation it stems from")
    anomaly_id: int | None = Field(description="The anomaly episode it stems from")
    incident_id: int | None = Field(description="The incident the AI missed")
    execution_id: int | None = Field(description="The action that was rolled back")
    ai_summary: str = Field(description="What the AI said, in one line")
    human_summary: str = Field(description="What the person decided, in one line")
    data_quality_summary: str = Field(description="The data quality at the time, in words")
    owner_team: str | None = Field(description="The team that owns the AI use case")
    assignee: str | None = Field(description="Who reviews it (on call when it opened)")
    assignee_person_id: int | None
    created_at: UtcDateTime
    due_at: UtcDateTime | None = Field(description="Review SLA")
    overdue: bool = Field(description="Open and past its review SLA")
    escalated_at: UtcDateTime | None
    outcome: str | None = Field(description=f"Review outcome: {', '.join(REVIEW_OUTCOMES)}")
    review_note: str | None
    reviewed_at: UtcDateTime | None
    simulated: bool = Field(description="Part of the demo's simulated history")


class DisagreementPage(PageInfo):
    """One page of cases, open ones first by due time."""

    items: list[DisagreementOut]


class DisagreementReviewOut(BaseModel):
    """A review of the case."""

    id: int
    outcome: str
    note: str
    reviewer: str | None = Field(description="Who reviewed (null for API tokens: see history)")
    at: UtcDateTime


class DisagreementEventOut(BaseModel):
    """One audited step of the case."""

    at: UtcDateTime
    actor: str
    action: str
    after: dict[str, Any] | None


class DisagreementDetail(DisagreementOut):
    """A case in full: both sides, the data quality at the time, reviews and audit history."""

    ai_side: dict[str, Any] = Field(
        description="The AI output: action or episode, confidence, rationale, model version"
    )
    human_side: dict[str, Any] = Field(
        description="The human decision: who, verdict or label, reason, note"
    )
    data_quality: dict[str, Any] = Field(
        description="Source freshness, the element's gaps and health events, the AI's flags"
    )
    reviews: list[DisagreementReviewOut]
    history: list[DisagreementEventOut]


class DisagreementReviewIn(BaseModel):
    """Resolve a case. The human decision stands whatever the outcome; the outcome decides
    what the AI learns (precision, calibration, promotion criteria; "data_issue" marks the
    data and lowers confidence there)."""

    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(
        description="; ".join(f"{k}: {v}" for k, v in OUTCOME_WORDS.items()),
        json_schema_extra={"enum": list(REVIEW_OUTCOMES)},
    )
    note: str = Field(default="", max_length=MAX_NOTE, description="Why; shown on the queue")
    new_normal: bool = Field(
        default=False,
        description="For anomaly cases: the level is the new normal; the baseline restarts there",
    )

    @field_validator("outcome")
    @classmethod
    def _outcome(cls, value: str) -> str:
        if value not in REVIEW_OUTCOMES:
            raise ValueError(f"unknown outcome {value!r}; use {', '.join(REVIEW_OUTCOMES)}")
        return value
