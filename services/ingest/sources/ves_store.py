"""Storing VES requests: one batch per sending entity, every event accounted for.

- Sources are named `ves:<reportingEntityName>` (the sourceName when that is blank): one
  source per sending entity, so freshness and heartbeats describe that sender.
- Measurement batches go through the pipeline (raw_format `ves`, counted in records).
- Fault, threshold-crossing, heartbeat and other events form `ves-events` batches counted
  in events: each is accepted (alarm raised or cleared, heartbeat noted), a duplicate (a
  repeat of what is already recorded) or quarantined with a reason.
- A refused request is one `ves-rejected` batch holding one quarantined record.
Every batch keeps its raw payload and satisfies received = accepted + duplicates + quarantined.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from services.db import Database
from services.db.models import DataHealthEvent, IngestBatch, QuarantinedRecord, Source, utcnow
from services.errors import InvalidInput, NotFound
from services.ingest.pipeline import ensure_source, ingest_records, read_raw
from services.ingest.reasons import sentence
from services.ingest.records import Rejected, empty_records
from services.ingest.sources.ves_alarms import ACCEPTED, DUPLICATE, apply_alarm
from services.ingest.sources.ves_errors import VesRefusal
from services.ingest.sources.ves_measurements import measurement_payload
from services.ingest.sources.ves_models import ALARM_BLOCKS, MEASUREMENT_BLOCKS, HeartbeatFields
from services.ingest.sources.ves_parse import VesEvent, VesRequest, parse_stored
from services.ingest.sources.ves_schema import Coercion

MEASUREMENTS_FORMAT = "ves"  # replayable: services.ingest.sources.ves_measurements
EVENTS_FORMAT = "ves-events"
REJECTED_FORMAT = "ves-rejected"
SOURCE_KIND = "ves"
UNIDENTIFIED = "ves:unidentified"
# A sender is stale once this many promised heartbeats are missing.
STALE_AFTER_INTERVALS = 3
Outcome = str | Rejected


def source_name(reporter: str | None) -> str:
    """`ves:<sending entity>` (within the 100 characters a source name may have)."""
    name = (reporter or "").strip()
    return f"ves:{name[:96]}" if name else UNIDENTIFIED


def store_request(
    db: Database, request: VesRequest, *, body: bytes, received_at: datetime
) -> list[int]:
    """Store an accepted request: one batch per sending entity; returns the batch ids."""
    groups: dict[str, list[VesEvent]] = {}
    for event in request.events:
        groups.setdefault(source_name(event.header.reporter), []).append(event)
    batch_ids = []
    for name, events in groups.items():
        # A batch from several senders is split; each part keeps exactly its own events.
        raw = body if len(groups) == 1 else _subset(events)
        if request.domain in MEASUREMENT_BLOCKS:
            parsed = measurement_payload(events)
            summary = ingest_records(
                db,
                source=name,
                records=parsed.records,
                raw=raw,
                raw_format=MEASUREMENTS_FORMAT,
                received_at=received_at,
                rejected=parsed.rejected,
                source_kind=SOURCE_KIND,
            )
            batch_ids.append(summary.batch_id)
        else:
            batch_ids.append(_store_events(db, name, events, raw=raw, received_at=received_at))
    if request.coercions:
        _record_coercions(db, request, received_at=received_at)
    return batch_ids


def store_refusal(
    db: Database,
    refusal: VesRefusal,
    *,
    body: bytes,
    received_at: datetime,
    caller: str | None,
) -> int:
    """Keep a refused payload: raw as received, one quarantined record with the reason."""
    facts = refusal.facts
    record = {**facts, "messageId": refusal.error.message_id, "caller": caller}
    name = source_name(facts.get("reportingEntityName") or facts.get("sourceName"))
    summary = ingest_records(
        db,
        source=name,
        records=empty_records(),
        raw=body,
        raw_format=REJECTED_FORMAT,
        received_at=received_at,
        rejected=[
            Rejected(
                refusal.reason_code,
                record=record,
                reason=refusal.error.sentence(),
                field=refusal.field,
            )
        ],
        source_kind=SOURCE_KIND,
    )
    return summary.batch_id


def reprocess_event_batch(db: Database, *, batch_id: int) -> int:
    """Apply a stored `ves-events` batch again (after a crash or a fix); safe to repeat.

    Alarms already raised or cleared come back as duplicates, and the batch's earlier
    refusals are replaced, so its counts describe the last run.
    """
    with db.session(write=True) as session:
        batch = session.get(IngestBatch, batch_id)
        if batch is None:
            raise NotFound(f"no ingest batch {batch_id}")
        if batch.raw_format != EVENTS_FORMAT:
            raise InvalidInput(f"batch {batch_id} is not a VES event batch ({batch.raw_format})")
        raw, received_at = read_raw(batch), batch.received_at
    try:
        request = parse_stored(raw)
    except VesRefusal as refusal:
        raise InvalidInput(f"batch {batch_id} cannot be read again: {refusal}") from None
    with db.session(write=True) as session:
        session.execute(delete(QuarantinedRecord).where(QuarantinedRecord.batch_id == batch_id))
        batch = session.get_one(IngestBatch, batch_id)
        batch.status, batch.error, batch.received = "processing", None, len(request.events)
    _run_events(db, batch_id, request.events, received_at=received_at)
    return batch_id


def _store_events(
    db: Database, name: str, events: Sequence[VesEvent], *, raw: bytes, received_at: datetime
) -> int:
    with db.session(write=True) as session:
        source = ensure_source(session, name=name, kind=SOURCE_KIND)
        batch = IngestBatch(
            source_id=source.id,
            received_at=received_at,
            status="processing",
            raw_format=EVENTS_FORMAT,
            checksum=hashlib.sha256(raw).hexdigest(),
            raw=gzip.compress(raw, compresslevel=5),
            raw_size=len(raw),
            received=len(events),
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    _run_events(db, batch_id, events, received_at=received_at)
    return batch_id


def _run_events(
    db: Database, batch_id: int, events: Sequence[VesEvent], *, received_at: datetime
) -> None:
    try:
        with db.session(write=True) as session:
            _process_events(session, batch_id, events, received_at=received_at)
    except Exception as exc:
        # The raw batch stays, marked failed with the cause, as the pipeline does.
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


def _process_events(
    session: Session, batch_id: int, events: Sequence[VesEvent], *, received_at: datetime
) -> None:
    batch = session.get_one(IngestBatch, batch_id)
    # Deliveries of one sender are applied one at a time: two copies of a notification
    # (a sender's retry racing the original) must not both open the same alarm.
    source = session.scalars(
        select(Source).where(Source.id == batch.source_id).with_for_update()
    ).one()
    outcomes = [_apply(session, source, event, received_at=received_at) for event in events]
    refused = [o for o in outcomes if isinstance(o, Rejected)]
    if refused:
        session.execute(
            insert(QuarantinedRecord),
            [
                {
                    "batch_id": batch_id,
                    "source_id": source.id,
                    "received_at": received_at,
                    "reason_code": r.reason_code,
                    "reason": r.reason or sentence(r.reason_code),
                    "field": r.field,
                    "record": r.record,
                }
                for r in refused
            ],
        )
    batch.accepted = outcomes.count(ACCEPTED)
    batch.duplicates = outcomes.count(DUPLICATE)
    batch.quarantined = len(refused)
    batch.reasons = dict(Counter(r.reason_code for r in refused))
    batch.status = "done"
    batch.finished_at = utcnow()
    # A replayed batch keeps its arrival time; freshness never moves backwards.
    if source.last_received_at is None or received_at > source.last_received_at:
        source.last_received_at = received_at
        source.status = "ok"
        if batch.accepted or batch.duplicates:
            source.last_good_batch_at = received_at


def _apply(session: Session, source: Source, event: VesEvent, *, received_at: datetime) -> Outcome:
    if event.domain in ALARM_BLOCKS:
        return apply_alarm(session, source_id=source.id, event=event, received_at=received_at)
    if event.domain == "heartbeat":
        interval = event.block.heartbeatInterval if isinstance(event.block, HeartbeatFields) else 0
        if interval:
            source.expected_cadence_s = interval
            source.stale_after_s = STALE_AFTER_INTERVALS * interval
        return ACCEPTED
    reason = sentence("unsupported_event")
    if event.schema_check:
        reason += f"; stndDefined data schema {event.schema_check}"
    return Rejected("unsupported_event", record=event.summary(), reason=reason)


def _subset(events: Sequence[VesEvent]) -> bytes:
    document = {"eventList": [event.raw for event in events]}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _record_coercions(db: Database, request: VesRequest, *, received_at: datetime) -> None:
    """One open schema-drift event per sender and deviation, so a fix is visible once."""
    with db.session(write=True) as session:
        for coercion in request.coercions:
            _note_coercion(session, request.events[coercion.event_index], coercion, received_at)


def _note_coercion(
    session: Session, event: VesEvent, coercion: Coercion, received_at: datetime
) -> None:
    name = source_name(event.header.reporter)
    source = session.scalar(select(Source).where(Source.name == name))
    path = re.sub(r"\[\d+\]", "[]", coercion.path)
    key = f"ves-coercion:{name}:{path}:{coercion.original!r}"
    already = session.scalar(
        select(DataHealthEvent.id).where(
            DataHealthEvent.kind == "schema_drift",
            DataHealthEvent.resolved_at.is_(None),
            DataHealthEvent.details["key"].as_string() == key,
        )
    )
    if already is not None:
        return
    session.add(
        DataHealthEvent(
            kind="schema_drift",
            severity="warning",
            source_id=None if source is None else source.id,
            vendor=(event.header.nfVendorName or "")[:64] or None,
            detected_at=received_at,
            summary=(
                f"{name}: {path} {coercion.original!r} is outside {coercion.schema}; "
                f"accepted as {coercion.accepted_as!r}"
            )[:2000],
            details={
                "key": key,
                "path": path,
                "original": coercion.original,
                "accepted_as": coercion.accepted_as,
                "schema": coercion.schema,
                "eventId": event.header.eventId,
            },
        )
    )
