"""VES fault and thresholdCrossingAlert events as Beacon alarms.

Identity (the fingerprint) within the sending entity's source:
- fault: sourceName + alarmCondition + alarmInterfaceA (eventName when there is no
  interface); eventSeverity NORMAL clears it, any other severity raises or updates it;
- thresholdCrossingAlert: sourceName + alertDescription + interfaceName (eventName when
  there is none); alertAction CLEAR clears it, SET and CONT raise or update it.

An alarm is raised at the event's startEpochMicrosec and cleared at its lastEpochMicrosec;
a time before 2000 or more than a day ahead of arrival (an epoch sent in milliseconds,
a wrong clock) is replaced by the arrival time and labelled `event_time: implausible`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.alarms import NEW_FACTS, clear_alarm, fingerprint, raise_alarm, record_cleared
from services.ingest.sources.ves_models import (
    FaultFields,
    ThresholdCrossingAlertFields,
    event_time,
)
from services.ingest.sources.ves_parse import VesEvent

ACCEPTED, DUPLICATE = "accepted", "duplicate"
MAX_INFO_LABELS = 50


def apply_alarm(session: Session, *, source_id: int, event: VesEvent, received_at: datetime) -> str:
    """Raise, update or clear the event's alarm: `accepted` (a new fact) or `duplicate`."""
    block = event.block
    if isinstance(block, FaultFields):
        clears = block.eventSeverity == "NORMAL"
        facts = _fault_facts(event, block)
    elif isinstance(block, ThresholdCrossingAlertFields):
        clears = block.alertAction == "CLEAR"
        facts = _threshold_facts(event, block)
    else:
        raise TypeError(f"not an alarm event: {event.domain}")
    raised_at, plausible = event_time(event.header.startEpochMicrosec, received_at=received_at)
    if not plausible:
        facts["labels"]["event_time"] = "implausible; arrival time used"
    facts["labels"] = {k: str(v) for k, v in facts["labels"].items() if v not in (None, "")}
    facts.update(source_id=source_id, raised_at=raised_at, raw=event.raw)
    if not clears:
        change = raise_alarm(session, **facts)
        return ACCEPTED if change.outcome in NEW_FACTS else DUPLICATE
    cleared_at, _ = event_time(event.header.lastEpochMicrosec, received_at=received_at)
    change = clear_alarm(session, source_id=source_id, key=facts["key"], cleared_at=cleared_at)
    if change.outcome == "unmatched" and cleared_at >= raised_at:
        # Keep the episode Beacon missed, so a late copy of its raise is known as stale.
        record_cleared(session, cleared_at=cleared_at, **{**facts, "severity": "indeterminate"})
    return ACCEPTED if change.outcome in NEW_FACTS else DUPLICATE


def _fault_facts(event: VesEvent, block: FaultFields) -> dict[str, Any]:
    header = event.header
    interface = (block.alarmInterfaceA or "").strip()
    where = interface or (header.eventName or "").strip()
    text = (block.specificProblem or "").strip() or block.alarmCondition
    if interface:
        text += f" on {interface}"
    labels = {
        **_header_labels(event),
        "alarmCondition": block.alarmCondition,
        "alarmInterfaceA": interface,
        "eventSourceType": block.eventSourceType,
        "eventCategory": block.eventCategory,
        "vfStatus": block.vfStatus,
        **_additional(block.alarmAdditionalInformation),
    }
    return _facts(
        event,
        key={"source": header.sourceName, "condition": block.alarmCondition, "at": where},
        severity=block.eventSeverity,
        text=text,
        probable_cause=block.alarmCondition,
        specific_problem=block.specificProblem,
        labels=labels,
    )


def _threshold_facts(event: VesEvent, block: ThresholdCrossingAlertFields) -> dict[str, Any]:
    header = event.header
    interface = (block.interfaceName or "").strip()
    where = interface or (header.eventName or "").strip()
    text = block.alertDescription
    if block.alertValue not in (None, ""):
        text += f" = {block.alertValue}"
    if interface:
        text += f" on {interface}"
    labels = {
        **_header_labels(event),
        "alertAction": block.alertAction,
        "alertType": block.alertType,
        "interfaceName": interface,
        "elementType": block.elementType,
        "networkService": block.networkService,
        "possibleRootCause": block.possibleRootCause,
    }
    return _facts(
        event,
        key={"source": header.sourceName, "alert": block.alertDescription, "at": where},
        severity=block.eventSeverity,
        text=text,
        probable_cause=block.alertType or block.alertDescription,
        specific_problem=block.alertDescription,
        labels=labels,
    )


def _facts(
    event: VesEvent,
    *,
    key: dict[str, str],
    severity: str,
    text: str,
    probable_cause: str | None,
    specific_problem: str | None,
    labels: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of raise_alarm, cut to the columns' sizes."""
    return {
        "key": fingerprint(key),
        "severity": severity,
        "element_ref": event.header.sourceName[:512],
        "text": text[:2000],
        "probable_cause": (probable_cause or "")[:200] or None,
        "specific_problem": (specific_problem or "")[:400] or None,
        "external_id": event.header.eventId[:200],
        "labels": labels,
    }


def _header_labels(event: VesEvent) -> dict[str, Any]:
    header = event.header
    return {
        "domain": header.domain,
        "eventName": header.eventName,
        "sourceName": header.sourceName,
        "reportingEntityName": header.reportingEntityName,
        "nfVendorName": header.nfVendorName,
    }


def _additional(info: dict[str, Any] | list[Any] | None) -> dict[str, Any]:
    """alarmAdditionalInformation as `info.<name>` labels (7.x hashMap, 5.x name/value list)."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(info, dict):
        pairs = list(info.items())
    elif isinstance(info, list):
        pairs = [(i.get("name"), i.get("value")) for i in info if isinstance(i, dict)]
    return {f"info.{k}": v for k, v in pairs[:MAX_INFO_LABELS] if k not in (None, "")}
