"""A watched drop folder, polled, for legacy systems that can only write files.

Layout: `<drop dir>/<source name>/<file>` (a file directly in the drop dir belongs to the
source `drop`). A file is taken once it has not changed for a few seconds (so half-written
files wait), stored raw and ingested, then moved to `.done/<date>/` — or to `.failed/`
when processing raised, with the batch kept for replay. A crash between ingesting and
moving only means the file is read again: its records then count as duplicates.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.db import Database
from services.ingest.formats import guess_format, parsers
from services.ingest.pipeline import ingest_records
from services.ingest.records import ParsedPayload, Rejected, empty_records

log = logging.getLogger(__name__)

SETTLE_SECONDS = 5.0
DEFAULT_SOURCE = "drop"
MAX_FILES_PER_POLL = 200


@dataclass
class DropOutcome:
    """What one poll of the folder did."""

    files: int = 0
    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    failed: int = 0

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
            summary = ingest_file(db, path, source=source)
        except Exception:  # the batch is kept raw and marked failed for replay
            log.exception("drop folder: %s failed", path)
            outcome.failed += 1
            _move(path, directory / ".failed")
            continue
        outcome.received += summary.received
        outcome.accepted += summary.accepted
        outcome.quarantined += summary.quarantined
        _move(path, directory / ".done" / datetime.now(UTC).strftime("%Y-%m-%d"))
    return outcome


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
