"""Ownership: teams, people, rotations, overrides, escalation policies, ownership map."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Team(Base):
    """A team that owns network domains and AI components."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class Person(Base):
    """Someone who can be on call, with contact methods and a home time zone."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    tz: Mapped[str] = mapped_column(String(64), default="UTC")
    contacts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))


class Rotation(Base):
    """One layer of a team's on-call schedule: who follows whom and when they hand off."""

    __tablename__ = "rotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # daily, weekly, custom
    layer: Mapped[int] = mapped_column(default=1)
    tz: Mapped[str] = mapped_column(String(64), default="UTC")
    handoff_time: Mapped[str] = mapped_column(String(5), default="09:00")  # local HH:MM
    handoff_weekday: Mapped[int | None]  # 0 = Monday, for weekly rotations
    shift_hours: Mapped[int | None]  # for custom rotations
    starts_at: Mapped[datetime]
    # Optional restriction, e.g. {"from": "08:00", "to": "18:00", "weekdays": [0, 1, 2, 3, 4]}.
    restriction: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RotationMember(Base):
    __tablename__ = "rotation_members"
    __table_args__ = (UniqueConstraint("rotation_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    position: Mapped[int]


class OncallOverride(Base):
    """A temporary replacement on a rotation (cover or shift swap)."""

    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    repeat_count: Mapped[int] = mapped_column(default=1)
    renotify_minutes: Mapped[int | None]  # re-page after ack while still unresolved


class EscalationStep(Base):
    """Notify a target (a rotation's on-call, a person or a team), then wait."""

    __tablename__ = "escalation_steps"
    __table_args__ = (UniqueConstraint("policy_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("escalation_policies.id", ondelete="CASCADE"))
    position: Mapped[int]
    target_kind: Mapped[str] = mapped_column(String(16))  # rotation, person, team
    target_id: Mapped[int]
    wait_minutes: Mapped[int] = mapped_column(default=15)


class Ownership(Base):
    """Who owns what: a domain, a region or an AI component, mapped to a team."""

    __tablename__ = "ownerships"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # domain, region, component
    subject_key: Mapped[str] = mapped_column(String(200))  # RAN, RAN:North, ingest:<source>
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    escalation_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="SET NULL")
    )
