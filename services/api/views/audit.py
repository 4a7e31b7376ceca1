"""The audit trail over the API: search it and verify its hash chain."""

from __future__ import annotations

from services import audit
from services.api.blueprint import api, endpoint
from services.api.paging import paginate
from services.api.schemas.audit import AuditEventOut, AuditPage, AuditQuery, AuditVerification
from services.auth import AUDIT_ROLES, Scope
from services.db.models import AuditEvent
from services.web.context import beacon


@api.get("/audit")
@endpoint(scope=Scope.READ, roles=AUDIT_ROLES, resp=AuditPage, tags=["audit"])
def list_audit_events(query: AuditQuery) -> AuditPage:
    """Audit events, newest first, filtered by actor, action prefix, object type and time."""
    statement = audit.search_query(
        actor=query.actor,
        action=query.action,
        object_type=query.object_type,
        since=query.since,
        until=query.until,
    )
    with beacon().db.session() as session:
        rows, total = paginate(session, statement, page=query)
        return AuditPage(
            items=[_event(row) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )


@api.get("/audit/verify")
@endpoint(scope=Scope.READ, roles=AUDIT_ROLES, resp=AuditVerification, tags=["audit"])
def verify_audit_chain() -> AuditVerification:
    """Walk the whole hash chain and report the first event that does not match."""
    with beacon().db.session() as session:
        result = audit.verify(session)
    return AuditVerification(
        ok=result.ok,
        checked=result.checked,
        head_seq=result.head_seq,
        head_hash=result.head_hash,
        broken_seq=result.broken_seq,
        problem=result.problem,
    )


def _event(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        actor_role=event.actor_role,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        before=event.before,
        after=event.after,
        ip=event.ip,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )
