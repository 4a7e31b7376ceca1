"""Verification window: compare KPIs after an action with its pre-state; roll back if worse."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.automation.levels import AUTO_WITH_GUARDRAILS
from services.automation.use_cases import guardrail_settings
from services.db import Database
from services.db.models import Execution, Kpi, Measurement, Recommendation, UseCase

log = logging.getLogger(__name__)

# KPIs that tell whether an action helped, per action (direction comes from the KPI catalogue).
WATCH: dict[str, tuple[str, ...]] = {
    "lb_param_change": ("prb_util_dl", "erab_drop_rate"),
    "cell_restart": ("dl_throughput_mbps",),
    "traffic_reroute": ("latency_ms", "packet_loss_pct"),
    "carrier_add_ticket": (),
}
# Small KPI values (0.1 % drops) swing by large ratios; relative change is taken against
# at least this much so noise around zero never reads as "worse".
MIN_BASE = 1.0


def kpi_snapshot(
    session: Session, *, element_id: int | None, action: str, start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    """Mean of each watched KPI of the element over periods ending in (start, end]."""
    names = WATCH.get(action, ())
    if element_id is None or not names:
        return {}
    rows = session.execute(
        select(Kpi.name, Kpi.higher_is_worse, func.avg(Measurement.value), func.count())
        .join(Measurement, Measurement.kpi_id == Kpi.id)
        .where(
            Kpi.name.in_(names),
            Measurement.element_id == element_id,
            Measurement.superseded.is_(False),
            Measurement.period_end > start,
            Measurement.period_end <= end,
        )
        .group_by(Kpi.name, Kpi.higher_is_worse)
    ).all()
    return {
        name: {"mean": float(mean), "n": int(n), "higher_is_worse": bool(worse)}
        for name, worse, mean, n in rows
    }


def compare(
    pre: dict[str, dict[str, Any]], post: dict[str, dict[str, Any]], *, tolerance_pct: float
) -> tuple[str, dict[str, Any]]:
    """("worse" | "better" | "unchanged" | "no_data", per-KPI changes) of post against pre."""
    changes: dict[str, Any] = {}
    for name, before in pre.items():
        after = post.get(name)
        if not after or not before.get("n") or not after.get("n"):
            continue
        delta = after["mean"] - before["mean"]
        harm = delta if before["higher_is_worse"] else -delta
        relative = 100.0 * harm / max(abs(before["mean"]), MIN_BASE)
        verdict = "worse" if relative > tolerance_pct else "unchanged"
        if relative < -tolerance_pct:
            verdict = "better"
        changes[name] = {
            "before": round(before["mean"], 4),
            "after": round(after["mean"], 4),
            "worse_by_pct": round(relative, 2),
            "verdict": verdict,
        }
    if not changes:
        return "no_data", changes
    verdicts = {c["verdict"] for c in changes.values()}
    for outcome in ("worse", "better"):
        if outcome in verdicts:
            return outcome, changes
    return "unchanged", changes


def verify_execution(session: Session, *, execution_id: int, now: datetime) -> Execution:
    """Judge one execution whose window has passed; L3+ rolls back if worse, L2 recommends it."""
    from services.automation.execution import rollback

    execution = session.get(Execution, execution_id)
    if execution is None or execution.state != "succeeded":
        return execution
    rec = session.get(Recommendation, execution.recommendation_id)
    case = session.get(UseCase, rec.use_case_id)
    settings = guardrail_settings(case)
    action = (execution.guardrails or {}).get("action", rec.action)
    if not WATCH.get(action):
        outcome, changes = "not_applicable", {}
    else:
        post = kpi_snapshot(
            session,
            element_id=rec.element_id,
            action=action,
            start=execution.finished_at or execution.started_at,
            end=execution.verify_after or now,
        )
        outcome, changes = compare(
            (execution.pre_state or {}).get("kpis", {}),
            post,
            tolerance_pct=float(settings["verification_tolerance_pct"]),
        )
    level = int((execution.guardrails or {}).get("level", case.maturity_level))
    execution.verification = {
        **(execution.verification or {}),
        "outcome": outcome,
        "kpis": changes,
        "verified_at": now.isoformat(),
        "rollback_recommended": outcome == "worse" and level < AUTO_WITH_GUARDRAILS,
    }
    execution.state = "verified"
    if outcome == "worse":
        execution.state = "rollback_recommended"
    session.flush()
    audit.record(
        session,
        actor=audit.SYSTEM,
        action=f"automation.verification.{outcome}",
        object_type="execution",
        object_id=execution.id,
        after={"recommendation_id": rec.id, "state": execution.state, "kpis": changes},
    )
    if outcome == "worse" and level >= AUTO_WITH_GUARDRAILS:
        worse = ", ".join(k for k, c in changes.items() if c["verdict"] == "worse")
        rollback(
            session,
            execution_id=execution.id,
            actor="system",
            now=now,
            reason=f"automatic rollback: {worse} worse after the action than before",
        )
    return execution


def verify_due(db: Database, *, now: datetime) -> list[int]:
    """Job: verify every execution whose window has passed; returns the ids judged."""
    with db.session() as session:
        ids = list(
            session.scalars(
                select(Execution.id)
                .where(
                    Execution.state == "succeeded",
                    Execution.dry_run.is_(False),
                    Execution.verify_after <= now,
                )
                .order_by(Execution.verify_after, Execution.id)
            )
        )
    done = []
    for execution_id in ids:
        try:
            with db.session(write=True) as session:
                verify_execution(session, execution_id=execution_id, now=now)
            done.append(execution_id)
        except Exception:  # one bad item never stops the loop
            log.exception("verification of execution %s failed", execution_id)
    return done


def open_rolled_back_case(
    session: Session, *, execution: Execution, reason: str, actor: Actor, now: datetime
) -> int | None:
    """Put a rolled-back automatic action in the disagreement queue (decisions service)."""
    try:
        from services.decisions.disagreements import open_case
    except ImportError:
        log.warning(
            "disagreement queue unavailable; rolled-back execution %s not queued", execution.id
        )
        execution.verification = {**(execution.verification or {}), "queued": False}
        return None
    rec = session.get(Recommendation, execution.recommendation_id)
    case = open_case(
        session,
        kind="rolled_back",
        now=now,
        actor=actor,
        recommendation_id=execution.recommendation_id,
        execution_id=execution.id,
        use_case_id=rec.use_case_id if rec is not None else None,
        # ai_side left to the queue: it describes the recommendation like every other case.
        human_side={
            "actor": actor.name,
            "reason": reason,
            "at": now.isoformat(),
            "verification": (execution.verification or {}).get("kpis", {}),
        },
    )
    case_id = getattr(case, "id", case)
    execution.verification = {**(execution.verification or {}), "disagreement_id": case_id}
    session.flush()
    return case_id
