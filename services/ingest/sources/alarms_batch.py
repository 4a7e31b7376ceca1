"""Apply a parsed alarm payload: raw batch first, then raise, clear or quarantine each item.

Every item lands in one bucket, so received = accepted + duplicates + quarantined:
accepted are new facts (a new alarm, a changed one, a clear, or a clear with nothing open),
duplicates are facts Beacon already had (a repeat, a late copy of an ended episode, the
same clear again), quarantined are refusals kept with their reason.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from services import alarms
from services.db import Database
from services.db.models import IngestBatch, QuarantinedRecord, Source, utcnow
from services.errors import InvalidInput, NotFound
from services.ingest.pipeline import ensure_source, read_raw
from services.ingest.reasons import sentence
from services.ingest.sources.alarms_alertmanager import parse_alertmanager
from services.ingest.sources.alarms_common import AlarmEvent, ParsedAlarms
from services.ingest.sources.alarms_tmf642 import parse_tmf642

# Alarm feeds are event-driven: silence is normal, so only a day without any delivery
# (Alertmanager repeats open alerts every 4 h by default) marks the source stale.
EVENT_DRIVEN = {"expected_cadence_s": 4 * 3600, "allowed_lateness_s": 86400, "stale_after_s": 86400}
PARSERS: dict[str, Callable[[bytes], ParsedAlarms]] = {
    "alertmanager-json": parse_alertmanager,
    "tmf642-json": parse_tmf642,
}
# Refusals echoed in an API answer; all of them are in quarantine.
MAX_PROBLEMS = 20
_BUCKET = {
    "created": ("accepted", "raised"),
    "updated": ("accepted", "updated"),
    "cleared": ("accepted", "cleared"),
    "unmatched": ("accepted", "unmatched_clears"),
    "unchanged": ("duplicates", None),
    "stale": ("duplicates", None),
    "repeated": ("duplicates", None),
}


@dataclass
class AlarmBatchSummary:
    """What one alarm delivery did, item by item and alarm by alarm."""

    batch_id: int
    source: str
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    raised: int = 0
    updated: int = 0
    cleared: int = 0
    unmatched_clears: int = 0
    truncated_alerts: int = 0
    refused_whole: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data, for an API answer or a log line."""
        return asdict(self)


def ingest_alarms(
    db: Database, *, parsed: ParsedAlarms, raw: bytes, received_at: datetime | None = None
) -> AlarmBatchSummary:
    """Store the body raw, then apply its items in one transaction."""
    received_at = received_at or utcnow()
    batch_id = _store_raw(db, parsed=parsed, raw=raw, received_at=received_at)
    return _run(db, batch_id=batch_id, parsed=parsed, received_at=received_at)


def replay_alarm_batch(db: Database, *, batch_id: int) -> AlarmBatchSummary:
    """Parse a stored alarm batch again and apply it; repeating it changes nothing twice."""
    with db.session(write=True) as session:
        batch = session.get(IngestBatch, batch_id)
        if batch is None:
            raise NotFound(f"no ingest batch {batch_id}")
        parser = PARSERS.get(batch.raw_format)
        if parser is None:
            raise InvalidInput(f"batch {batch_id} is not an alarm batch ({batch.raw_format})")
        parsed = parser(read_raw(batch))
        # The source the batch was stored under stays its source, whatever the parse says.
        parsed.source = session.get_one(Source, batch.source_id).name
        session.execute(delete(QuarantinedRecord).where(QuarantinedRecord.batch_id == batch_id))
        batch.status, batch.error, batch.received = "processing", None, parsed.received
        received_at = batch.received_at
    return _run(db, batch_id=batch_id, parsed=parsed, received_at=received_at)


def _run(
    db: Database, *, batch_id: int, parsed: ParsedAlarms, received_at: datetime
) -> AlarmBatchSummary:
    try:
        with db.session(write=True) as session:
            return _apply(session, batch_id=batch_id, parsed=parsed, received_at=received_at)
    except Exception as exc:
        # The raw batch stays, marked failed, so it can be replayed once the cause is fixed.
        with db.session(write=True) as session:
            session.execute(
                update(IngestBatch)
                .where(IngestBatch.id == batch_id)
                .values(
                    status="failed",
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                    finished_at=utcnow(),
                )
            )
        raise


def _store_raw(db: Database, *, parsed: ParsedAlarms, raw: bytes, received_at: datetime) -> int:
    with db.session(write=True) as session:
        source = ensure_source(
            session,
            name=parsed.source,
            kind=parsed.kind,
            description=f"{parsed.kind} alarms",
            **EVENT_DRIVEN,
        )
        batch = IngestBatch(
            source_id=source.id,
            received_at=received_at,
            status="processing",
            raw_format=f"{parsed.kind}-json",
            checksum=hashlib.sha256(raw).hexdigest(),
            raw=gzip.compress(raw, compresslevel=5),
            raw_size=len(raw),
            received=parsed.received,
        )
        session.add(batch)
        session.flush()
        return batch.id


def _apply(
    session: Session, *, batch_id: int, parsed: ParsedAlarms, received_at: datetime
) -> AlarmBatchSummary:
    # Deliveries of one source are applied one at a time: two copies of a notification
    # (an HA pair of senders) must not both open the same alarm.
    source = session.scalars(
        select(Source).where(Source.name == parsed.source).with_for_update()
    ).one()
    summary = AlarmBatchSummary(
        batch_id=batch_id,
        source=source.name,
        received=parsed.received,
        truncated_alerts=int(parsed.meta.get("truncated_alerts", 0)),
        refused_whole=parsed.refused_whole,
    )
    times = []
    for event in parsed.events:
        change = _apply_event(session, event, source=source, kind=parsed.kind)
        bucket, counter = _BUCKET[change.outcome]
        setattr(summary, bucket, getattr(summary, bucket) + 1)
        if counter is not None:
            setattr(summary, counter, getattr(summary, counter) + max(change.count, 1))
        times.append(event.cleared_at or (event.facts.raised_at if event.facts else None))
    _quarantine(session, parsed, batch_id=batch_id, source_id=source.id, at=received_at)
    summary.quarantined = len(parsed.rejected)
    summary.reasons = dict(Counter(r.reason_code for r in parsed.rejected))
    summary.problems = [
        {
            "index": r.record.get("index"),
            "reason_code": r.reason_code,
            "field": r.field,
            "reason": r.reason or sentence(r.reason_code),
        }
        for r in parsed.rejected[:MAX_PROBLEMS]
    ]
    _close(session, summary, source=source, times=times, received_at=received_at)
    return summary


def _apply_event(
    session: Session, event: AlarmEvent, *, source: Source, kind: str
) -> alarms.AlarmChange:
    facts = event.facts
    if event.pattern is not None and event.anchor is not None:
        return alarms.clear_matching(
            session,
            source_ids=_sources_of(session, kind=kind, pattern=event.pattern),
            pattern=event.pattern,
            anchor=event.anchor,
            cleared_at=event.cleared_at,
        )
    assert facts is not None  # raises and fingerprint clears always describe the alarm
    if event.action == "raise":
        return alarms.raise_alarm(session, source_id=source.id, **_facts(facts))
    change = alarms.clear_alarm(
        session, source_id=source.id, key=facts.key, cleared_at=event.cleared_at
    )
    if change.outcome == "unmatched" and event.cleared_at and event.cleared_at >= facts.raised_at:
        # Keep the episode Beacon missed, so a late copy of its raise is known as stale.
        alarms.record_cleared(
            session, source_id=source.id, cleared_at=event.cleared_at, **_facts(facts)
        )
    return change


def _facts(facts: Any) -> dict[str, Any]:
    return {
        "key": facts.key,
        "severity": facts.severity,
        "raised_at": facts.raised_at,
        "element_ref": facts.element_ref,
        "text": facts.text,
        "probable_cause": facts.probable_cause,
        "specific_problem": facts.specific_problem,
        "external_id": facts.external_id,
        "labels": facts.labels,
        "raw": facts.raw,
    }


def _sources_of(session: Session, *, kind: str, pattern: dict[str, str]) -> list[int]:
    """Sources a pattern clear may reach: every source of the kind, or the one it names."""
    query = select(Source.id).where(Source.kind == kind)
    if "sourceSystemId" in pattern:
        query = query.where(Source.name == f"{kind}:{pattern['sourceSystemId']}")
    return list(session.scalars(query))


def _quarantine(
    session: Session, parsed: ParsedAlarms, *, batch_id: int, source_id: int, at: datetime
) -> None:
    if not parsed.rejected:
        return
    rows = [
        {
            "batch_id": batch_id,
            "source_id": source_id,
            "received_at": at,
            "reason_code": r.reason_code,
            "reason": r.reason or sentence(r.reason_code),
            "field": r.field,
            "record": r.record,
        }
        for r in parsed.rejected
    ]
    session.execute(insert(QuarantinedRecord), rows)


def _close(
    session: Session,
    summary: AlarmBatchSummary,
    *,
    source: Source,
    times: list[datetime | None],
    received_at: datetime,
) -> None:
    known = [t for t in times if t is not None]
    batch = session.get_one(IngestBatch, summary.batch_id)
    batch.status = "done"
    batch.finished_at = utcnow()
    batch.received = summary.received
    batch.accepted = summary.accepted
    batch.duplicates = summary.duplicates
    batch.corrections = summary.updated
    batch.quarantined = summary.quarantined
    batch.reasons = summary.reasons
    batch.period_min = min(known, default=None)
    batch.period_max = max(known, default=None)
    source.last_received_at = received_at
    source.status = "ok"
    if summary.accepted or summary.duplicates:
        source.last_good_batch_at = received_at
    # Event times from a sender's wrong clock must not push the watermark into the future.
    newest = min(max(known, default=received_at), received_at)
    if known and (source.watermark is None or newest > source.watermark):
        source.watermark = newest
