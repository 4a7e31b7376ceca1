"""Incidents with their roles and timeline, and outbound notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, utcnow

OPEN_DEDUP = "dedup_key IS NOT NULL AND status IN ('triggered', 'acknowledged', 'mitigated')"


class Incident(Base):
    """An operational incident: triggered -> acknowledged -> mitigated -> resolved."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status_created", "status", "created_at"),
        # One open incident per dedup key, even when two openers race (scheduler and web).
        Index(
            "uq_incidents_open_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=text(OPEN_DEDUP),
            postgresql_where=text(OPEN_DEDUP),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(8))  # sev1 .. sev4
    status: Mapped[str] = mapped_column(String(16), default="triggered")
    origin: Mapped[str] = mapped_column(String(16))  # anomaly, alarm, manual, heartbeat
    domain: Mapped[str | None] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    escalation_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="SET NULL")
    )
    escalation_position: Mapped[int] = mapped_column(default=0)
    escalation_round: Mapped[int] = mapped_column(default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    dedup_key: Mapped[str | None] = mapped_column(String(200), index=True)
    external_ticket: Mapped[str | None] = mapped_column(String(100))
    ai_detected: Mapped[bool | None]
    ai_recommended: Mapped[bool | None]
    ai_correct: Mapped[bool | None]
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    simulated: Mapped[bool] = mapped_column(default=False)


class IncidentRole(Base):
    __tablename__ = "incident_roles"
    __table_args__ = (UniqueConstraint("incident_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))  # commander, ai_liaison, scribe
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))


class IncidentChangeWindow(Base):
    __tablename__ = "incident_change_windows"
    __table_args__ = (UniqueConstraint("incident_id", "change_window_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    change_window_id: Mapped[int] = mapped_column(
        ForeignKey("change_windows.id", ondelete="CASCADE")
    )


class IncidentEvent(Base):
    """One line of an incident's timeline."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))  # note, status, anomaly, decision, escalation
    actor: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Notification(Base):
    """An outbound message (webhook, email, log): delivered at least once, never lost."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notifier: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
