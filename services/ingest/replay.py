"""Replay: re-process interrupted or failed batches from their raw copy, and re-ingest
quarantined records after a mapping or rule fix. Both are idempotent: records already
stored count as duplicates, never twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import select

from services import audit
from services.audit import Actor
from services.db import Database
from services.db.models import IngestBatch, QuarantinedRecord, Source, utcnow
from services.errors import InvalidInput, NotFound
from services.ingest.formats import parsers
from services.ingest.pipeline import BatchSummary, ingest_records, reprocess_batch

# A batch still "processing" this long after it arrived was interrupted by a crash.
STUCK_AFTER = timedelta(minutes=10)
RECORD_FIELDS = ("dn", "kpi", "period_end", "value")
OPTIONAL_FIELDS = ("vendor", "sw_version", "unit", "suspect")


@dataclass(frozen=True)
class QuarantineReplay:
    """What a quarantine replay did."""

    selected: int
    replayed: int
    skipped: int
    batch: BatchSummary | None


def replay_stuck_batches(db: Database, *, now: datetime | None = None) -> list[BatchSummary]:
    """Re-process batches a crash left in `processing` (and failed ones), oldest first."""
    now = now or utcnow()
    with db.session() as session:
        stuck = session.scalars(
            select(IngestBatch.id)
            .where(
                IngestBatch.status.in_(("processing", "failed")),
                IngestBatch.received_at < now - STUCK_AFTER,
            )
            .order_by(IngestBatch.id)
            .limit(100)
        ).all()
    table = parsers()
    done = []
    for batch_id in stuck:
        # One bad batch never stops the others; reprocess_batch records its own failure.
        try:
            done.append(reprocess_batch(db, batch_id=batch_id, parsers=table))
        except Exception:  # noqa: BLE001,S112 - recorded on the batch row, next one continues
            continue
    return done


def replay_quarantine(
    db: Database,
    *,
    actor: Actor,
    reason_code: str | None = None,
    source: str | None = None,
    record_ids: list[int] | None = None,
    limit: int = 100_000,
) -> QuarantineReplay:
    """Send open quarantined records back through the pipeline as one new batch per source."""
    if reason_code is None and source is None and not record_ids:
        raise InvalidInput("choose what to replay: a reason code, a source or record ids")
    with db.session() as session:
        query = (
            select(QuarantinedRecord, Source.name)
            .join(Source, Source.id == QuarantinedRecord.source_id)
            .where(QuarantinedRecord.status == "open")
        )
        if reason_code:
            query = query.where(QuarantinedRecord.reason_code == reason_code)
        if source:
            query = query.where(Source.name == source)
        if record_ids:
            query = query.where(QuarantinedRecord.id.in_(record_ids))
        rows = session.execute(query.order_by(QuarantinedRecord.id).limit(limit)).all()
    if not rows:
        raise NotFound("no open quarantined records match")
    replayable = [(q, name) for q, name in rows if all(f in q.record for f in RECORD_FIELDS)]
    skipped = len(rows) - len(replayable)
    last: BatchSummary | None = None
    replayed = 0
    by_source: dict[str, list[QuarantinedRecord]] = {}
    for record, name in replayable:
        by_source.setdefault(name, []).append(record)
    for name, records in by_source.items():
        frame = pd.DataFrame(
            [
                {k: r.record.get(k) for k in (*RECORD_FIELDS, *OPTIONAL_FIELDS) if k in r.record}
                for r in records
            ]
        )
        raw = json.dumps([r.record for r in records], default=str).encode()
        last = ingest_records(
            db, source=name, records=frame, raw=raw, raw_format="quarantine-replay"
        )
        with db.session(write=True) as session:
            for record in records:
                row = session.get(QuarantinedRecord, record.id)
                assert row is not None
                row.status = "replayed"
                row.replayed_at = utcnow()
                row.replay_batch_id = last.batch_id
            audit.record(
                session,
                actor=actor,
                action="quarantine.replay",
                object_type="ingest_batch",
                object_id=last.batch_id,
                after={
                    "source": name,
                    "reason_code": reason_code,
                    "records": len(records),
                    "accepted": last.accepted,
                    "quarantined_again": last.quarantined,
                },
            )
        replayed += len(records)
    return QuarantineReplay(selected=len(rows), replayed=replayed, skipped=skipped, batch=last)
