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
from services.ingest.formats import parsers, reprocessors
from services.ingest.pipeline import REPLAY_FORMAT, BatchSummary, ingest_records, reprocess_batch

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
    batches: list[BatchSummary]

    @property
    def batch(self) -> BatchSummary | None:
        """The last replay batch (one per source), if any ran."""
        return self.batches[-1] if self.batches else None

    @property
    def accepted(self) -> int:
        return sum(b.accepted for b in self.batches)

    @property
    def quarantined_again(self) -> int:
        return sum(b.quarantined for b in self.batches)


def replay_stuck_batches(db: Database, *, now: datetime | None = None) -> list[BatchSummary]:
    """Re-process batches a crash left in `processing` (and failed ones), oldest first."""
    now = now or utcnow()
    table, special = parsers(), reprocessors()
    with db.session() as session:
        stuck = session.scalars(
            select(IngestBatch.id)
            .where(
                IngestBatch.status.in_(("processing", "failed")),
                IngestBatch.received_at < now - STUCK_AFTER,
                # Only formats Beacon can read again; others would be retried forever.
                IngestBatch.raw_format.in_(sorted(set(table) | set(special))),
            )
            .order_by(IngestBatch.id)
            .limit(100)
        ).all()
    done = []
    for batch_id in stuck:
        # One bad batch never stops the others; a failure is recorded on its batch row.
        try:
            with db.session() as session:
                fmt = session.get(IngestBatch, batch_id).raw_format  # type: ignore[union-attr]
            if fmt in special:
                special[fmt](db, batch_id=batch_id)
                done.append(_summary_of(db, batch_id))
            else:
                done.append(reprocess_batch(db, batch_id=batch_id, parsers=table))
        except Exception:  # noqa: BLE001,S112 - recorded on the batch row, next one continues
            continue
    return done


def _summary_of(db: Database, batch_id: int) -> BatchSummary:
    with db.session() as session:
        batch = session.get(IngestBatch, batch_id)
        assert batch is not None
        source = session.get(Source, batch.source_id)
        return BatchSummary(
            batch_id=batch_id,
            source=source.name if source else "",
            received=batch.received,
            accepted=batch.accepted,
            duplicates=batch.duplicates,
            corrections=batch.corrections,
            quarantined=batch.quarantined,
            late=batch.late,
            reasons=dict(batch.reasons),
        )


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
    # Whole payloads a parser refused are not records: they are replayed by re-processing
    # their batch, not here. A record needs at least an element, a counter and a period.
    replayable = [
        (q, name)
        for q, name in rows
        if all(q.record.get(f) not in (None, "") for f in ("dn", "kpi", "period_end"))
    ]
    skipped = len(rows) - len(replayable)
    batches: list[BatchSummary] = []
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
        last = ingest_records(db, source=name, records=frame, raw=raw, raw_format=REPLAY_FORMAT)
        batches.append(last)
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
    return QuarantineReplay(selected=len(rows), replayed=replayed, skipped=skipped, batches=batches)
