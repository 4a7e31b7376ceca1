"""Alarms from fault management: Alertmanager and TMF642 receivers, and the alarm list.

Both receivers keep the body as a raw batch before anything else, so even a body that
is not JSON is kept in quarantine with its reason. The answer is 200 with a summary when
at least one item was accepted or recognised as a duplicate (or the payload held none);
400 when the body is not JSON and 422 when nothing in it could be used, both in the error
shape with the summary (including `batch_id`) in `details`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import request

from services import alarms as alarm_store
from services.api.blueprint import api, endpoint
from services.api.errors import MalformedBody
from services.api.schemas.alarms import (
    AlarmDetail,
    AlarmIngestSummary,
    AlarmOut,
    AlarmPage,
    AlarmPath,
    AlarmQuery,
    request_body,
)
from services.auth import Scope
from services.db.models import Alarm
from services.errors import BeaconError
from services.ingest.sources.alarms_alertmanager import AlertmanagerWebhook, parse_alertmanager
from services.ingest.sources.alarms_batch import AlarmBatchSummary, ingest_alarms
from services.ingest.sources.alarms_common import ParsedAlarms
from services.ingest.sources.alarms_tmf642 import Tmf642Payload, parse_tmf642
from services.web.context import beacon

ALERTMANAGER_BODY = request_body(
    AlertmanagerWebhook,
    description="Alertmanager webhook notification, version 4 (`webhook_configs` receiver).",
)
TMF642_BODY = request_body(
    Tmf642Payload,
    description=(
        "A TMF642 Alarm (Alarm_Create), a list of alarms, a hub notification carrying one, "
        "or a ClearAlarms task. An alarm with state or perceivedSeverity `cleared`, or with "
        "alarmClearedTime, is a clear."
    ),
)


class PayloadQuarantined(BeaconError):
    """Nothing in a delivery could be used; every item is in quarantine."""

    status = 422
    code = "payload_quarantined"


@api.post("/alarms/alertmanager")
@endpoint(
    scope=Scope.INGEST,
    resp=AlarmIngestSummary,
    errors=(400, 413),
    tags=["alarms"],
    raw_body=ALERTMANAGER_BODY,
)
def receive_alertmanager() -> AlarmIngestSummary:
    """Alertmanager webhook: firing alerts raise alarms, resolved alerts clear them."""
    return _receive(parse_alertmanager)


@api.post("/alarms/tmf642")
@endpoint(
    scope=Scope.INGEST,
    resp=AlarmIngestSummary,
    errors=(400, 413),
    tags=["alarms"],
    raw_body=TMF642_BODY,
)
def receive_tmf642() -> AlarmIngestSummary:
    """TMF642 alarms: raise or update, clear by state, severity or ClearAlarms pattern."""
    return _receive(parse_tmf642)


@api.get("/alarms")
@endpoint(scope=Scope.READ, resp=AlarmPage, tags=["alarms"])
def list_alarms(query: AlarmQuery) -> AlarmPage:
    """Alarms newest first; `state=active` lists the open ones."""
    with beacon().db.session() as session:
        rows, total = alarm_store.list_alarms(
            session,
            state=query.state,
            element=query.element,
            limit=query.limit,
            offset=query.offset,
        )
        names = alarm_store.source_names(session, [row.source_id for row in rows])
        return AlarmPage(
            items=[AlarmOut.model_validate(_fields(row, names)) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )


@api.get("/alarms/<int:alarm_id>")
@endpoint(scope=Scope.READ, resp=AlarmDetail, errors=(404,), tags=["alarms"])
def get_alarm(path: AlarmPath) -> AlarmDetail:
    """One alarm with the last notification received about it."""
    with beacon().db.session() as session:
        alarm = alarm_store.get_alarm(session, path.alarm_id)
        names = alarm_store.source_names(session, [alarm.source_id])
        return AlarmDetail.model_validate({**_fields(alarm, names), "raw": alarm.raw or {}})


def _receive(parser: Callable[[bytes], ParsedAlarms]) -> AlarmIngestSummary:
    raw = request.get_data(cache=True)
    summary = ingest_alarms(beacon().db, parsed=parser(raw), raw=raw)
    body = _summary(summary)
    details = body.model_dump(mode="json")
    if summary.refused_whole:
        first = summary.problems[0]
        if first["reason_code"] == "malformed_payload":
            raise MalformedBody(first["reason"], details=details)
        raise PayloadQuarantined(first["reason"], details=details)
    if summary.received and not (summary.accepted or summary.duplicates):
        reasons = ", ".join(f"{code} {n}" for code, n in sorted(summary.reasons.items()))
        raise PayloadQuarantined(
            f"none of the {summary.received} items was accepted; all are quarantined ({reasons})",
            details=details,
        )
    return body


def _summary(summary: AlarmBatchSummary) -> AlarmIngestSummary:
    fields = summary.as_dict()
    fields.pop("refused_whole")
    return AlarmIngestSummary.model_validate(fields)


def _fields(alarm: Alarm, names: dict[int, str]) -> dict[str, object]:
    return {
        "id": alarm.id,
        "state": alarm.state,
        "severity": alarm.severity,
        "element_ref": alarm.element_ref,
        "element_id": alarm.element_id,
        "text": alarm.text,
        "probable_cause": alarm.probable_cause,
        "specific_problem": alarm.specific_problem,
        "raised_at": alarm.raised_at,
        "cleared_at": alarm.cleared_at,
        "source": names.get(alarm.source_id) if alarm.source_id is not None else None,
        "external_id": alarm.external_id,
        "labels": alarm.labels or {},
    }
