"""Automation use cases and their maturity: levels, criteria, metrics, admin approvals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.api.blueprint import api, endpoint
from services.api.schemas.trust import (
    LevelIn,
    MaturityChangeList,
    MaturityChangeOut,
    MaturityChangePath,
    MaturityRejectIn,
    UseCaseList,
    UseCaseOut,
    UseCasePath,
)
from services.api.security import caller
from services.auth import ADMIN_ROLES, Scope
from services.automation.levels import level_label
from services.automation.maturity import (
    approve_change,
    criteria_checks,
    pending_changes,
    reject_change,
    set_level,
)
from services.automation.use_cases import get_use_case, list_use_cases, use_case_view
from services.db.models import MaturityChange, UseCase, utcnow
from services.web.context import beacon

TAGS = ["automation"]


@api.get("/use-cases")
@endpoint(scope=Scope.READ, resp=UseCaseList, tags=TAGS)
def get_use_cases() -> UseCaseList:
    """Every automation use case: level L0-L4, owner, promotion criteria and current metrics."""
    now = utcnow()
    with beacon().db.session() as session:
        items = [_use_case(session, case, now) for case in list_use_cases(session)]
    return UseCaseList(items=items)


@api.get("/use-cases/<int:use_case_id>")
@endpoint(scope=Scope.READ, resp=UseCaseOut, errors=(404,), tags=TAGS)
def get_use_case_detail(path: UseCasePath) -> UseCaseOut:
    """One use case with its criteria checked against its current metrics."""
    now = utcnow()
    with beacon().db.session() as session:
        case = get_use_case(session, use_case_id=path.use_case_id)
        return _use_case(session, case, now)


@api.post("/use-cases/<int:use_case_id>/level")
@endpoint(
    scope=Scope.ADMIN,
    roles=ADMIN_ROLES,
    resp=MaturityChangeOut,
    errors=(404, 409),
    tags=TAGS,
)
def post_level(path: UseCasePath, json: LevelIn) -> MaturityChangeOut:
    """Set a use case's level directly (admins; the reason is audited)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        change = set_level(
            session,
            use_case_id=path.use_case_id,
            level=json.level,
            admin=actor,
            reason=json.reason,
            now=utcnow(),
        )
        return _change(session, change)


@api.get("/maturity-changes")
@endpoint(scope=Scope.READ, resp=MaturityChangeList, tags=TAGS)
def get_maturity_changes() -> MaturityChangeList:
    """Promotions the system proposed because every criterion holds, waiting for an admin."""
    with beacon().db.session() as session:
        return MaturityChangeList(items=[_change(session, c) for c in pending_changes(session)])


@api.post("/maturity-changes/<int:change_id>/approve")
@endpoint(
    scope=Scope.ADMIN,
    roles=ADMIN_ROLES,
    resp=MaturityChangeOut,
    errors=(404, 409),
    tags=TAGS,
)
def approve_maturity_change(path: MaturityChangePath) -> MaturityChangeOut:
    """An admin approves a proposed promotion: the use case moves to the new level (audited)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        change = approve_change(session, change_id=path.change_id, admin=actor, now=utcnow())
        return _change(session, change)


@api.post("/maturity-changes/<int:change_id>/reject")
@endpoint(
    scope=Scope.ADMIN,
    roles=ADMIN_ROLES,
    resp=MaturityChangeOut,
    errors=(404, 409),
    tags=TAGS,
)
def reject_maturity_change(path: MaturityChangePath, json: MaturityRejectIn) -> MaturityChangeOut:
    """An admin turns a proposed promotion down, optionally saying why (audited)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        change = reject_change(
            session, change_id=path.change_id, admin=actor, now=utcnow(), reason=json.reason
        )
        return _change(session, change)


def _use_case(session: Session, case: UseCase, now: datetime) -> UseCaseOut:
    view: dict[str, Any] = use_case_view(session, case=case, now=now)
    return UseCaseOut.model_validate(
        {**view, "criteria_checks": criteria_checks(case, view["metrics"])}
    )


def _change(session: Session, change: MaturityChange) -> MaturityChangeOut:
    case = session.get(UseCase, change.use_case_id)
    return MaturityChangeOut(
        id=change.id,
        use_case_id=change.use_case_id,
        use_case=None if case is None else case.name,
        from_level=level_label(change.from_level),  # type: ignore[arg-type]
        to_level=level_label(change.to_level),  # type: ignore[arg-type]
        kind=change.kind,
        status=change.status,
        reason=change.reason or "",
        evidence=dict(change.evidence or {}),
        proposed_at=change.proposed_at,
        decided_at=change.decided_at,
    )
