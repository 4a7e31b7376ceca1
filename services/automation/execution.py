"""Dry-run, execute and roll back recommendations through an actuator; every step audited."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.automation import actuators as act
from services.automation import verification
from services.automation.dryrun import DryRun, dry_run, get_recommendation, pre_state
from services.automation.guardrails import GuardrailBlocked, check_guardrails
from services.automation.levels import AUTO_WITH_GUARDRAILS, level_label
from services.automation.use_cases import guardrail_settings
from services.config import Settings
from services.db import Database
from services.db.models import Execution, Recommendation, UseCase
from services.errors import Conflict, Forbidden, InvalidInput, NotFound

__all__ = [
    "DryRun",
    "GuardrailBlocked",
    "dry_run",
    "execute",
    "execute_and_commit",
    "execution_view",
    "executions_for",
    "rollback",
    "rollback_recommendation",
    "run_automatic",
]

log = logging.getLogger(__name__)

# Execution states: running -> succeeded | failed; succeeded -> verified |
# rollback_recommended | rolled_back; verified / rollback_recommended -> rolled_back.
ROLLBACKABLE = ("succeeded", "verified", "rollback_recommended")
# Any constant: on PostgreSQL executions take turns, so two at once cannot both squeeze
# under a rate limit (SQLite writers are serialised by BEGIN IMMEDIATE already).
_PG_EXECUTE_LOCK = 0x6175746F


def _actor(actor: str | Actor, *, automatic: bool) -> Actor:
    if isinstance(actor, Actor):
        return actor
    return Actor(name=actor, kind="system" if automatic else "user")


def _require_role(actor: Actor, roles: frozenset[str], doing: str) -> None:
    """Role check when the caller passes a signed-in Actor (plain names are trusted callers)."""
    if actor.kind == "kiosk":
        raise Forbidden("Wall screens are read-only.")
    if actor.kind in ("system",) or actor.role is None:
        return
    if actor.role not in roles:
        raise Forbidden(f"The {actor.role} role cannot {doing}.")


def _idempotency_key(session: Session, rec: Recommendation) -> str:
    """Stable per attempt: retries of one attempt reuse it; a new attempt gets the next one."""
    tries = session.scalar(
        select(func.count(Execution.id)).where(Execution.recommendation_id == rec.id)
    )
    stamp = rec.created_at.isoformat() if rec.created_at else ""
    digest = hashlib.sha256(f"{rec.id}|{stamp}".encode()).hexdigest()[:10]
    return f"beacon-rec{rec.id}-try{int(tries or 0) + 1}-{digest}"


def execute(
    session: Session,
    *,
    recommendation_id: int,
    actor: str | Actor,
    now: datetime,
    automatic: bool = False,
    actuator: act.SimulatorActuator | act.WebhookActuator | None = None,
    config: Settings | None = None,
) -> Execution:
    """Run a recommendation if every guardrail allows, else GuardrailBlocked (409) naming it."""
    from services.auth import OPERATE_ROLES

    who = _actor(actor, automatic=automatic)
    _require_role(who, OPERATE_ROLES, "execute automation actions")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EXECUTE_LOCK})
    session.flush()  # the caller's pending changes must survive the refresh below
    rec = get_recommendation(session, recommendation_id)
    session.refresh(rec)  # the state as of holding the lock, not as first loaded
    case = session.get(UseCase, rec.use_case_id)
    settings = guardrail_settings(case)
    report = check_guardrails(session, recommendation=rec, now=now, automatic=automatic)
    if not report.allowed:
        audit.record(
            session,
            actor=who,
            action="automation.execute_blocked",
            object_type="recommendation",
            object_id=rec.id,
            after={"automatic": automatic, **report.as_dict()},
        )
        raise GuardrailBlocked(report)
    try:
        actuator = actuator or act.actuator_for(settings["actuator"], settings=config)
    except act.ActuatorError as exc:
        raise InvalidInput(str(exc)) from exc
    key = _idempotency_key(session, rec)
    request = act.request_for(session, recommendation=rec, key=key, use_case_key=case.key, now=now)
    minutes = int(settings["verification_minutes"])
    before_state = rec.state
    execution = Execution(
        recommendation_id=rec.id,
        actuator=actuator.name,
        dry_run=False,
        idempotency_key=key,
        state="running",
        triggered_by=who.name,
        pre_state=pre_state(
            session, actuator=actuator, request=request, rec=rec, minutes=minutes, now=now
        ),
        rollback={"plan": dict(rec.rollback_plan or {}), "action": request.action},
        guardrails={
            "level": case.maturity_level,
            "automatic": automatic,
            "action": request.action,
            "parameters": dict(request.parameters),
            **report.as_dict(),
        },
        started_at=now,
    )
    session.add(execution)
    rec.state = "executing"
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"recommendation #{rec.id} is already being executed") from exc
    _audit(session, who, "automation.execute_started", execution, before={"state": before_state})
    try:
        post = actuator.apply(session, request=request)
    except act.ActuatorError as exc:
        execution.state, execution.error, execution.finished_at = "failed", str(exc), now
        rec.state = before_state  # nothing changed in the network: it can be tried again
        session.flush()
        _audit(session, who, "automation.execute_failed", execution, extra={"error": str(exc)})
        return execution
    execution.state, execution.post_state, execution.finished_at = "succeeded", post, now
    execution.verify_after = now + timedelta(minutes=minutes)
    rec.state = "executed"
    session.flush()
    _audit(session, who, "automation.executed", execution, extra={"post_state": post})
    _check_breach(session, execution=execution, case=case, settings=settings, now=now)
    return execution


def _check_breach(
    session: Session,
    *,
    execution: Execution,
    case: UseCase,
    settings: dict[str, Any],
    now: datetime,
) -> None:
    """An action that touched more cells than allowed is a guardrail breach: demote."""
    from services.automation.maturity import demote

    touched = int((execution.post_state or {}).get("cells_touched", 0) or 0)
    cap = int(settings["max_blast_radius_cells"])
    if touched <= cap:
        return
    reason = f"guardrail breach: execution #{execution.id} touched {touched} cells (cap {cap})"
    execution.verification = {**(execution.verification or {}), "breach": reason}
    session.flush()
    if case.maturity_level > 0:
        demote(session, use_case_id=case.id, reason=reason, now=now)


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    execution: Execution,
    *,
    before: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="execution",
        object_id=execution.id,
        before=before,
        after={
            "recommendation_id": execution.recommendation_id,
            "state": execution.state,
            "actuator": execution.actuator,
            "idempotency_key": execution.idempotency_key,
            **(extra or {}),
        },
    )


def execute_and_commit(
    db: Database,
    *,
    recommendation_id: int,
    actor: str | Actor,
    now: datetime,
    automatic: bool = False,
) -> dict[str, Any]:
    """execute() in its own unit of work; a blocked attempt's audit is committed, then re-raised.

    For API views and jobs: raising inside a write session would roll the audit event of
    the refusal back together with everything else.
    """
    blocked: GuardrailBlocked | None = None
    with db.session(write=True) as session:
        try:
            run = execute(
                session,
                recommendation_id=recommendation_id,
                actor=actor,
                now=now,
                automatic=automatic,
            )
            return execution_view(run)
        except GuardrailBlocked as exc:
            blocked = exc
    raise blocked


def rollback(
    session: Session,
    *,
    execution_id: int,
    actor: str | Actor,
    now: datetime,
    reason: str,
    actuator: act.SimulatorActuator | act.WebhookActuator | None = None,
    config: Settings | None = None,
) -> Execution:
    """Restore the pre-state of an execution (engineers, or Beacon after a bad verification)."""
    from services.auth import ENGINEER_ROLES

    who = _actor(actor, automatic=actor == "system")
    _require_role(who, ENGINEER_ROLES, "roll back automation actions")
    if not (reason or "").strip():
        raise InvalidInput("a rollback needs a reason")
    execution = session.get(Execution, execution_id)
    if execution is None:
        raise NotFound(f"execution #{execution_id} does not exist")
    if execution.state not in ROLLBACKABLE:
        raise Conflict(
            f"execution #{execution.id} is {execution.state.replace('_', ' ')}; "
            "there is nothing to roll back"
        )
    rec = session.get(Recommendation, execution.recommendation_id)
    case = session.get(UseCase, rec.use_case_id)
    try:
        actuator = actuator or act.actuator_for(execution.actuator, settings=config)
        request = act.request_for(
            session,
            recommendation=rec,
            key=execution.idempotency_key,
            use_case_key=case.key,
            now=now,
        )
        done = actuator.revert(session, request=request, execution=execution)
    except act.ActuatorError as exc:
        _audit(session, who, "automation.rollback_failed", execution, extra={"error": str(exc)})
        raise Conflict(f"rollback of execution #{execution.id} failed: {exc}") from exc
    harmful = (execution.verification or {}).get("outcome") == "worse"
    before = execution.state
    execution.state, execution.rolled_back_at, execution.rolled_back_by = (
        "rolled_back",
        now,
        who.name,
    )
    execution.rollback = {
        **(execution.rollback or {}),
        "reason": reason.strip(),
        "result": done,
        "harmful": harmful,
    }
    rec.state = "rolled_back"
    session.flush()
    _audit(
        session,
        who,
        "automation.rolled_back",
        execution,
        before={"state": before},
        extra={"reason": reason.strip(), "harmful": harmful},
    )
    if (execution.guardrails or {}).get("automatic"):
        verification.open_rolled_back_case(
            session, execution=execution, reason=reason, actor=who, now=now
        )
    level = int((execution.guardrails or {}).get("level", case.maturity_level))
    if harmful and level >= AUTO_WITH_GUARDRAILS and case.maturity_level >= AUTO_WITH_GUARDRAILS:
        from services.automation.maturity import demote

        why = f"harmful rollback of execution #{execution.id} at {level_label(level)}: {reason}"
        demote(session, use_case_id=case.id, reason=why, now=now)
    return execution


def rollback_recommendation(
    session: Session, *, recommendation_id: int, actor: str | Actor, now: datetime, reason: str
) -> Execution:
    """Roll back the latest live execution of a recommendation (REST .../rollback)."""
    get_recommendation(session, recommendation_id)
    execution = session.scalars(
        select(Execution)
        .where(Execution.recommendation_id == recommendation_id, Execution.state.in_(ROLLBACKABLE))
        .order_by(Execution.id.desc())
    ).first()
    if execution is None:
        raise Conflict(f"recommendation #{recommendation_id} has no execution to roll back")
    return rollback(session, execution_id=execution.id, actor=actor, now=now, reason=reason)


def executions_for(session: Session, *, recommendation_id: int) -> list[Execution]:
    """Every execution of a recommendation, oldest first."""
    return list(
        session.scalars(
            select(Execution)
            .where(Execution.recommendation_id == recommendation_id)
            .order_by(Execution.id)
        )
    )


def run_automatic(db: Database, *, now: datetime) -> list[int]:
    """Job: execute open L3+ recommendations; returns the ids run (succeeded or failed)."""
    with db.session() as session:
        ids = list(
            session.scalars(
                select(Recommendation.id)
                .join(UseCase, UseCase.id == Recommendation.use_case_id)
                .where(
                    Recommendation.state == "open",
                    UseCase.maturity_level >= AUTO_WITH_GUARDRAILS,
                    UseCase.enabled.is_(True),
                )
                .order_by(Recommendation.created_at, Recommendation.id)
            )
        )
    done = []
    for rec_id in ids:
        try:
            execute_and_commit(
                db, recommendation_id=rec_id, actor="system", now=now, automatic=True
            )
            done.append(rec_id)
        except GuardrailBlocked:
            pass  # the refusal is audited and committed; the recommendation waits for a human
        except Exception:  # one bad item never stops the loop
            log.exception("automatic execution of recommendation %s failed", rec_id)
    return done


def execution_view(execution: Execution) -> dict[str, Any]:
    """The REST shape of an execution: state, pre/post state, verification and rollback."""

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "id": execution.id,
        "recommendation_id": execution.recommendation_id,
        "actuator": execution.actuator,
        "state": execution.state,
        "idempotency_key": execution.idempotency_key,
        "triggered_by": execution.triggered_by,
        "automatic": bool((execution.guardrails or {}).get("automatic")),
        "pre_state": execution.pre_state or {},
        "post_state": execution.post_state or {},
        "guardrails": execution.guardrails or {},
        "verification": execution.verification or {},
        "rollback": execution.rollback or {},
        "rollback_recommended": execution.state == "rollback_recommended",
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
        "verify_after": iso(execution.verify_after),
        "rolled_back_at": iso(execution.rolled_back_at),
        "rolled_back_by": execution.rolled_back_by,
        "error": execution.error,
    }
