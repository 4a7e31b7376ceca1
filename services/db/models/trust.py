"""Humans in charge: use cases, recommendations, decisions, executions, disagreements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, utcnow


class UseCase(Base):
    """An automation use case and the maturity level it has earned (L0 shadow .. L4)."""

    __tablename__ = "use_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[str] = mapped_column(String(64))  # e.g. anomaly:congestion, forecast:breach
    action: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(16), default="RAN")
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    maturity_level: Mapped[int] = mapped_column(default=1)
    level_since: Mapped[datetime] = mapped_column(default=utcnow)
    criteria: Mapped[dict[str, Any]] = mapped_column(default=dict)
    guardrails: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)


class MaturityChange(Base):
    """A proposed, approved or automatic change of a use case's maturity level."""

    __tablename__ = "maturity_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    from_level: Mapped[int]
    to_level: Mapped[int]
    kind: Mapped[str] = mapped_column(String(24))  # promotion, demotion
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # approved, rejected
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Recommendation(Base):
    """What the AI proposes, with its rationale, confidence, blast radius and rollback plan."""

    __tablename__ = "recommendations"
    __table_args__ = (Index("ix_recommendations_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    anomaly_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("anomalies.id", ondelete="SET NULL")
    )
    forecast_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("forecasts.id", ondelete="SET NULL")
    )
    element_id: Mapped[int | None] = mapped_column(ForeignKey("elements.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    confidence: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16), default="minor")
    expected_impact: Mapped[str] = mapped_column(Text, default="")
    blast_radius_cells: Mapped[int] = mapped_column(default=1)
    blast_radius_users: Mapped[int] = mapped_column(default=0)
    rollback_plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    maturity_level: Mapped[int] = mapped_column(default=1)  # the use case's level when raised
    state: Mapped[str] = mapped_column(String(24), default="open")
    simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]


class Decision(Base):
    """A human verdict on a recommendation: accept, reject or override, always with a reason."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("recommendations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(16))  # accept, reject, override, approve
    reason_code: Mapped[str] = mapped_column(String(48))
    note: Mapped[str] = mapped_column(Text, default="")
    override_action: Mapped[str | None] = mapped_column(String(64))
    override_parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # 1 for the first decision, 2 for the second person of a two-person approval.
    approval_step: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Execution(Base):
    """What ran for a recommendation: pre-state, result, verification and rollback."""

    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("recommendations.id", ondelete="CASCADE"), index=True
    )
    actuator: Mapped[str] = mapped_column(String(32))  # simulator, webhook
    dry_run: Mapped[bool] = mapped_column(default=False)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    state: Mapped[str] = mapped_column(String(24), default="pending")
    triggered_by: Mapped[str] = mapped_column(String(100))
    pre_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    post_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rollback: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verification: Mapped[dict[str, Any]] = mapped_column(default=dict)
    guardrails: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    verify_after: Mapped[datetime | None]
    rolled_back_at: Mapped[datetime | None]
    rolled_back_by: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)


class Disagreement(Base):
    """A case where human and AI differ; the human decision stands and the case is reviewed."""

    __tablename__ = "disagreements"
    __table_args__ = (Index("ix_disagreements_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # one of DISAGREEMENT_KINDS
    state: Mapped[str] = mapped_column(String(16), default="open")  # resolved
    use_case_id: Mapped[int | None] = mapped_column(ForeignKey("use_cases.id", ondelete="SET NULL"))
    recommendation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("recommendations.id", ondelete="SET NULL")
    )
    anomaly_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("anomalies.id", ondelete="SET NULL")
    )
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    execution_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("executions.id", ondelete="SET NULL")
    )
    ai_side: Mapped[dict[str, Any]] = mapped_column(default=dict)
    human_side: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    assigned_team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL")
    )
    assignee_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL")
    )
    due_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """The outcome of reviewing a disagreement; it decides what the AI learns."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    disagreement_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("disagreements.id", ondelete="CASCADE"), index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(24))  # ai_right, human_right, both_reasonable, ...
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChangeWindow(Base):
    """Planned work or a freeze from the change calendar."""

    __tablename__ = "change_windows"
    __table_args__ = (Index("ix_change_windows_span", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))  # change, maintenance, freeze
    # Which part of the network: {"domains": [...], "regions": [...], "elements": [dn, ...]}.
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32), default="manual")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
