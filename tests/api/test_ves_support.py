"""Helpers shared by the VES endpoint tests (this module holds no tests of its own)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from testkit import SHARED_DATA
from werkzeug.test import TestResponse

from services.db import Database
from services.db.models import IngestBatch, QuarantinedRecord

VES_DATA = SHARED_DATA / "ves"
SCHEMA_DIR = VES_DATA / "dcaegen2-collectors-ves" / "etc"
RESOURCES = VES_DATA / "dcaegen2-collectors-ves" / "src" / "test" / "resources"
SCHEMA_ENV = "BEACON_VES_SCHEMA_DIR"


def load(path: Path) -> dict[str, Any]:
    """A sample file as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def post(
    client: FlaskClient,
    token: str | None,
    body: bytes | dict[str, Any],
    *,
    version: str = "v7",
    batch: bool = False,
    basic: bool = False,
) -> TestResponse:
    """POST a body to the collector endpoint as a VES sender would."""
    headers = {}
    if token is not None:
        if basic:
            pair = base64.b64encode(f"ves-sender:{token}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        else:
            headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = f"/eventListener/{version}" + ("/eventBatch" if batch else "")
    return client.post(url, data=data, headers=headers, content_type="application/json")


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a single-event or batch body."""
    if "eventList" in document:
        return list(document["eventList"])
    return [document["event"]]


def redate(document: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """A copy whose events all happened at `at` (sample files are years old)."""
    fresh = copy.deepcopy(document)
    micros = int(at.timestamp() * 1_000_000)
    for event in events_of(fresh):
        event["commonEventHeader"]["startEpochMicrosec"] = micros
        event["commonEventHeader"]["lastEpochMicrosec"] = micros
    return fresh


def now_minute() -> datetime:
    """The current time on a whole minute (a clean period end)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def last_batch_id(db: Database) -> int:
    """The newest batch id (0 when none): batches above it belong to the next request."""
    with db.session() as session:
        return int(session.scalar(select(func.max(IngestBatch.id))) or 0)


def batches_after(db: Database, batch_id: int) -> list[IngestBatch]:
    """Batches created after `batch_id`, oldest first."""
    with db.session() as session:
        query = select(IngestBatch).where(IngestBatch.id > batch_id).order_by(IngestBatch.id)
        return list(session.scalars(query))


def quarantine_of(db: Database, batch_ids: list[int]) -> list[QuarantinedRecord]:
    """The quarantined records of these batches."""
    with db.session() as session:
        query = select(QuarantinedRecord).where(QuarantinedRecord.batch_id.in_(batch_ids))
        return list(session.scalars(query.order_by(QuarantinedRecord.id)))


def assert_conserved(db: Database) -> None:
    """Every batch row: done, and received = accepted + duplicates + quarantined."""
    with db.session() as session:
        for batch in session.scalars(select(IngestBatch)):
            assert batch.status == "done", (batch.id, batch.status, batch.error)
            total = batch.accepted + batch.duplicates + batch.quarantined
            assert batch.received == total, (batch.id, batch.raw_format, batch.received, total)
            quarantined = session.scalar(
                select(func.count())
                .select_from(QuarantinedRecord)
                .where(QuarantinedRecord.batch_id == batch.id)
            )
            assert quarantined == batch.quarantined, (batch.id, quarantined, batch.quarantined)


def ves_error(response: TestResponse, status: int, message_id: str) -> dict[str, Any]:
    """Check a VES error answer and return its exception object."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    assert set(body) == {"requestError"}
    (kind, detail), *rest = body["requestError"].items()
    assert not rest
    assert kind in ("serviceException", "policyException")
    assert detail["messageId"] == message_id, detail
    assert isinstance(detail["text"], str)
    assert detail["text"]
    assert "Traceback" not in response.get_data(as_text=True)
    return detail
