"""A watched drop folder, polled, for legacy systems that can only write files.

Layout: `<drop dir>/<source name>/<file>` (a file directly in the drop dir belongs to the
source `drop`). A file is taken once it has not changed for a few seconds (so half-written
files wait), stored raw and ingested, then moved to `.done/<date>/` — or to `.failed/`
when processing raised, with the batch kept for replay.

A crash leaves the file in place, so the next poll sees it again; its checksum tells what
the crash interrupted. A batch already done (crash between ingesting and moving) is not
ingested twice; a batch left `processing` (crash mid-batch) is finished from its raw copy.
Either way no record is stored or quarantined twice. When the database refuses to store
the raw copy or fails mid-batch (read-only, disk full, unreachable, restarting) the file
stays where it is and a later poll takes it up again without a manual step.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from services.db import Database
from services.db.models import IngestBatch, Source, utcnow
from services.ingest.formats import guess_format, parsers
from services.ingest.pipeline import (
    BatchSummary,
    database_unavailable,
    ingest_records,
    reprocess_batch,
)
from services.ingest.records import ParsedPayload, Rejected, empty_records

log = logging.getLogger(__name__)

SETTLE_SECONDS = 5.0
DEFAULT_SOURCE = "drop"
MAX_FILES_PER_POLL = 200
# An identical file within this window is the same delivery seen again after a crash.
SAME_DELIVERY_WINDOW = timedelta(days=1)


@dataclass
class DropOutcome:
    """What one poll of the folder did."""

    files: int = 0
    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    failed: int = 0
    resumed: int = 0  # files whose interrupted batch was finished from its raw copy
    already_done: int = 0  # files ingested before a crash kept them from being moved
    deferred: int = 0  # files left in place for a later poll: the database was unavailable

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def poll_drop_folder(
    db: Database, directory: Path, *, settle_seconds: float = SETTLE_SECONDS
) -> DropOutcome:
    """Ingest every settled file in the folder; one bad file never stops the others."""
    outcome = DropOutcome()
    directory.mkdir(parents=True, exist_ok=True)
    for path in _settled_files(directory, settle_seconds)[:MAX_FILES_PER_POLL]:
        source = DEFAULT_SOURCE if path.parent == directory else path.parent.name
        outcome.files += 1
        try:
            summary = _ingest_dropped(db, path, source=source, outcome=outcome)
        except Exception as exc:
            if database_unavailable(exc):
                # The database, not the file, failed (unreachable, read-only, full). The file
                # stays and the next poll resumes its batch from the raw copy, or ingests it
                # if nothing was stored. Stop here: the other files would meet the same.
                log.warning("drop folder: database unavailable; %s stays for a later poll", path)
                outcome.deferred += 1
                break
            # The file itself could not be processed: its batch is kept raw and marked
            # failed for the replay job, the file goes aside.
            log.exception("drop folder: %s failed", path)
            outcome.failed += 1
            _move(path, directory / ".failed")
            continue
        if summary is not None:
            outcome.received += summary.received
            outcome.accepted += summary.accepted
            outcome.quarantined += summary.quarantined
        _move(path, directory / ".done" / datetime.now(UTC).strftime("%Y-%m-%d"))
    return outcome


def _ingest_dropped(
    db: Database, path: Path, *, source: str, outcome: DropOutcome
) -> BatchSummary | None:
    """Ingest a file, or finish or skip the batch an earlier (crashed) poll made of it."""
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    earlier = _earlier_batch(db, source=source, checksum=checksum)
    if earlier is None:
        return ingest_file(db, path, source=source)
    batch_id, status = earlier
    if status == "done":
        log.info("drop folder: %s was ingested as batch %s before a crash", path, batch_id)
        outcome.already_done += 1
        return None
    log.info("drop folder: finishing interrupted batch %s of %s", batch_id, path)
    outcome.resumed += 1
    return reprocess_batch(db, batch_id=batch_id, parsers=parsers())


def _earlier_batch(db: Database, *, source: str, checksum: str) -> tuple[int, str] | None:
    """The newest recent batch of this source with this content: to resume, or to skip if done.

    A file is still in the folder after its batch failed only when the database failed
    (otherwise it went to .failed/), so a failed batch is resumed like an interrupted one.
    """
    with db.session() as session:
        row = session.execute(
            select(IngestBatch.id, IngestBatch.status)
            .join(Source, Source.id == IngestBatch.source_id)
            .where(
                Source.name == source,
                IngestBatch.checksum == checksum,
                IngestBatch.received_at >= utcnow() - SAME_DELIVERY_WINDOW,
                IngestBatch.raw_format.in_(sorted(parsers())),
            )
            .order_by(IngestBatch.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return int(row.id), str(row.status)


def ingest_file(db: Database, path: Path, *, source: str, fmt: str | None = None):  # type: ignore[no-untyped-def]
    """Parse one file by its format and ingest it under `source`."""
    payload = path.read_bytes()
    fmt = fmt or guess_format(path.name, payload)
    parser = parsers().get(fmt or "")
    if parser is None:
        parsed = ParsedPayload(
            records=empty_records(),
            rejected=[
                Rejected(
                    "unsupported_format",
                    {"file": path.name, "head": payload[:200].decode("utf-8", "replace")},
                    reason=f"{path.name}: not CSV, JSON or 3GPP PM XML",
                )
            ],
        )
        fmt = "unknown"
    else:
        parsed = parser(payload, name=path.name)
    return ingest_records(
        db,
        source=source,
        records=parsed.records,
        raw=payload,
        raw_format=fmt or "unknown",
        rejected=parsed.rejected,
        source_kind="drop_folder",
    )


def _settled_files(directory: Path, settle_seconds: float) -> list[Path]:
    now = time.time()
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or relative.parts[0].startswith(".") or len(relative.parts) > 2:
            continue
        if path.name.startswith(".") or now - path.stat().st_mtime < settle_seconds:
            continue
        files.append(path)
    return files


def _move(path: Path, target_dir: Path) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        target = target_dir / f"{path.stem}.{int(time.time() * 1000)}{path.suffix}"
    shutil.move(str(path), target)
