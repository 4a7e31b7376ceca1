"""Automation use cases: the seeded catalogue, owners, thresholds and their validation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.automation.levels import LEVELS, level_label, level_name
from services.db.models import Ownership, Team, UseCase
from services.errors import Forbidden, InvalidInput, NotFound

# What a use case must show before promotion (see maturity.py).
DEFAULT_CRITERIA: dict[str, Any] = {
    "min_decisions": 20,
    "min_acceptance_rate": 0.8,
    "min_precision": 0.85,
    "no_harmful_rollback_days": 30,
    "window_days": 30,
}
# Checked before any execution (see guardrails.py); verification settings ride along
# because they are part of the same engineer-owned safety envelope.
DEFAULT_GUARDRAILS: dict[str, Any] = {
    "min_confidence": 0.8,
    "max_blast_radius_cells": 3,
    "max_blast_radius_users": 500,
    "rate_limit_per_domain_per_hour": 5,
    "verification_minutes": 60,
    "verification_tolerance_pct": 10.0,
    "actuator": "simulator",
}
ACTUATORS = ("simulator", "webhook")


@dataclass(frozen=True)
class UseCaseSpec:
    """One seeded use case."""

    key: str
    name: str
    description: str
    trigger: str
    action: str
    domain: str
    level: int
    criteria: dict[str, Any]
    guardrails: dict[str, Any]


SEEDED: tuple[UseCaseSpec, ...] = (
    UseCaseSpec(
        key="cell_congestion_lb",
        name="Cell congestion → load-balancing parameter change",
        description="A congested cell hands part of its users to neighbours by raising the "
        "load-balancing offload towards them.",
        trigger="anomaly:congestion",
        action="lb_param_change",
        domain="RAN",
        level=2,
        criteria={**DEFAULT_CRITERIA},
        guardrails={**DEFAULT_GUARDRAILS, "max_blast_radius_cells": 3},
    ),
    UseCaseSpec(
        key="sleeping_cell_restart",
        name="Sleeping cell → cell restart",
        description="A cell that carries no traffic while its neighbours are busy is restarted.",
        trigger="anomaly:sleeping_cell",
        action="cell_restart",
        domain="RAN",
        level=3,
        criteria={**DEFAULT_CRITERIA, "min_decisions": 30, "min_precision": 0.9},
        guardrails={**DEFAULT_GUARDRAILS, "max_blast_radius_cells": 1, "min_confidence": 0.85},
    ),
    UseCaseSpec(
        key="transport_link_reroute",
        name="Degraded transport link → traffic reroute",
        description="Traffic of a flapping or lossy transport link moves to its backup path.",
        trigger="anomaly:link_degraded",
        action="traffic_reroute",
        domain="Transport",
        level=1,
        criteria={**DEFAULT_CRITERIA, "min_decisions": 30},
        guardrails={
            **DEFAULT_GUARDRAILS,
            "max_blast_radius_cells": 6,
            "max_blast_radius_users": 2000,
            "rate_limit_per_domain_per_hour": 2,
        },
    ),
    UseCaseSpec(
        key="capacity_carrier_add",
        name="Capacity breach forecast → carrier-add planning ticket",
        description="A cell forecast to breach its capacity gets a carrier-add planning ticket.",
        trigger="forecast:capacity_breach",
        action="carrier_add_ticket",
        domain="RAN",
        level=2,
        criteria={**DEFAULT_CRITERIA, "min_decisions": 10, "min_acceptance_rate": 0.7},
        guardrails={**DEFAULT_GUARDRAILS, "min_confidence": 0.6, "max_blast_radius_cells": 1},
    ),
)

_NUMERIC_CRITERIA = {
    "min_decisions": (0, 100_000),
    "min_acceptance_rate": (0.0, 1.0),
    "min_precision": (0.0, 1.0),
    "no_harmful_rollback_days": (0, 3650),
    "window_days": (1, 3650),
}
_NUMERIC_GUARDRAILS = {
    "min_confidence": (0.0, 1.0),
    "max_blast_radius_cells": (0, 1_000_000),
    "max_blast_radius_users": (0, 100_000_000),
    "rate_limit_per_domain_per_hour": (0, 10_000),
    "verification_minutes": (1, 7 * 24 * 60),
    "verification_tolerance_pct": (0.0, 1000.0),
}


def ensure_use_cases(session: Session, *, now: datetime) -> int:
    """Insert the seeded use cases that are missing (never overwrite edits); returns added."""
    existing = set(session.scalars(select(UseCase.key)))
    added = []
    for spec in SEEDED:
        if spec.key in existing:
            continue
        session.add(
            UseCase(
                key=spec.key,
                name=spec.name,
                description=spec.description,
                trigger=spec.trigger,
                action=spec.action,
                domain=spec.domain,
                maturity_level=spec.level,
                level_since=now,
                criteria=dict(spec.criteria),
                guardrails=dict(spec.guardrails),
            )
        )
        added.append(spec.key)
    if added:
        session.flush()
        audit.record(session, actor=audit.SYSTEM, action="automation.seed", after={"added": added})
    assign_owners(session)
    return len(added)


def assign_owners(session: Session) -> int:
    """Point each use case without an owner at its ownership team ("usecase:<key>", else domain)."""
    changed = 0
    for case in session.scalars(select(UseCase).where(UseCase.owner_team_id.is_(None))):
        team_id = _owning_team_id(session, case)
        if team_id is not None:
            case.owner_team_id = team_id
            changed += 1
    if changed:
        session.flush()
    return changed


def _owning_team_id(session: Session, case: UseCase) -> int | None:
    for kind, key in (("component", f"usecase:{case.key}"), ("domain", case.domain)):
        team_id = session.scalar(
            select(Ownership.team_id).where(
                Ownership.subject_kind == kind, Ownership.subject_key == key
            )
        )
        if team_id is not None:
            return team_id
    return None


def get_use_case(session: Session, *, use_case_id: int) -> UseCase:
    """The use case or NotFound."""
    case = session.get(UseCase, use_case_id)
    if case is None:
        raise NotFound(f"use case #{use_case_id} does not exist")
    return case


def list_use_cases(session: Session) -> list[UseCase]:
    """Every use case, by key."""
    return list(session.scalars(select(UseCase).order_by(UseCase.key)))


def guardrail_settings(case: UseCase) -> dict[str, Any]:
    """The use case's guardrails with defaults filled in."""
    return {**DEFAULT_GUARDRAILS, **(case.guardrails or {})}


def criteria_settings(case: UseCase) -> dict[str, Any]:
    """The use case's promotion criteria with defaults filled in."""
    return {**DEFAULT_CRITERIA, **(case.criteria or {})}


def validate_settings(*, criteria: dict[str, Any], guardrails: dict[str, Any]) -> None:
    """InvalidInput naming the first unknown key or out-of-range value."""
    for given, allowed, what in (
        (criteria, _NUMERIC_CRITERIA, "criterion"),
        (guardrails, _NUMERIC_GUARDRAILS, "guardrail"),
    ):
        for key, value in given.items():
            if key == "actuator" and what == "guardrail":
                if value not in ACTUATORS:
                    raise InvalidInput(f"actuator must be one of {', '.join(ACTUATORS)}")
                continue
            if key not in allowed:
                raise InvalidInput(f"unknown {what} {key!r}")
            lo, hi = allowed[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{what} {key} must be a number")
            if not lo <= value <= hi:
                raise InvalidInput(f"{what} {key} must be between {lo} and {hi}")


def update_settings(
    session: Session,
    *,
    use_case_id: int,
    actor: Actor,
    criteria: dict[str, Any] | None = None,
    guardrails: dict[str, Any] | None = None,
) -> UseCase:
    """Change thresholds of a use case (engineers only; audited with before and after)."""
    from services.auth import ENGINEER_ROLES  # keeps auth's import cost off pure modules

    if actor.kind != "system" and actor.role not in ENGINEER_ROLES:
        raise Forbidden("Only engineers and admins can change automation thresholds.")
    case = get_use_case(session, use_case_id=use_case_id)
    validate_settings(criteria=criteria or {}, guardrails=guardrails or {})
    before = {"criteria": dict(case.criteria or {}), "guardrails": dict(case.guardrails or {})}
    if criteria:
        case.criteria = {**(case.criteria or {}), **criteria}
    if guardrails:
        case.guardrails = {**(case.guardrails or {}), **guardrails}
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="automation.use_case.settings",
        object_type="use_case",
        object_id=case.id,
        before=before,
        after={"criteria": case.criteria, "guardrails": case.guardrails},
    )
    return case


def use_case_view(session: Session, *, case: UseCase, now: datetime) -> dict[str, Any]:
    """The REST shape of a use case: level as "L2", owner, criteria and current metrics."""
    from services.automation.maturity import use_case_metrics

    team = session.get(Team, case.owner_team_id) if case.owner_team_id else None
    return {
        "id": case.id,
        "key": case.key,
        "name": case.name,
        "description": case.description,
        "trigger": case.trigger,
        "action": case.action,
        "domain": case.domain,
        "enabled": case.enabled,
        "maturity_level": level_label(case.maturity_level),
        "maturity_name": level_name(case.maturity_level),
        "level_since": case.level_since.isoformat() if case.level_since else None,
        "owner": None if team is None else {"id": team.id, "key": team.key, "name": team.name},
        "criteria": criteria_settings(case),
        "guardrails": guardrail_settings(case),
        "metrics": use_case_metrics(session, use_case_id=case.id, now=now),
        "levels": [{"level": level_label(k), "name": v} for k, v in LEVELS.items()],
    }
