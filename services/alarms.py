"""Alarms from fault management: raised, updated and cleared by a stable fingerprint.

Out-of-order deliveries are normal (retries, HA pairs of senders), so every change is
checked against what is already stored: a raise that falls inside an episode already
cleared is `stale`, a clear older than the open alarm does not close it, and a clear
repeated with the same clear time is `repeated`. Callers count those as duplicates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from services.db.models import Alarm, Element, Source, utcnow
from services.errors import NotFound

SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
STATES = ("active", "cleared")

# What each outcome means for a delivery: a new fact, or one Beacon already had.
NEW_FACTS = frozenset({"created", "updated", "cleared", "unmatched"})
KNOWN_FACTS = frozenset({"unchanged", "stale", "repeated"})


@dataclass(frozen=True)
class AlarmChange:
    """What one raise or clear did, and how many alarms it touched."""

    # created, updated (content changed), unchanged (a repeat), stale (inside an episode
    # already cleared, or a clear older than the open alarm), cleared, repeated (the same
    # clear again) or unmatched (nothing open to clear).
    outcome: str
    alarm: Alarm | None
    count: int = 0


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
        before = _content(active)
        active.severity = normalise_severity(severity)
        active.text = text or active.text
        active.probable_cause = probable_cause or active.probable_cause
        active.specific_problem = specific_problem or active.specific_problem
        active.external_id = external_id or active.external_id
        active.labels = dict(labels or active.labels)
        active.raw = dict(raw or active.raw)
        return AlarmChange("unchanged" if _content(active) == before else "updated", active, 1)
    latest = _latest(session, source_id=source_id, key=key)
    if (
        latest is not None
        and latest.cleared_at is not None
        and latest.raised_at <= raised_at <= latest.cleared_at
    ):
        # A late copy of a notification whose episode is already over must not reopen it.
        return AlarmChange("stale", latest)
    alarm = _new_alarm(
        session,
        source_id=source_id,
        key=key,
        severity=severity,
        raised_at=raised_at,
        element_ref=element_ref,
        text=text,
        probable_cause=probable_cause,
        specific_problem=specific_problem,
        external_id=external_id,
        labels=labels,
        raw=raw,
    )
    return AlarmChange("created", alarm, 1)


def record_cleared(session: Session, *, cleared_at: datetime, **facts: Any) -> Alarm:
    """Store an alarm that was raised and cleared before Beacon saw it (keeps the history)."""
    alarm = _new_alarm(session, **facts)
    alarm.state = "cleared"
    alarm.cleared_at = cleared_at
    session.flush()
    return alarm


def clear_alarm(
    session: Session, *, source_id: int | None, key: str, cleared_at: datetime | None = None
) -> AlarmChange:
    """Clear the open alarm with this fingerprint; a clear for nothing open is reported."""
    active = _active(session, source_id=source_id, key=key)
    if active is not None:
        if cleared_at is not None and cleared_at < active.raised_at:
            # The clear of an earlier episode, delivered late: the current one stays open.
            return AlarmChange("stale", active)
        active.state = "cleared"
        active.cleared_at = cleared_at or utcnow()
        return AlarmChange("cleared", active, 1)
    latest = _latest(session, source_id=source_id, key=key)
    if latest is not None and cleared_at is not None and latest.cleared_at == cleared_at:
        return AlarmChange("repeated", latest)
    return AlarmChange("unmatched", None)


def clear_matching(
    session: Session,
    *,
    source_ids: Sequence[int],
    pattern: Mapping[str, str],
    anchor: str,
    cleared_at: datetime | None = None,
) -> AlarmChange:
    """Clear every open alarm whose labels match `pattern` (TMF642 alarmPattern semantics)."""
    # The `anchor` label must be on the alarm and equal; any other label constrains the
    # match only when the alarm has it, so a clear naming an id the raise lacked still
    # finds it. Alarms raised after `cleared_at` belong to a later episode and stay open.
    if not source_ids or anchor not in pattern:
        return AlarmChange("unmatched", None)
    found = _matching(
        session, source_ids=source_ids, pattern=pattern, anchor=anchor, cleared_at=cleared_at
    )
    open_ = [a for a in found if a.state == "active"]
    closing = [a for a in open_ if cleared_at is None or a.raised_at <= cleared_at]
    for alarm in closing:
        alarm.state = "cleared"
        alarm.cleared_at = cleared_at or utcnow()
    if closing:
        return AlarmChange("cleared", closing[0], len(closing))
    if open_:
        return AlarmChange("stale", open_[0])
    again = [a for a in found if cleared_at is not None and a.cleared_at == cleared_at]
    if again:
        return AlarmChange("repeated", again[0])
    return AlarmChange("unmatched", None)


def list_alarms(
    session: Session,
    *,
    state: str | None = None,
    element_id: int | None = None,
    element: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Alarm], int]:
    """Alarms newest first with the total; `element` is a sender's reference, a DN or a name."""
    query = select(Alarm)
    if state:
        query = query.where(Alarm.state == state)
    if element_id is not None:
        query = query.where(Alarm.element_id == element_id)
    if element:
        linked = select(Element.id).where((Element.dn == element) | (Element.name == element))
        query = query.where((Alarm.element_ref == element) | Alarm.element_id.in_(linked))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit).offset(offset)
    )
    return list(items), int(total)


def get_alarm(session: Session, alarm_id: int) -> Alarm:
    """The alarm with this id; NotFound when there is none."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm with id {alarm_id}")
    return alarm


def source_names(session: Session, source_ids: Sequence[int | None]) -> dict[int, str]:
    """Source id -> name for the given ids."""
    wanted = {i for i in source_ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Source.id, Source.name).where(Source.id.in_(wanted)))
    return {row.id: row.name for row in rows}


def resolve_element(session: Session, element_ref: str | None) -> int | None:
    """The known element an alarm points at: by DN, by name, or by host of `host:port`."""
    if not element_ref:
        return None
    found = _element_by(session, element_ref)
    host, _, port = element_ref.rpartition(":")
    if found is None and host and port.isdigit():
        # Prometheus `instance` labels are host:port; the host is the element's name.
        found = _element_by(session, host.strip("[]"))
    return found


def _new_alarm(
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
) -> Alarm:
    alarm = Alarm(
        source_id=source_id,
        fingerprint=key,
        external_id=external_id,
        element_id=resolve_element(session, element_ref),
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
    return alarm


def _content(alarm: Alarm) -> tuple[Any, ...]:
    # What an operator sees; `raw` is excluded because senders restamp it on every repeat.
    return (
        alarm.severity,
        alarm.text,
        alarm.probable_cause,
        alarm.specific_problem,
        alarm.external_id,
        json.dumps(alarm.labels, sort_keys=True),
    )


def _active(session: Session, *, source_id: int | None, key: str) -> Alarm | None:
    query = select(Alarm).where(Alarm.fingerprint == key, Alarm.state == "active")
    return session.scalar(_in_source(query, source_id).order_by(Alarm.id.desc()).limit(1))


def _latest(session: Session, *, source_id: int | None, key: str) -> Alarm | None:
    query = select(Alarm).where(Alarm.fingerprint == key)
    return session.scalar(_in_source(query, source_id).order_by(Alarm.id.desc()).limit(1))


def _in_source(query: Select[tuple[Alarm]], source_id: int | None) -> Select[tuple[Alarm]]:
    return query if source_id is None else query.where(Alarm.source_id == source_id)


def _matching(
    session: Session,
    *,
    source_ids: Sequence[int],
    pattern: Mapping[str, str],
    anchor: str,
    cleared_at: datetime | None,
) -> list[Alarm]:
    # Open alarms, plus those cleared at exactly this time (to recognise a repeated clear).
    wanted = Alarm.state == "active"
    if cleared_at is not None:
        wanted = wanted | (Alarm.cleared_at == cleared_at)
    query = select(Alarm).where(Alarm.source_id.in_(list(source_ids)), wanted)
    if anchor == "alarmedObject.id":
        query = query.where(Alarm.element_ref == pattern[anchor])
    elif anchor == "externalAlarmId":
        query = query.where(Alarm.external_id == pattern[anchor])
    candidates = session.scalars(query.order_by(Alarm.id.desc()))
    return [
        alarm
        for alarm in candidates
        if (alarm.labels or {}).get(anchor) == pattern[anchor]
        and all((alarm.labels or {}).get(k, v) == v for k, v in pattern.items())
    ]


def _element_by(session: Session, ref: str) -> int | None:
    return session.scalar(
        select(Element.id).where((Element.dn == ref) | (Element.name == ref)).limit(1)
    )
