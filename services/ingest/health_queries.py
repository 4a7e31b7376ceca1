"""Read models of the data-health page: sources, batches, quarantine, gaps, drift, jobs.

Every function takes an explicit session and returns plain dataclasses or frames, so the
page only formats. The one change here, resolving a data-health event, is audited.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db.models import (
    DataGap,
    DataHealthEvent,
    Element,
    IngestBatch,
    JobRun,
    QuarantinedRecord,
    Source,
    utcnow,
)
from services.errors import Conflict, NotFound
from services.ingest.health import SourceFreshness, source_freshness
from services.scheduler import backoff_for, lease_holder

DRIFT_KINDS = ("schema_drift", "value_drift")
DAY = timedelta(hours=24)
RAW_EXCERPT_BYTES = 4096
# Enough history to count a job's consecutive failures past the longest back-off.
FAILURE_LOOKBACK = 20
EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class SourceHealth:
    """One source's freshness plus its cadence, last good batch, error rate and open gaps."""

    freshness: SourceFreshness
    expected_cadence_s: int
    last_good_batch_at: datetime | None
    open_gaps: int

    @property
    def name(self) -> str:
        return self.freshness.name

    @property
    def error_rate_24h(self) -> float | None:
        """Quarantined / received over the last 24 h; None when nothing was received."""
        received = self.freshness.records_24h
        return self.freshness.quarantined_24h / received if received else None


@dataclass(frozen=True)
class SchedulerState:
    """The single-scheduler lease as last renewed; `running` only while unexpired."""

    holder: str | None
    renewed_at: datetime | None
    expires_at: datetime | None
    running: bool


@dataclass(frozen=True)
class HealthSummary:
    """The numbers of the page's tiles."""

    sources: list[SourceHealth]
    records_24h: int
    batches_24h: int
    quarantined_24h: int
    open_gaps: int
    open_drift: int
    scheduler: SchedulerState

    @property
    def quarantined_share(self) -> float | None:
        return self.quarantined_24h / self.records_24h if self.records_24h else None


@dataclass(frozen=True)
class BatchRow:
    """One ingest batch without its raw payload."""

    id: int
    source: str
    received_at: datetime
    finished_at: datetime | None
    status: str
    raw_format: str
    raw_size: int
    received: int
    accepted: int
    duplicates: int
    corrections: int
    quarantined: int
    late: int
    reasons: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class QuarantineRow:
    """One refused record as the browser lists it."""

    id: int
    batch_id: int | None
    source: str
    received_at: datetime
    reason_code: str
    reason: str
    field: str | None
    record: dict[str, Any]
    status: str
    replayed_at: datetime | None
    replay_batch_id: int | None


@dataclass(frozen=True)
class QuarantinePage:
    """The newest matching records (at most the limit) and how many match in all."""

    rows: list[QuarantineRow]
    total: int


@dataclass(frozen=True)
class RawExcerpt:
    """The start of a batch's raw payload, decoded for display as text."""

    batch_id: int
    raw_format: str
    text: str
    shown_bytes: int
    total_bytes: int

    @property
    def truncated(self) -> bool:
        return self.shown_bytes < self.total_bytes


@dataclass(frozen=True)
class GapMatrix:
    """Missing periods per row (element, or a whole source) and hourly bucket."""

    cells: pd.DataFrame  # label, dn, source, bucket (UTC), missing
    rows_total: int
    rows_shown: int
    since: datetime
    until: datetime


@dataclass(frozen=True)
class EventRow:
    """A data-health event with its source's name."""

    id: int
    kind: str
    severity: str
    source: str | None
    vendor: str | None
    sw_version: str | None
    summary: str
    detected_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class JobState:
    """A job's recent record: last run, consecutive failures and any back-off in force."""

    job_id: str
    last_started_at: datetime
    last_status: str
    runs_24h: int
    failures_24h: int
    consecutive_failures: int
    backoff_until: datetime | None


def summary(session: Session, *, now: datetime | None = None) -> HealthSummary:
    """Everything the tiles show, from one consistent read."""
    now = now or utcnow()
    sources = source_health(session, now=now)
    return HealthSummary(
        sources=sources,
        records_24h=sum(s.freshness.records_24h for s in sources),
        batches_24h=sum(s.freshness.batches_24h for s in sources),
        quarantined_24h=sum(s.freshness.quarantined_24h for s in sources),
        open_gaps=sum(s.open_gaps for s in sources),
        open_drift=int(
            session.scalar(
                select(func.count()).where(
                    DataHealthEvent.kind.in_(DRIFT_KINDS), DataHealthEvent.resolved_at.is_(None)
                )
            )
            or 0
        ),
        scheduler=scheduler_state(session, now=now),
    )


def source_health(session: Session, *, now: datetime | None = None) -> list[SourceHealth]:
    """Every source's freshness with cadence, last good batch and open gaps (last 24 h)."""
    now = now or utcnow()
    extra = {
        row.id: row
        for row in session.execute(
            select(Source.id, Source.expected_cadence_s, Source.last_good_batch_at)
        )
    }
    gaps = dict(
        session.execute(
            select(DataGap.source_id, func.count())
            .where(DataGap.filled_at.is_(None), DataGap.period_end >= now - DAY)
            .group_by(DataGap.source_id)
        ).all()
    )
    return [
        SourceHealth(
            freshness=f,
            expected_cadence_s=extra[f.source_id].expected_cadence_s,
            last_good_batch_at=extra[f.source_id].last_good_batch_at,
            open_gaps=int(gaps.get(f.source_id, 0)),
        )
        for f in source_freshness(session, now=now)
    ]


def scheduler_state(session: Session, *, now: datetime | None = None) -> SchedulerState:
    """Who holds the scheduler lease and whether it is still valid."""
    now = now or utcnow()
    lease = lease_holder(session)
    if lease is None:
        return SchedulerState(holder=None, renewed_at=None, expires_at=None, running=False)
    return SchedulerState(
        holder=lease.holder,
        renewed_at=lease.acquired_at,  # every renewal stamps acquired_at: it is the heartbeat
        expires_at=lease.expires_at,
        running=lease.expires_at > now,
    )


def batch_history(
    session: Session, *, source: str | None = None, limit: int = 500
) -> list[BatchRow]:
    """The newest batches (all sources or one), newest first, without raw payloads."""
    query = (
        select(
            IngestBatch.id,
            Source.name,
            IngestBatch.received_at,
            IngestBatch.finished_at,
            IngestBatch.status,
            IngestBatch.raw_format,
            IngestBatch.raw_size,
            IngestBatch.received,
            IngestBatch.accepted,
            IngestBatch.duplicates,
            IngestBatch.corrections,
            IngestBatch.quarantined,
            IngestBatch.late,
            IngestBatch.reasons,
            IngestBatch.error,
        )
        .join(Source, Source.id == IngestBatch.source_id)
        .order_by(IngestBatch.received_at.desc(), IngestBatch.id.desc())
        .limit(limit)
    )
    if source:
        query = query.where(Source.name == source)
    return [BatchRow(*row) for row in session.execute(query)]


def quarantine_page(
    session: Session,
    *,
    source: str | None = None,
    reason_code: str | None = None,
    since: datetime | None = None,
    status: str | None = "open",
    limit: int = 2000,
) -> QuarantinePage:
    """Refused records matching the filters, newest first, with the total that match."""
    conditions = []
    if source:
        conditions.append(Source.name == source)
    if reason_code:
        conditions.append(QuarantinedRecord.reason_code == reason_code)
    if since is not None:
        conditions.append(QuarantinedRecord.received_at >= since)
    if status:
        conditions.append(QuarantinedRecord.status == status)
    rows = session.execute(
        select(QuarantinedRecord, Source.name)
        .join(Source, Source.id == QuarantinedRecord.source_id)
        .where(*conditions)
        .order_by(QuarantinedRecord.received_at.desc(), QuarantinedRecord.id.desc())
        .limit(limit)
    ).all()
    total = session.scalar(
        select(func.count())
        .select_from(QuarantinedRecord)
        .join(Source, Source.id == QuarantinedRecord.source_id)
        .where(*conditions)
    )
    return QuarantinePage(
        rows=[_quarantine_row(q, name) for q, name in rows], total=int(total or 0)
    )


def quarantine_record(session: Session, *, record_id: int) -> QuarantineRow:
    """One refused record, or NotFound."""
    row = session.execute(
        select(QuarantinedRecord, Source.name)
        .join(Source, Source.id == QuarantinedRecord.source_id)
        .where(QuarantinedRecord.id == record_id)
    ).first()
    if row is None:
        raise NotFound(f"quarantined record {record_id} no longer exists")
    return _quarantine_row(*row)


def quarantine_reasons(session: Session) -> dict[str, int]:
    """Reason codes present in the quarantine, with how many records are still open."""
    rows = session.execute(
        select(
            QuarantinedRecord.reason_code,
            func.sum(case((QuarantinedRecord.status == "open", 1), else_=0)),
        ).group_by(QuarantinedRecord.reason_code)
    ).all()
    return {code: int(open_count or 0) for code, open_count in sorted(rows)}


def open_quarantine_sources(session: Session, *, reason_code: str | None = None) -> list[str]:
    """Names of sources with open quarantined records (of one reason, if given)."""
    query = (
        select(Source.name)
        .join(QuarantinedRecord, QuarantinedRecord.source_id == Source.id)
        .where(QuarantinedRecord.status == "open")
        .distinct()
        .order_by(Source.name)
    )
    if reason_code:
        query = query.where(QuarantinedRecord.reason_code == reason_code)
    return list(session.scalars(query))


def raw_excerpt(session: Session, *, batch_id: int, limit: int = RAW_EXCERPT_BYTES) -> RawExcerpt:
    """The first `limit` bytes of a batch as received, decoded leniently as UTF-8."""
    row = session.execute(
        select(IngestBatch.raw, IngestBatch.raw_format, IngestBatch.raw_size).where(
            IngestBatch.id == batch_id
        )
    ).first()
    if row is None:
        raise NotFound(f"ingest batch {batch_id} no longer exists")
    raw, raw_format, raw_size = row
    # Decompress only what is shown: a batch can be hundreds of megabytes.
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw or b"")) as stream:
            head = stream.read(limit)
    except (OSError, EOFError, zlib.error):
        head = b""
    return RawExcerpt(
        batch_id=batch_id,
        raw_format=raw_format,
        text=head.decode("utf-8", errors="replace"),
        shown_bytes=len(head),
        total_bytes=max(int(raw_size or 0), len(head)),
    )


def gap_matrix(
    session: Session,
    *,
    source: str | None = None,
    now: datetime | None = None,
    window: timedelta = DAY,
    limit: int = 40,
) -> GapMatrix:
    """Unfilled gaps of the window as missing periods per row and hour; the `limit` worst rows."""
    until = now or utcnow()
    since = until - window
    query = (
        select(
            DataGap.period_start,
            DataGap.period_end,
            Source.name,
            Source.expected_cadence_s,
            Element.name,
            Element.dn,
        )
        .join(Source, Source.id == DataGap.source_id)
        .outerjoin(Element, Element.id == DataGap.element_id)
        .where(DataGap.filled_at.is_(None), DataGap.period_end >= since)
    )
    if source:
        query = query.where(Source.name == source)
    gaps = pd.DataFrame(
        session.execute(query).all(),
        columns=["start", "end", "source", "cadence_s", "element", "dn"],
    )
    empty = pd.DataFrame(columns=["label", "dn", "source", "bucket", "missing"])
    if gaps.empty:
        return GapMatrix(empty, 0, 0, since, until)
    start = _epoch_seconds(gaps["start"])
    end = _epoch_seconds(gaps["end"])
    cadence = gaps["cadence_s"].astype("int64").to_numpy()
    since_s = int(pd.Timestamp(since).timestamp())
    # Clip each gap to the window on its own period grid, then count its periods.
    skipped = np.maximum(0, -(-(since_s - start) // cadence))
    gaps["first"] = start + skipped * cadence
    gaps["periods"] = (end - gaps["first"].to_numpy()) // cadence + 1
    gaps = gaps[gaps["periods"] > 0]
    # Rows are keyed by DN: element names repeat (every site has a cell "C1").
    whole_source = gaps["element"].isna()
    gaps["dn"] = gaps["dn"].where(~whole_source, "every element of " + gaps["source"])
    gaps["name"] = gaps["element"].where(~whole_source, gaps["source"] + " · whole source")
    worst = gaps.groupby("dn")["periods"].sum().sort_values(ascending=False, kind="stable")
    keep = list(worst.index[:limit])
    shown = gaps[gaps["dn"].isin(keep)]
    labels = _row_labels(shown.drop_duplicates("dn").set_index("dn")["name"].reindex(keep))
    sources = shown.groupby("dn")["source"].agg(lambda names: ", ".join(sorted(set(names))))
    repeats = shown["periods"].to_numpy()
    step = np.concatenate([np.arange(n) for n in repeats])
    period_end = (
        np.repeat(shown["first"].to_numpy(), repeats)
        + np.repeat(shown["cadence_s"].astype("int64").to_numpy(), repeats) * step
    )
    periods = pd.DataFrame(
        {
            "dn": np.repeat(shown["dn"].to_numpy(), repeats),
            "bucket": pd.to_datetime(period_end // 3600 * 3600, unit="s", utc=True),
        }
    )
    cells = periods.groupby(["dn", "bucket"], as_index=False).size()
    cells = cells.rename(columns={"size": "missing"})
    cells["label"] = cells["dn"].map(labels)
    cells["source"] = cells["dn"].map(sources)
    cells["rank"] = cells["dn"].map({dn: i for i, dn in enumerate(keep)})
    cells = cells.sort_values(["rank", "bucket"])[["label", "dn", "source", "bucket", "missing"]]
    return GapMatrix(cells.reset_index(drop=True), len(worst), len(keep), since, until)


def drift_events(
    session: Session,
    *,
    source: str | None = None,
    now: datetime | None = None,
    resolved_within: timedelta = timedelta(days=7),
    limit: int = 200,
) -> list[EventRow]:
    """Open drift events and those resolved recently, open first then newest first.

    With a source, vendor-wide events (raised without a source) are kept: they concern it too.
    """
    now = now or utcnow()
    query = (
        select(DataHealthEvent, Source.name)
        .outerjoin(Source, Source.id == DataHealthEvent.source_id)
        .where(
            DataHealthEvent.kind.in_(DRIFT_KINDS),
            DataHealthEvent.resolved_at.is_(None)
            | (DataHealthEvent.resolved_at >= now - resolved_within),
        )
        .order_by(DataHealthEvent.resolved_at.is_not(None), DataHealthEvent.detected_at.desc())
        .limit(limit)
    )
    if source:
        query = query.where((Source.name == source) | DataHealthEvent.source_id.is_(None))
    return [
        EventRow(
            id=e.id,
            kind=e.kind,
            severity=e.severity,
            source=name,
            vendor=e.vendor,
            sw_version=e.sw_version,
            summary=e.summary,
            detected_at=e.detected_at,
            resolved_at=e.resolved_at,
        )
        for e, name in session.execute(query)
    ]


def resolve_event(
    session: Session, *, event_id: int, actor: Actor, now: datetime | None = None
) -> DataHealthEvent:
    """Mark a data-health event resolved (the cause was handled); audited."""
    event = session.get(DataHealthEvent, event_id)
    if event is None:
        raise NotFound(f"data-health event {event_id} does not exist")
    if event.resolved_at is not None:
        raise Conflict(f"data-health event {event_id} is already resolved")
    event.resolved_at = now or utcnow()
    audit.record(
        session,
        actor=actor,
        action="health.event.resolve",
        object_type="data_health_event",
        object_id=event.id,
        before={"kind": event.kind, "summary": event.summary, "resolved_at": None},
        after={
            "kind": event.kind,
            "summary": event.summary,
            "resolved_at": event.resolved_at.isoformat(),
        },
    )
    return event


def job_runs(session: Session, *, limit: int = 500) -> list[JobRun]:
    """The newest job runs of every job."""
    return list(session.scalars(select(JobRun).order_by(JobRun.started_at.desc()).limit(limit)))


def job_states(session: Session, *, now: datetime | None = None) -> list[JobState]:
    """Per job: its last run, the last day's runs and failures, and back-off in force."""
    now = now or utcnow()
    day = dict(
        (row.job_id, (int(row.runs), int(row.failures or 0)))
        for row in session.execute(
            select(
                JobRun.job_id,
                func.count().label("runs"),
                func.sum(case((JobRun.status == "failed", 1), else_=0)).label("failures"),
            )
            .where(JobRun.started_at >= now - DAY)
            .group_by(JobRun.job_id)
        )
    )
    states = []
    for job_id in session.scalars(select(JobRun.job_id).distinct().order_by(JobRun.job_id)):
        recent = session.scalars(
            select(JobRun)
            .where(JobRun.job_id == job_id)
            .order_by(JobRun.started_at.desc())
            .limit(FAILURE_LOOKBACK)
        ).all()
        finished = [r for r in recent if r.finished_at is not None]
        failures = 0
        for run in finished:
            if run.status != "failed":
                break
            failures += 1
        # The scheduler skips a job until its last failure is older than the back-off.
        until = finished[0].finished_at + backoff_for(failures) if failures else None
        runs, failed = day.get(job_id, (0, 0))
        states.append(
            JobState(
                job_id=job_id,
                last_started_at=recent[0].started_at,
                last_status=recent[0].status,
                runs_24h=runs,
                failures_24h=failed,
                consecutive_failures=failures,
                backoff_until=until if until is not None and until > now else None,
            )
        )
    return states


def _row_labels(names: pd.Series) -> dict[str, str]:
    """Element names by DN; names shared by several rows get their parent's name too."""
    labels = {}
    repeated = set(names[names.duplicated(keep=False)])
    for dn, name in names.items():
        if name in repeated:
            parts = [part.partition("=")[2] for part in str(dn).split(",")[-2:]]
            name = " · ".join(p for p in parts if p) or str(dn)
        labels[str(dn)] = str(name)
    if len(set(labels.values())) < len(labels):
        return {dn: dn for dn in labels}  # still ambiguous: the DN is always unique
    return labels


def _epoch_seconds(column: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(column, utc=True) - EPOCH) // pd.Timedelta(seconds=1)).to_numpy()


def _quarantine_row(record: QuarantinedRecord, source: str) -> QuarantineRow:
    return QuarantineRow(
        id=record.id,
        batch_id=record.batch_id,
        source=source,
        received_at=record.received_at,
        reason_code=record.reason_code,
        reason=record.reason,
        field=record.field,
        record=dict(record.record or {}),
        status=record.status,
        replayed_at=record.replayed_at,
        replay_batch_id=record.replay_batch_id,
    )
