"""Guardrails checked on the server before any execution, each explained in plain language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.automation import change_windows
from services.automation.levels import (
    ADVISORY,
    APPROVE_TO_EXECUTE,
    AUTO_WITH_GUARDRAILS,
    SHADOW,
    level_label,
)
from services.automation.use_cases import guardrail_settings
from services.db.models import Decision, Element, Execution, Recommendation, UseCase
from services.errors import Conflict

# Human approval counts from these verdicts; "approve" is the second person's step.
APPROVING_VERDICTS = ("accept", "approve", "override")
HIGH_SEVERITIES = ("critical", "major")
# States that pass the state check (a half-approved one is then stopped by human_approval,
# which says why); the rest are settled or in flight.
EXECUTABLE_STATES = ("open", "accepted", "overridden", "awaiting_second_approval")
HUMAN_APPROVED_STATES = ("accepted", "overridden")
GUARDRAIL_NAMES = (
    "recommendation_state",
    "use_case_enabled",
    "maturity_level",
    "human_approval",
    "two_person_approval",
    "expiry",
    "min_confidence",
    "blast_radius_cells",
    "blast_radius_users",
    "change_freeze",
    "planned_work",
    "rate_limit",
)


@dataclass(frozen=True)
class GuardrailResult:
    """One guardrail's verdict with a plain-language reason."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class GuardrailReport:
    """Every guardrail checked for one execution; allowed only when all pass."""

    allowed: bool
    results: list[GuardrailResult]

    def blocking(self) -> GuardrailResult | None:
        """The first guardrail that blocks, or None."""
        return next((r for r in self.results if not r.ok), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        blocking = self.blocking()
        return {
            "allowed": self.allowed,
            "blocking": None if blocking is None else blocking.as_dict(),
            "results": [r.as_dict() for r in self.results],
        }


class GuardrailBlocked(Conflict):
    """Execution refused by a guardrail; the message names it and says why (API: 409)."""

    code = "guardrail_blocked"

    def __init__(self, report: GuardrailReport) -> None:
        blocking = report.blocking()
        name = blocking.name if blocking else "unknown"
        detail = blocking.detail if blocking else "blocked"
        super().__init__(f"Blocked by guardrail {name}: {detail}", details=report.as_dict())
        self.guardrail = name
        self.report = report


def check_guardrails(
    session: Session, *, recommendation: Recommendation, now: datetime, automatic: bool
) -> GuardrailReport:
    """Check every guardrail for executing `recommendation` now (automatically or by a human)."""
    case = session.get(UseCase, recommendation.use_case_id)
    element = session.get(Element, recommendation.element_id) if recommendation.element_id else None
    settings = guardrail_settings(case)
    domain = element.domain if element is not None else case.domain
    results = [
        _state(recommendation),
        _enabled(case),
        _maturity(case, automatic=automatic),
        _approval(recommendation, case, automatic=automatic),
        _two_person(session, recommendation, case),
        _expiry(recommendation, now),
        _confidence(recommendation, settings),
        *_blast_radius(recommendation, settings),
        _freeze(session, element, domain, now),
        _planned_work(session, element, domain, now),
        _rate_limit(session, domain, settings, now),
    ]
    return GuardrailReport(allowed=all(r.ok for r in results), results=results)


def _state(rec: Recommendation) -> GuardrailResult:
    if rec.state in EXECUTABLE_STATES:
        return GuardrailResult("recommendation_state", True, f"The recommendation is {rec.state}.")
    return GuardrailResult(
        "recommendation_state",
        False,
        f"The recommendation is {rec.state.replace('_', ' ')}, so there is nothing to execute.",
    )


def _enabled(case: UseCase) -> GuardrailResult:
    if case.enabled:
        return GuardrailResult("use_case_enabled", True, f"{case.name} is enabled.")
    return GuardrailResult("use_case_enabled", False, f"{case.name} is switched off by an admin.")


def _maturity(case: UseCase, *, automatic: bool) -> GuardrailResult:
    level = case.maturity_level
    label = level_label(level)
    if level == SHADOW:
        return GuardrailResult(
            "maturity_level",
            False,
            f"{case.name} is at {label} shadow: its recommendations are only recorded and "
            "never executed.",
        )
    if level == ADVISORY:
        return GuardrailResult(
            "maturity_level",
            False,
            f"{case.name} is at {label} advisory: Beacon advises but does not execute; "
            "carry the action out by hand or promote the use case to L2.",
        )
    if automatic and level < AUTO_WITH_GUARDRAILS:
        return GuardrailResult(
            "maturity_level",
            False,
            f"{case.name} is at {label}: it never runs on its own; a person must accept "
            "and execute it.",
        )
    return GuardrailResult("maturity_level", True, f"{case.name} is at {label}.")


def _approval(rec: Recommendation, case: UseCase, *, automatic: bool) -> GuardrailResult:
    if case.maturity_level >= AUTO_WITH_GUARDRAILS:
        return GuardrailResult(
            "human_approval", True, f"{level_label(case.maturity_level)} needs no human approval."
        )
    if rec.state in HUMAN_APPROVED_STATES:
        return GuardrailResult("human_approval", True, "A person accepted this recommendation.")
    if rec.state == "awaiting_second_approval":
        detail = "It is waiting for a second, different approver."
    else:
        detail = "No person has accepted it yet; accept it first."
    return GuardrailResult(
        "human_approval",
        False,
        f"Below L3 nothing runs without a person's acceptance. {detail}",
    )


def _two_person(session: Session, rec: Recommendation, case: UseCase) -> GuardrailResult:
    needed = case.maturity_level == APPROVE_TO_EXECUTE and rec.severity in HIGH_SEVERITIES
    if not needed:
        return GuardrailResult("two_person_approval", True, "No second approver is required.")
    approvers = set(
        session.scalars(
            select(Decision.user_id).where(
                Decision.recommendation_id == rec.id, Decision.verdict.in_(APPROVING_VERDICTS)
            )
        )
    )
    approvers.discard(None)
    if len(approvers) >= 2:
        return GuardrailResult("two_person_approval", True, "Two different people approved it.")
    return GuardrailResult(
        "two_person_approval",
        False,
        f"A {rec.severity} action at L2 needs two different approvers; {len(approvers)} so far.",
    )


def _expiry(rec: Recommendation, now: datetime) -> GuardrailResult:
    if rec.expires_at is not None and rec.expires_at <= now:
        return GuardrailResult(
            "expiry", False, f"The recommendation expired at {rec.expires_at:%Y-%m-%d %H:%M} UTC."
        )
    return GuardrailResult("expiry", True, "The recommendation has not expired.")


def _confidence(rec: Recommendation, settings: dict[str, Any]) -> GuardrailResult:
    floor = float(settings["min_confidence"])
    if rec.confidence >= floor:
        return GuardrailResult(
            "min_confidence",
            True,
            f"Confidence {rec.confidence:.0%} meets the {floor:.0%} minimum.",
        )
    return GuardrailResult(
        "min_confidence",
        False,
        f"Confidence {rec.confidence:.0%} is below this use case's {floor:.0%} minimum.",
    )


def _blast_radius(rec: Recommendation, settings: dict[str, Any]) -> list[GuardrailResult]:
    out = []
    for name, value, cap, unit in (
        ("blast_radius_cells", rec.blast_radius_cells, settings["max_blast_radius_cells"], "cells"),
        ("blast_radius_users", rec.blast_radius_users, settings["max_blast_radius_users"], "users"),
    ):
        if value <= int(cap):
            out.append(GuardrailResult(name, True, f"Touches {value} {unit} (cap {cap})."))
        else:
            out.append(
                GuardrailResult(
                    name, False, f"Would touch {value} {unit}; this use case may touch {cap}."
                )
            )
    return out


def _window_text(windows: list[Any]) -> str:
    first = windows[0]
    more = f" and {len(windows) - 1} more" if len(windows) > 1 else ""
    return f"“{first.title}” until {first.ends_at:%Y-%m-%d %H:%M} UTC{more}"


def _freeze(
    session: Session, element: Element | None, domain: str, now: datetime
) -> GuardrailResult:
    windows = change_windows.active_freezes(session, element=element, domain=domain, now=now)
    if not windows:
        return GuardrailResult("change_freeze", True, "No change freeze covers this element.")
    return GuardrailResult(
        "change_freeze", False, f"A change freeze is in force: {_window_text(windows)}."
    )


def _planned_work(
    session: Session, element: Element | None, domain: str, now: datetime
) -> GuardrailResult:
    windows = change_windows.active_planned_work(session, element=element, domain=domain, now=now)
    if not windows:
        return GuardrailResult("planned_work", True, "No planned work overlaps this element.")
    return GuardrailResult(
        "planned_work",
        False,
        f"Planned work is in progress on this part of the network: {_window_text(windows)}.",
    )


def executions_last_hour(session: Session, *, domain: str, now: datetime) -> int:
    """Real (not dry-run) executions started in the domain within the hour before `now`."""
    return int(
        session.scalar(
            select(func.count(Execution.id))
            .join(Recommendation, Recommendation.id == Execution.recommendation_id)
            .join(UseCase, UseCase.id == Recommendation.use_case_id)
            .outerjoin(Element, Element.id == Recommendation.element_id)
            .where(
                Execution.dry_run.is_(False),
                Execution.started_at > now - timedelta(hours=1),
                Execution.started_at <= now,
                func.coalesce(Element.domain, UseCase.domain) == domain,
            )
        )
        or 0
    )


def _rate_limit(
    session: Session, domain: str, settings: dict[str, Any], now: datetime
) -> GuardrailResult:
    limit = int(settings["rate_limit_per_domain_per_hour"])
    used = executions_last_hour(session, domain=domain, now=now)
    if used < limit:
        return GuardrailResult(
            "rate_limit", True, f"{used} of {limit} actions used in {domain} this hour."
        )
    return GuardrailResult(
        "rate_limit",
        False,
        f"{domain} already had {used} automated actions in the last hour (limit {limit}); "
        "wait before running another.",
    )
