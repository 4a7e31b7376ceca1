"""Alarms from fault management: raised, updated and cleared by a stable fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.models import Alarm, Element, utcnow

SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class AlarmChange:
    """What one raise or clear did: `created`, `updated`, `cleared` or `unmatched`."""

    outcome: str
    alarm: Alarm | None


def fingerprint(labels: Mapping[str, Any]) -> str:
    """SHA-256 of the identifying labels, independent of their order."""
    text = json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def normalise_severity(value: str | None) -> str:
    """Map the many severity spellings (X.733, Alertmanager, VES) onto Beacon's five."""
    text = (value or "").strip().lower()
    aliases = {
        "crit": "critical",
        "page": "critical",
        "error": "major",
        "err": "major",
        "high": "major",
        "medium": "minor",
        "low": "warning",
        "warn": "warning",
        "info": "warning",
        "normal": "warning",
    }
    text = aliases.get(text, text)
    return text if text in SEVERITY_RANK else "indeterminate"


def raise_alarm(
    session: Session,
    *,
    source_id: int | None,
    key: str,
    severity: str,
    raised_at: datetime,
    element_ref: str | None = None,
    text: str = "",
    probable_cause: str | None = None,
    specific_problem: str | None = None,
    external_id: str | None = None,
    labels: Mapping[str, Any] | None = None,
    raw: Mapping[str, Any] | None = None,
) -> AlarmChange:
    """Open an alarm, or update the open one with the same fingerprint (a repeat is no copy)."""
    active = _active(session, source_id=source_id, key=key)
    if active is not None:
        active.severity = normalise_severity(severity)
        active.text = text or active.text
        active.labels = dict(labels or active.labels)
        active.raw = dict(raw or active.raw)
        return AlarmChange("updated", active)
    alarm = Alarm(
        source_id=source_id,
        fingerprint=key,
        external_id=external_id,
        element_id=_element_id(session, element_ref),
        element_ref=element_ref,
        severity=normalise_severity(severity),
        probable_cause=probable_cause,
        specific_problem=specific_problem,
        text=text,
        state="active",
        raised_at=raised_at,
        labels=dict(labels or {}),
        raw=dict(raw or {}),
    )
    session.add(alarm)
    session.flush()
    return AlarmChange("created", alarm)


def clear_alarm(
    session: Session, *, source_id: int | None, key: str, cleared_at: datetime | None = None
) -> AlarmChange:
    """Clear the open alarm with this fingerprint; a clear for nothing open is reported."""
    active = _active(session, source_id=source_id, key=key)
    if active is None:
        return AlarmChange("unmatched", None)
    active.state = "cleared"
    active.cleared_at = cleared_at or utcnow()
    return AlarmChange("cleared", active)


def list_alarms(
    session: Session,
    *,
    state: str | None = None,
    element_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Alarm], int]:
    """Alarms newest first, with the total matching count."""
    query = select(Alarm)
    if state:
        query = query.where(Alarm.state == state)
    if element_id is not None:
        query = query.where(Alarm.element_id == element_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit).offset(offset)
    )
    return list(items), int(total)


def _active(session: Session, *, source_id: int | None, key: str) -> Alarm | None:
    query = select(Alarm).where(Alarm.fingerprint == key, Alarm.state == "active")
    if source_id is not None:
        query = query.where(Alarm.source_id == source_id)
    return session.scalar(query.order_by(Alarm.id.desc()).limit(1))


def _element_id(session: Session, element_ref: str | None) -> int | None:
    if not element_ref:
        return None
    return session.scalar(
        select(Element.id)
        .where((Element.dn == element_ref) | (Element.name == element_ref))
        .limit(1)
    )
