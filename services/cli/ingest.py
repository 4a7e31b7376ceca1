"""`beacon ingest`, `beacon quarantine` and `beacon scheduler`: data in, refusals, jobs."""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy import func, select

from services.cli._base import CliState, cli_actor, echo_table, pass_state, when
from services.db import Database
from services.db.models import IngestBatch, QuarantinedRecord, Source
from services.ingest.dropfolder import ingest_file
from services.ingest.formats import parsers
from services.ingest.pipeline import BatchSummary
from services.ingest.replay import replay_quarantine
from services.jobs import standard_jobs
from services.logs import configure_logging
from services.scheduler import LeasedScheduler


def _ingest_ves(db: Database, payload: bytes, *, source: str | None) -> BatchSummary:
    """A file holding one VES event or an eventList, as if POSTed to the collector."""
    from services.ingest.sources import ves

    try:
        document = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        document = {}
    is_batch = isinstance(document, dict) and "eventList" in document
    first = (document.get("eventList") or [{}])[0] if is_batch else document.get("event", {})
    header = first.get("commonEventHeader", {}) if isinstance(first, dict) else {}
    listener = str(header.get("vesEventListenerVersion", ""))
    version = "v7" if listener.startswith("7") else "v5"
    answer = ves.receive(
        db,
        body=payload,
        api_version=version,
        batch=is_batch,
        caller=source,
        schemas=ves.schema_dir(),
    )
    return _combined(db, answer.batch_ids)


def _combined(db: Database, batch_ids: tuple[int, ...]) -> BatchSummary:
    """One summary over the batches a payload was split into (one per sender)."""
    with db.session() as session:
        rows = [session.get(IngestBatch, batch_id) for batch_id in batch_ids]
    total = BatchSummary(batch_id=batch_ids[0] if batch_ids else 0, source="")
    reasons: Counter[str] = Counter()
    for row in rows:
        if row is None:
            continue
        for key in ("received", "accepted", "duplicates", "corrections", "quarantined", "late"):
            setattr(total, key, getattr(total, key) + getattr(row, key))
        reasons.update(row.reasons)
    total.reasons = dict(reasons)
    return total


def _alarm_ingester(kind: str) -> Callable[..., BatchSummary]:
    """Alertmanager or TMF642 JSON from a file, as if POSTed to its endpoint."""

    def ingest_alarm_file(db: Database, payload: bytes, *, source: str | None) -> BatchSummary:
        from services.ingest.sources.alarms_batch import PARSERS, ingest_alarms

        parsed = PARSERS[f"{kind}-json"](payload)
        result = ingest_alarms(db, parsed=parsed, raw=payload)
        return _combined(db, (result.batch_id,))

    return ingest_alarm_file


# Formats that are not plain telemetry records bring their own ingest function.
EXTRA_FORMATS: dict[str, Callable[..., BatchSummary]] = {
    "ves": _ingest_ves,
    "alertmanager": _alarm_ingester("alertmanager"),
    "tmf642": _alarm_ingester("tmf642"),
}


def _format_names() -> list[str]:
    names = set(parsers()) | set(EXTRA_FORMATS)
    names.discard("records-csv")
    names.discard("simulator")
    return sorted(names)


@click.command("ingest", short_help="Ingest files: PM XML, CSV, JSON and more.")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_format_names()),
    required=True,
    help="How to read the files.",
)
@click.option("--source", default=None, help="Source name (default: '<format>:cli').")
@pass_state
def ingest(state: CliState, paths: tuple[Path, ...], fmt: str, source: str | None) -> None:
    """Store each file raw, validate it and store or quarantine every record.

    Prints one JSON line per run: received, accepted, duplicates, quarantined, late,
    reasons and the batch ids (received = accepted + duplicates + quarantined).
    """
    db = state.database()
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    batches = []
    for path in paths:
        if fmt in EXTRA_FORMATS:
            summary = EXTRA_FORMATS[fmt](db, path.read_bytes(), source=source)
        else:
            summary = ingest_file(db, path, source=source or f"{fmt}:cli", fmt=fmt)
        for key in ("received", "accepted", "duplicates", "quarantined", "late"):
            totals[key] += getattr(summary, key)
        reasons.update(summary.reasons)
        batches.append(summary.batch_id)
    click.echo(
        json.dumps(
            {
                **{
                    k: totals[k]
                    for k in ("received", "accepted", "duplicates", "quarantined", "late")
                },
                "reasons": dict(reasons),
                "batch_id": batches[0] if len(batches) == 1 else batches,
            }
        )
    )


@click.group("quarantine", short_help="Browse and replay refused records.")
def quarantine_group() -> None:
    """Refused records are kept with their reason; replay them after a fix."""


@quarantine_group.command("list")
@click.option("--source", default=None)
@click.option("--reason", default=None)
@pass_state
def quarantine_list(state: CliState, source: str | None, reason: str | None) -> None:
    """Open quarantined records counted by source and reason."""
    db = state.database()
    with db.session() as session:
        query = (
            select(
                Source.name,
                QuarantinedRecord.reason_code,
                func.count(),
                func.max(QuarantinedRecord.received_at),
            )
            .join(Source, Source.id == QuarantinedRecord.source_id)
            .where(QuarantinedRecord.status == "open")
            .group_by(Source.name, QuarantinedRecord.reason_code)
            .order_by(Source.name, QuarantinedRecord.reason_code)
        )
        if source:
            query = query.where(Source.name == source)
        if reason:
            query = query.where(QuarantinedRecord.reason_code == reason)
        rows = session.execute(query).all()
    zone = state.settings().zone
    echo_table(
        ("source", "reason", "records", "newest"), [(s, r, n, when(t, zone)) for s, r, n, t in rows]
    )


@quarantine_group.command("replay")
@click.option("--reason", default=None, help="Replay records refused for this reason code.")
@click.option("--source", default=None, help="Replay records of this source.")
@click.option("--id", "ids", type=int, multiple=True, help="Replay these record ids.")
@pass_state
def quarantine_replay(
    state: CliState, reason: str | None, source: str | None, ids: tuple[int, ...]
) -> None:
    """Send matching open records through validation again (after a mapping fix); audited."""
    db = state.database()
    outcome = replay_quarantine(
        db, actor=cli_actor(), reason_code=reason, source=source, record_ids=list(ids) or None
    )
    click.echo(
        json.dumps(
            {
                "selected": outcome.selected,
                "replayed": outcome.replayed,
                "skipped_not_records": outcome.skipped,
                "accepted": outcome.accepted,
                "quarantined_again": outcome.quarantined_again,
                "batch_ids": [b.batch_id for b in outcome.batches],
            }
        )
    )


@click.command("scheduler", short_help="Run the scheduled jobs (one active per database).")
@pass_state
def scheduler(state: CliState) -> None:
    """Run ingest, health and drift jobs until stopped; only one scheduler is ever active.

    Start it on more than one host for failover: the others wait on the database lease and
    take over within about 30 s when the active one stops.
    """
    settings = state.settings()
    db = state.database()
    configure_logging(settings.log_level)
    runner = LeasedScheduler(db, standard_jobs(db, settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner.start()
    click.echo(f"scheduler {runner.holder} started with {len(runner.jobs)} jobs", err=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runner.stop()
        click.echo("scheduler stopped; lease released", err=True)
