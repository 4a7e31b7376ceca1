"""Drift: counters appearing or vanishing by vendor and software version (schema drift), and
a KPI's values shifting after a software change (value drift). Both raise data-health
events that detectors use to lower confidence on the affected elements.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import kv
from services.db.models import (
    DataHealthEvent,
    Element,
    Kpi,
    Measurement,
    PeriodCount,
    QuarantinedRecord,
    Source,
    utcnow,
)
from services.ingest.gaps import all_kpi_ids

# A new vendor/version group is learnt for this long before its own changes are drift.
LEARNING = timedelta(hours=1)
# A counter unseen this long while its group keeps reporting has vanished.
VANISHED_AFTER = timedelta(hours=2)
# Medians differing by more than this factor between versions are a value shift.
VALUE_RATIO = 3.0
MIN_SAMPLES = 20
# A counter is part of a group's set once this many of its elements report it in a batch.
MIN_ELEMENTS = 3
# Share of a group's records refused as out of range that signals a unit or scale change.
REFUSAL_SHARE = 0.2


def note_counters(
    session: Session, *, source_id: int, frame: pd.DataFrame, now: datetime | None = None
) -> list[DataHealthEvent]:
    """Track which counters each vendor/software version sends; raise schema-drift events."""
    if frame.empty or "counter" not in frame:
        return []
    now = now or utcnow()
    key = f"drift.counters.{source_id}"
    state: dict[str, Any] = kv.get_value(session, key, {}) or {}
    vendor = _column(frame, "vendor")
    version = _column(frame, "sw_version")
    groups = pd.DataFrame(
        {
            "g": vendor + "|" + version,
            "c": frame["counter"].astype(str),
            "dn": frame["dn"].astype("string").fillna(""),
        }
    )
    events = []
    stamp = now.isoformat()
    for group, part in groups.groupby("g"):
        seen = _established(part)
        known = state.get(group)
        if known is None:
            events += _new_version(session, source_id, group, seen, state, now)
            state[group] = {"first_seen": stamp, "last_seen": stamp, "counters": {}}
            known = state[group]
        elif datetime.fromisoformat(known["first_seen"]) + LEARNING < now:
            appeared = sorted(seen - set(known["counters"]))
            if appeared:
                events += _raise(
                    session,
                    source_id=source_id,
                    group=group,
                    summary=f"{_label(group)}: {len(appeared)} new counter(s) appeared",
                    details={"appeared": appeared[:50]},
                    key=f"appeared:{group}:{','.join(appeared[:50])}",
                    now=now,
                )
        known["last_seen"] = stamp
        for counter in seen:
            known["counters"][counter] = stamp
    kv.set_value(session, key, state)
    return events


def vanished_counters(session: Session, *, now: datetime | None = None) -> list[DataHealthEvent]:
    """Counters a still-reporting vendor/version group stopped sending."""
    now = now or utcnow()
    events = []
    for source_id in session.scalars(select(Source.id)):
        key = f"drift.counters.{source_id}"
        state = kv.get_value(session, key, {}) or {}
        for group, known in state.items():
            group_seen = datetime.fromisoformat(known["last_seen"])
            if now - group_seen > VANISHED_AFTER:
                continue  # the whole group is silent: staleness, not drift
            gone = sorted(
                name
                for name, seen in known["counters"].items()
                if group_seen - datetime.fromisoformat(seen) > VANISHED_AFTER
            )
            if gone:
                events += _raise(
                    session,
                    source_id=source_id,
                    group=group,
                    summary=f"{_label(group)}: {len(gone)} counter(s) no longer reported",
                    details={"vanished": gone[:50]},
                    key=f"vanished:{group}:{','.join(gone[:50])}",
                    now=now,
                )
    return events


def value_drift(session: Session, *, now: datetime | None = None) -> list[DataHealthEvent]:
    """Compare each KPI across software versions of one vendor, and refusal surges by version.

    Versions are compared at the same moments (the latest periods), so daily seasonality
    cancels out; a version whose median differs by more than VALUE_RATIO from the rest
    of its vendor, or whose records are mostly refused as out of range, has drifted.
    """
    now = now or utcnow()
    return _version_shift(session, now) + _refusal_surge(session, now)


def _version_shift(session: Session, now: datetime) -> list[DataHealthEvent]:
    latest = session.scalar(
        select(func.max(PeriodCount.period_end)).where(PeriodCount.period_end <= now)
    )
    if latest is None:
        return []
    rows = session.execute(
        select(Kpi.name, Element.vendor, Element.sw_version, Measurement.value)
        .select_from(Measurement)
        .join(Element, Element.id == Measurement.element_id)
        .join(Kpi, Kpi.id == Measurement.kpi_id)
        .where(
            Measurement.kpi_id.in_(all_kpi_ids(session)),
            Measurement.period_end > latest - timedelta(hours=1),
            Measurement.superseded.is_(False),
            Element.vendor.is_not(None),
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["kpi", "vendor", "sw", "value"])
    if frame.empty:
        return []
    events = []
    stats = frame.groupby(["kpi", "vendor", "sw"])["value"].agg(["median", "size"]).reset_index()
    for (kpi, vendor), part in stats.groupby(["kpi", "vendor"]):
        part = part[part["size"] >= MIN_SAMPLES]
        if len(part) < 2:
            continue
        for row in part.itertuples(index=False):
            others = part[part["sw"] != row.sw]["median"]
            reference = float(np.median(others))
            ratio = _ratio(float(row.median), reference)
            if ratio is None or ratio < VALUE_RATIO:
                continue
            group = f"{vendor}|{row.sw}"
            events += _raise(
                session,
                source_id=None,
                group=group,
                kind="value_drift",
                summary=(
                    f"{kpi} on {_label(group)} is {ratio:.0f}x the other {vendor} versions "
                    f"(median {row.median:.4g} vs {reference:.4g})"
                ),
                details={"kpi": kpi, "median": row.median, "reference": reference},
                key=f"value:{kpi}:{group}",
                now=now,
            )
    return events


def _refusal_surge(session: Session, now: datetime) -> list[DataHealthEvent]:
    since = now - timedelta(hours=6)
    rows = session.execute(
        select(QuarantinedRecord.source_id, QuarantinedRecord.record).where(
            QuarantinedRecord.reason_code == "out_of_range",
            QuarantinedRecord.received_at >= since,
        )
    ).all()
    if not rows:
        return []
    refused = pd.DataFrame(
        [
            {
                "source_id": source_id,
                "kpi": record.get("kpi"),
                "vendor": record.get("vendor") or "",
                "sw": record.get("sw_version") or "",
            }
            for source_id, record in rows
        ]
    )
    counts = refused.groupby(["source_id", "kpi", "vendor", "sw"]).size().reset_index(name="n")
    accepted = _accepted_by_version(session, since)
    events = []
    for row in counts.itertuples(index=False):
        ok = accepted.get((row.kpi, row.vendor, row.sw), 0)
        share = row.n / (row.n + ok)
        if row.n < MIN_SAMPLES or share < REFUSAL_SHARE:
            continue
        group = f"{row.vendor}|{row.sw}"
        events += _raise(
            session,
            source_id=int(row.source_id),
            group=group,
            kind="value_drift",
            summary=(
                f"{row.kpi} on {_label(group)}: {share:.0%} of values outside the valid range "
                "in 6 h — likely a unit or scale change"
            ),
            details={"kpi": row.kpi, "refused": int(row.n), "accepted": int(ok)},
            key=f"refused:{row.kpi}:{group}",
            now=now,
        )
    return events


def _accepted_by_version(session: Session, since: datetime) -> dict[tuple[str, str, str], int]:
    rows = session.execute(
        select(Kpi.name, Element.vendor, Element.sw_version, func.count())
        .select_from(Measurement)
        .join(Element, Element.id == Measurement.element_id)
        .join(Kpi, Kpi.id == Measurement.kpi_id)
        .where(Measurement.kpi_id.in_(all_kpi_ids(session)), Measurement.period_end >= since)
        .group_by(Kpi.name, Element.vendor, Element.sw_version)
    ).all()
    return {(k, v or "", s or ""): int(n) for k, v, s, n in rows}


def _new_version(
    session: Session,
    source_id: int,
    group: str,
    seen: set[str],
    state: dict[str, Any],
    now: datetime,
) -> list[DataHealthEvent]:
    """A software version not seen before: compare its counters with the vendor's others."""
    vendor = group.split("|", 1)[0]
    siblings = [g for g in state if g.split("|", 1)[0] == vendor and g != group]
    if not siblings:
        return []
    reference = max(siblings, key=lambda g: state[g]["last_seen"])
    known = set(state[reference]["counters"])
    appeared, vanished = sorted(seen - known), sorted(known - seen)
    if not appeared and not vanished:
        return []
    return _raise(
        session,
        source_id=source_id,
        group=group,
        summary=(
            f"new version {_label(group)}: +{len(appeared)} / -{len(vanished)} counters "
            f"compared with {_label(reference)}"
        ),
        details={"appeared": appeared[:50], "vanished": vanished[:50], "compared_with": reference},
        key=f"version:{group}",
        now=now,
    )


def _raise(
    session: Session,
    *,
    source_id: int | None,
    group: str,
    summary: str,
    details: dict[str, Any],
    key: str,
    now: datetime,
    kind: str = "schema_drift",
) -> list[DataHealthEvent]:
    """Add an event unless an open one with the same key exists."""
    already = session.scalar(
        select(DataHealthEvent.id).where(
            DataHealthEvent.kind == kind,
            DataHealthEvent.resolved_at.is_(None),
            DataHealthEvent.details["key"].as_string() == key,
        )
    )
    if already:
        return []
    vendor, _, version = group.partition("|")
    event = DataHealthEvent(
        kind=kind,
        severity="warning",
        source_id=source_id,
        vendor=vendor or None,
        sw_version=version or None,
        detected_at=now,
        summary=summary,
        details={**details, "key": key},
    )
    session.add(event)
    return [event]


def _established(part: pd.DataFrame) -> set[str]:
    """Counters a group really reports: sent for several of its elements, not one stray row.

    A single malformed record with an odd counter name is a data defect (quarantined as
    unknown_counter), not a change of the vendor's counter set.
    """
    elements = part["dn"].nunique()
    needed = min(MIN_ELEMENTS, elements)
    per_counter = part.groupby("c")["dn"].nunique()
    return set(per_counter[per_counter >= needed].index)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series("", index=frame.index, dtype="object")
    return frame[name].astype("string").fillna("").astype(str)


def _label(group: str) -> str:
    vendor, _, version = group.partition("|")
    return f"{vendor or 'unknown vendor'} {version or '(no version)'}".strip()


def _ratio(a: float, b: float) -> float | None:
    if a <= 0 or b <= 0:
        return None
    return max(a / b, b / a)
