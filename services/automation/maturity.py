"""Earned automation: metrics per use case, promotion proposals, admin approval, demotion."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.automation.levels import AUTONOMOUS, SHADOW, level_label, parse_level
from services.automation.use_cases import criteria_settings, get_use_case
from services.db.models import (
    Decision,
    Disagreement,
    Execution,
    MaturityChange,
    Recommendation,
    Review,
    UseCase,
    User,
)
from services.errors import Conflict, Forbidden, InvalidInput, NotFound

RIGHT_OUTCOMES = ("ai_right",)
WRONG_OUTCOMES = ("human_right",)


def use_case_metrics(session: Session, *, use_case_id: int, now: datetime) -> dict[str, Any]:
    """Decisions, acceptance rate, precision and harmful rollbacks over the criteria window.

    precision = judged right / judged: an accepted recommendation counts as right, a
    reviewed disagreement counts right for "ai_right" and wrong for "human_right"; other
    outcomes (both reasonable, data issue, inconclusive) are left out. review_precision
    uses reviews alone.
    """
    case = get_use_case(session, use_case_id=use_case_id)
    criteria = criteria_settings(case)
    since = now - timedelta(days=int(criteria["window_days"]))
    verdicts = dict(
        session.execute(
            select(Decision.verdict, func.count(Decision.id))
            .join(Recommendation, Recommendation.id == Decision.recommendation_id)
            .where(
                Recommendation.use_case_id == case.id,
                Decision.approval_step == 1,
                Decision.created_at >= since,
                Decision.created_at <= now,
            )
            .group_by(Decision.verdict)
        ).all()
    )
    decisions = sum(verdicts.values())
    accepted = int(verdicts.get("accept", 0))
    outcomes = dict(
        session.execute(
            select(Review.outcome, func.count(Review.id))
            .join(Disagreement, Disagreement.id == Review.disagreement_id)
            .where(
                Disagreement.use_case_id == case.id,
                Review.created_at >= since,
                Review.created_at <= now,
            )
            .group_by(Review.outcome)
        ).all()
    )
    right = sum(int(outcomes.get(o, 0)) for o in RIGHT_OUTCOMES)
    wrong = sum(int(outcomes.get(o, 0)) for o in WRONG_OUTCOMES)
    judged = accepted + right + wrong
    harmful_days = int(criteria["no_harmful_rollback_days"])
    harmful = harmful_rollbacks(
        session, use_case_id=case.id, since=now - timedelta(days=harmful_days)
    )
    executions = session.execute(
        select(Execution.state, Execution.guardrails)
        .join(Recommendation, Recommendation.id == Execution.recommendation_id)
        .where(
            Recommendation.use_case_id == case.id,
            Execution.dry_run.is_(False),
            Execution.started_at >= since,
            Execution.started_at <= now,
        )
    ).all()
    return {
        "window_days": int(criteria["window_days"]),
        "decisions": decisions,
        "accepted": accepted,
        "rejected": int(verdicts.get("reject", 0)),
        "overridden": int(verdicts.get("override", 0)),
        "acceptance_rate": _rate(accepted, decisions),
        "reviews": sum(int(v) for v in outcomes.values()),
        "review_outcomes": {k: int(v) for k, v in outcomes.items()},
        "precision": _rate(accepted + right, judged),
        "review_precision": _rate(right, right + wrong),
        "executions": len(executions),
        "automated_executions": sum(1 for e in executions if (e.guardrails or {}).get("automatic")),
        "rollbacks": sum(1 for e in executions if e.state == "rolled_back"),
        "harmful_rollbacks": len(harmful),
        "last_harmful_rollback_at": max((h.isoformat() for h in harmful), default=None),
    }


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def harmful_rollbacks(session: Session, *, use_case_id: int, since: datetime) -> list[datetime]:
    """When executions of the use case were rolled back because they made KPIs worse."""
    rows = session.execute(
        select(Execution.rolled_back_at, Execution.rollback)
        .join(Recommendation, Recommendation.id == Execution.recommendation_id)
        .where(
            Recommendation.use_case_id == use_case_id,
            Execution.state == "rolled_back",
            Execution.rolled_back_at >= since,
        )
    ).all()
    # JSON fields differ between SQLite and PostgreSQL: filter the few rows in Python.
    return [at for at, info in rows if (info or {}).get("harmful")]


def criteria_checks(case: UseCase, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each promotion criterion with what is required, what was measured, and whether it holds."""
    criteria = criteria_settings(case)
    checks = [
        ("min_decisions", criteria["min_decisions"], metrics["decisions"]),
        ("min_acceptance_rate", criteria["min_acceptance_rate"], metrics["acceptance_rate"]),
        ("min_precision", criteria["min_precision"], metrics["precision"]),
    ]
    out = [
        {"name": name, "required": need, "actual": got, "ok": got is not None and got >= need}
        for name, need, got in checks
    ]
    out.append(
        {
            "name": "no_harmful_rollback_days",
            "required": criteria["no_harmful_rollback_days"],
            "actual": metrics["harmful_rollbacks"],
            "ok": metrics["harmful_rollbacks"] == 0,
        }
    )
    return out


def propose_promotions(session: Session, *, now: datetime) -> list[MaturityChange]:
    """Job: propose one level up for every use case whose criteria hold (admins approve)."""
    pending = set(
        session.scalars(
            select(MaturityChange.use_case_id).where(MaturityChange.status == "proposed")
        )
    )
    proposed = []
    cases = session.scalars(
        select(UseCase).where(UseCase.enabled.is_(True), UseCase.maturity_level < AUTONOMOUS)
    )
    for case in list(cases):
        if case.id in pending:
            continue
        metrics = use_case_metrics(session, use_case_id=case.id, now=now)
        checks = criteria_checks(case, metrics)
        if not all(c["ok"] for c in checks):
            continue
        change = MaturityChange(
            use_case_id=case.id,
            from_level=case.maturity_level,
            to_level=case.maturity_level + 1,
            kind="promotion",
            status="proposed",
            reason=(
                f"{metrics['decisions']} decisions, {metrics['acceptance_rate']:.0%} accepted, "
                f"precision {metrics['precision']:.0%}, no harmful rollback: every criterion "
                f"for {level_label(case.maturity_level + 1)} holds."
            ),
            evidence={"metrics": metrics, "checks": checks},
            proposed_at=now,
        )
        session.add(change)
        session.flush()
        _audit_change(session, audit.SYSTEM, "automation.maturity.proposed", change)
        proposed.append(change)
    return proposed


def _admin(session: Session, admin: str | Actor) -> tuple[Actor, int | None]:
    """The approving admin as an audit actor and user id; Forbidden for anyone else."""
    name = admin.name if isinstance(admin, Actor) else admin
    user = session.scalar(select(User).where(User.username == name))
    role = admin.role if isinstance(admin, Actor) else (user.role if user else None)
    if role != "admin" or (isinstance(admin, Actor) and admin.kind not in ("user", "api")):
        raise Forbidden("Only an admin can change a use case's automation level.")
    actor = admin if isinstance(admin, Actor) else Actor(name=name, role=role)
    return actor, user.id if user else None


def _change(session: Session, change_id: int) -> MaturityChange:
    change = session.get(MaturityChange, change_id)
    if change is None:
        raise NotFound(f"maturity change #{change_id} does not exist")
    if change.status != "proposed":
        raise Conflict(f"maturity change #{change_id} is already {change.status}")
    return change


def approve_change(
    session: Session, *, change_id: int, admin: str | Actor, now: datetime
) -> MaturityChange:
    """An admin approves a proposed promotion: the use case moves to the new level (audited)."""
    actor, user_id = _admin(session, admin)
    change = _change(session, change_id)
    case = get_use_case(session, use_case_id=change.use_case_id)
    if case.maturity_level != change.from_level:
        raise Conflict(
            f"{case.name} is at {level_label(case.maturity_level)} now, not "
            f"{level_label(change.from_level)}; this proposal is out of date."
        )
    case.maturity_level, case.level_since = change.to_level, now
    change.status, change.decided_at, change.decided_by = "approved", now, user_id
    session.flush()
    _audit_change(session, actor, "automation.maturity.approved", change)
    return change


def reject_change(
    session: Session, *, change_id: int, admin: str | Actor, now: datetime, reason: str = ""
) -> MaturityChange:
    """An admin turns a proposed promotion down (audited)."""
    actor, user_id = _admin(session, admin)
    change = _change(session, change_id)
    change.status, change.decided_at, change.decided_by = "rejected", now, user_id
    if reason.strip():
        change.evidence = {**(change.evidence or {}), "rejection_reason": reason.strip()}
    session.flush()
    _audit_change(session, actor, "automation.maturity.rejected", change)
    return change


def demote(
    session: Session, *, use_case_id: int, reason: str, now: datetime, actor: Actor | None = None
) -> MaturityChange:
    """Drop a use case one level at once (guardrail breach, harmful rollback); audited."""
    case = get_use_case(session, use_case_id=use_case_id)
    if case.maturity_level <= SHADOW:
        raise Conflict(f"{case.name} is already at L0 shadow")
    change = _apply(session, case, to_level=case.maturity_level - 1, kind="demotion", now=now)
    change.reason = reason
    _withdraw_proposals(session, case_id=case.id, now=now)
    session.flush()
    _audit_change(session, actor or audit.SYSTEM, "automation.maturity.demoted", change)
    return change


def set_level(
    session: Session,
    *,
    use_case_id: int,
    level: int | str,
    admin: str | Actor,
    reason: str,
    now: datetime,
) -> MaturityChange:
    """An admin sets a level directly (e.g. after an incident); audited with the reason."""
    actor, user_id = _admin(session, admin)
    if not reason.strip():
        raise InvalidInput("a level change needs a reason")
    case = get_use_case(session, use_case_id=use_case_id)
    target = parse_level(level)
    if target == case.maturity_level:
        raise Conflict(f"{case.name} is already at {level_label(target)}")
    change = _apply(session, case, to_level=target, kind="manual", now=now)
    change.reason, change.decided_by = reason.strip(), user_id
    _withdraw_proposals(session, case_id=case.id, now=now)
    session.flush()
    _audit_change(session, actor, "automation.maturity.set", change)
    return change


def _apply(
    session: Session, case: UseCase, *, to_level: int, kind: str, now: datetime
) -> MaturityChange:
    change = MaturityChange(
        use_case_id=case.id,
        from_level=case.maturity_level,
        to_level=to_level,
        kind=kind,
        status="approved",
        proposed_at=now,
        decided_at=now,
    )
    case.maturity_level, case.level_since = to_level, now
    session.add(change)
    session.flush()
    return change


def _withdraw_proposals(session: Session, *, case_id: int, now: datetime) -> None:
    """A level change makes open proposals for the old level meaningless."""
    for stale in session.scalars(
        select(MaturityChange).where(
            MaturityChange.use_case_id == case_id, MaturityChange.status == "proposed"
        )
    ):
        stale.status, stale.decided_at = "rejected", now
        stale.evidence = {**(stale.evidence or {}), "withdrawn": "the level changed meanwhile"}


def pending_changes(session: Session) -> list[MaturityChange]:
    """Proposals waiting for an admin, oldest first."""
    return list(
        session.scalars(
            select(MaturityChange)
            .where(MaturityChange.status == "proposed")
            .order_by(MaturityChange.proposed_at, MaturityChange.id)
        )
    )


def _audit_change(session: Session, actor: Actor, action: str, change: MaturityChange) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="use_case",
        object_id=change.use_case_id,
        before={"level": level_label(change.from_level)},
        after={
            "change_id": change.id,
            "level": level_label(change.to_level),
            "kind": change.kind,
            "status": change.status,
            "reason": change.reason,
        },
    )
