"""ONAP VES event ingestion (VES 5.x and 7.x), as the collector's HTTP endpoints receive it.

`receive` takes one request body and answers what the collector would: 202 with no body
when accepted, or a VES `requestError` when refused. Whatever the answer, the payload is
kept: accepted events are stored (measurements, alarms, heartbeats) or quarantined with a
reason, and a refused payload is quarantined whole with its reason code.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.db import Database
from services.db.models import utcnow
from services.ingest.sources import ves_errors as errors
from services.ingest.sources.ves_errors import VesError, VesRefusal
from services.ingest.sources.ves_parse import parse_request
from services.ingest.sources.ves_schema import SchemaConfigError
from services.ingest.sources.ves_store import store_refusal, store_request

SCHEMA_DIR_ENV = "BEACON_VES_SCHEMA_DIR"
MAX_BODY_BYTES = 10 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VesAnswer:
    """What to send back: the status, the VES error body (None for 202) and the batches."""

    status: int
    body: dict[str, Any] | None
    batch_ids: tuple[int, ...] = ()


def schema_dir(configured: Path | None = None) -> Path | None:
    """The ONAP schema folder: from the settings when set, else BEACON_VES_SCHEMA_DIR now."""
    if configured is not None:
        return configured
    raw = os.environ.get(SCHEMA_DIR_ENV, "").strip()
    return Path(raw).expanduser().resolve() if raw else None


def receive(
    db: Database,
    *,
    body: bytes,
    api_version: str,
    batch: bool,
    caller: str | None,
    schemas: Path | None,
    received_at: datetime | None = None,
) -> VesAnswer:
    """Validate and store one VES request body; the answer the sender gets."""
    received_at = received_at or utcnow()
    try:
        request = parse_request(body, api_version=api_version, batch=batch, schema_dir=schemas)
    except VesRefusal as refusal:
        batch_id = store_refusal(db, refusal, body=body, received_at=received_at, caller=caller)
        return VesAnswer(refusal.error.status, refusal.error.body(), (batch_id,))
    except SchemaConfigError as exc:
        # The operator's schema folder is broken: say so loudly, keep the payload for replay.
        log.error("VES schema folder unusable: %s", exc)
        return _failed(db, body, exc, api_version=api_version, caller=caller, at=received_at)
    except Exception as exc:  # a parser bug must not lose the payload
        log.exception("VES payload could not be read")
        return _failed(db, body, exc, api_version=api_version, caller=caller, at=received_at)
    batch_ids = store_request(db, request, body=body, received_at=received_at)
    return VesAnswer(202, None, tuple(batch_ids))


def refuse_oversized(
    db: Database,
    *,
    length: int | None,
    api_version: str,
    batch: bool,
    caller: str | None,
    received_at: datetime | None = None,
) -> VesAnswer:
    """413 for a body over the limit; its size is recorded, its bytes are not kept."""
    refusal = VesRefusal(
        "payload_too_large",
        errors.too_large(),
        facts={
            "api_version": errors.clip(api_version, 40),
            "endpoint": "eventBatch" if batch else "event",
            "content_length": length,
            "limit_bytes": MAX_BODY_BYTES,
        },
    )
    batch_id = store_refusal(
        db, refusal, body=b"", received_at=received_at or utcnow(), caller=caller
    )
    return VesAnswer(413, refusal.error.body(), (batch_id,))


def _failed(
    db: Database,
    body: bytes,
    exc: Exception,
    *,
    api_version: str,
    caller: str | None,
    at: datetime,
) -> VesAnswer:
    error: VesError = errors.internal_error()
    refusal = VesRefusal(
        "internal_error",
        error,
        facts={
            "api_version": errors.clip(api_version, 40),
            "detail": errors.clip(f"{type(exc).__name__}: {exc}"),
        },
    )
    batch_id = store_refusal(db, refusal, body=body, received_at=at, caller=caller)
    return VesAnswer(error.status, error.body(), (batch_id,))
