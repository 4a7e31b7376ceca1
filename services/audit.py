"""Append-only audit trail, chained by hash so that editing or removing a row is detectable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from services.db.models import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Any constant: the advisory lock serialises appends across PostgreSQL connections.
_PG_AUDIT_LOCK = 0x61756474


@dataclass(frozen=True)
class Actor:
    """Who did something: a user, a kiosk screen, an API token or Beacon itself."""

    name: str
    role: str | None = None
    kind: str = "user"  # user, kiosk, api, system
    ip: str | None = None


SYSTEM = Actor(name="system", role=None, kind="system")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking the chain: how many rows, and the first broken one if any."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction, so it commits with the change it records."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS_HASH)
    event = AuditEvent(
        seq=seq,
        at=utcnow(),
        actor=actor.name,
        actor_role=actor.role,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=_canonical_doc(before),
        after=_canonical_doc(after),
        ip=actor.ip,
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the event's content and its predecessor's hash."""
    payload = {
        "seq": event.seq,
        "at": _iso(event.at),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "ip": event.ip,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(_dumps(payload).encode()).hexdigest()


def verify(session: Session, *, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the chain in order; name the first event whose content or link does not match.

    `anchor` is a (seq, hash) pair recorded elsewhere earlier (see `head`): it also
    catches removal of the newest rows, which no chain can detect from inside.
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for event in _in_order(session):
        if event.seq != expected_seq:
            return _broken(checked, expected_seq - 1, prev_hash, expected_seq, "missing event")
        if event.prev_hash != prev_hash:
            return _broken(checked, event.seq - 1, prev_hash, event.seq, "chain link broken")
        if event_hash(event) != event.hash:
            return _broken(checked, event.seq - 1, prev_hash, event.seq, "content altered")
        prev_hash, expected_seq, checked = event.hash, event.seq + 1, checked + 1
    head_seq = expected_seq - 1
    if anchor is not None:
        anchor_seq, anchor_hash = anchor
        if anchor_seq > head_seq:
            return _broken(checked, head_seq, prev_hash, head_seq + 1, "events after head removed")
        stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == anchor_seq))
        if stored != anchor_hash:
            return _broken(checked, head_seq, prev_hash, anchor_seq, "anchor does not match")
    return VerifyResult(ok=True, checked=checked, head_seq=head_seq, head_hash=prev_hash)


def head(session: Session) -> tuple[int, str]:
    """The newest (seq, hash): record it outside the database to detect truncation later."""
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS_HASH)


def search_query(
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text_filter: str | None = None,
) -> Select[tuple[AuditEvent]]:
    """A filtered, newest-first query over the trail for the audit page and API."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    if text_filter:
        pattern = f"%{text_filter.lower()}%"
        query = query.where(
            func.lower(AuditEvent.action).like(pattern)
            | func.lower(AuditEvent.actor).like(pattern)
            | func.lower(func.coalesce(AuditEvent.object_id, "")).like(pattern)
        )
    return query


def search(session: Session, *, limit: int = 500, **filters: Any) -> list[AuditEvent]:
    """Newest-first events matching the filters of `search_query`."""
    return list(session.scalars(search_query(**filters).limit(limit)))


def distinct_values(session: Session) -> dict[str, list[str]]:
    """Actors, action families and object types present, for filter drop-downs."""
    actors = session.scalars(select(AuditEvent.actor).distinct().order_by(AuditEvent.actor))
    actions = session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    types = session.scalars(
        select(AuditEvent.object_type)
        .where(AuditEvent.object_type.is_not(None))
        .distinct()
        .order_by(AuditEvent.object_type)
    )
    return {"actors": list(actors), "actions": list(actions), "object_types": list(types)}


def _in_order(session: Session) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000)
    yield from session.scalars(query)


def _broken(checked: int, head_seq: int, head_hash: str, seq: int, problem: str) -> VerifyResult:
    return VerifyResult(
        ok=False,
        checked=checked,
        head_seq=head_seq,
        head_hash=head_hash,
        broken_seq=seq,
        problem=problem,
    )


def _canonical_doc(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    # Store exactly what is hashed: a JSON round trip fixes key types and value forms,
    # so what the database gives back hashes the same on SQLite and PostgreSQL.
    return None if doc is None else json.loads(_dumps(doc))


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
