"""Prometheus Alertmanager webhook (version 4): each alert raises or clears one alarm.

An alert is identified by its whole label set, as in Alertmanager itself: Beacon
computes the fingerprint from the labels rather than trusting the sender's `fingerprint`
(kept as the external id), so the `resolved` notification with the same labels clears it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.alarms import fingerprint
from services.ingest.sources.alarms_common import (
    AlarmEvent,
    AlarmFacts,
    ParsedAlarms,
    PayloadRefused,
    Rfc3339,
    clip,
    decode_json,
    refusal,
    refused,
    source_part,
    text_field,
)

KIND = "alertmanager"
SOURCE_PREFIX = f"{KIND}:"
# Source names are at most 100 characters; a longer receiver name is cut to fit.
MAX_RECEIVER = 100 - len(SOURCE_PREFIX)
# Labels naming the network element, most specific first.
ELEMENT_LABELS = ("dn", "element", "instance")

LabelSet = dict[str, str]
Receiver = text_field(1000)


class AlertmanagerAlert(BaseModel):
    """One alert of a notification; its labels identify it."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: LabelSet = Field(
        min_length=1,
        description="Identify the alert; `severity`, `alertname`, `dn`/`element`/`instance` "
        "are read",
    )
    annotations: LabelSet = Field(
        default_factory=dict, description="`summary` and `description` become the alarm text"
    )
    startsAt: Rfc3339 = Field(description="When the alert started firing (RFC 3339)")
    endsAt: Rfc3339 | None = Field(
        default=None, description="When a resolved alert ended; the clear time"
    )
    generatorURL: str = ""
    fingerprint: str | None = Field(default=None, description="Kept as the external id")


class AlertmanagerEnvelope(BaseModel):
    """The notification around the alerts; alerts are validated one by one."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = ""
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"] | None = None
    receiver: Receiver = Field(description="Names the Beacon source: `alertmanager:<receiver>`")
    groupLabels: LabelSet = Field(default_factory=dict)
    commonLabels: LabelSet = Field(default_factory=dict)
    commonAnnotations: LabelSet = Field(default_factory=dict)
    externalURL: str = ""
    notification_reason: str | None = None
    alerts: list[Any]


class AlertmanagerWebhook(AlertmanagerEnvelope):
    """Alertmanager's webhook notification (version 4), as POSTed by its webhook receiver."""

    alerts: list[AlertmanagerAlert]  # type: ignore[assignment]


def parse_alertmanager(raw: bytes) -> ParsedAlarms:
    """Parse a webhook body: one event per valid alert, a refusal per invalid one."""
    try:
        body = decode_json(raw)
    except PayloadRefused as refusal_:
        return _whole(None, refusal_.rejected)
    receiver = body.get("receiver") if isinstance(body, dict) else None
    if not isinstance(body, dict):
        return _whole(
            None,
            refused(
                "schema_invalid",
                "the body must be a JSON object: an Alertmanager webhook notification",
                record={"payload": body},
            ),
        )
    if body.get("version", "4") != "4":
        return _whole(
            receiver,
            refused(
                "unsupported_format",
                f"webhook version {str(body.get('version'))[:20]!r} is not supported; "
                "Beacon reads version 4",
                record={"payload": body},
                where="version",
            ),
        )
    try:
        envelope = AlertmanagerEnvelope.model_validate(body)
    except ValidationError as error:
        return _whole(receiver, refusal(error, record={"payload": body}))
    parsed = ParsedAlarms(
        kind=KIND,
        source=_source(envelope.receiver),
        meta={"truncated_alerts": envelope.truncatedAlerts, "group_key": envelope.groupKey},
    )
    for index, item in enumerate(envelope.alerts):
        record = {"index": index, "item": item}
        try:
            alert = AlertmanagerAlert.model_validate(item)
        except ValidationError as error:
            parsed.rejected.append(refusal(error, record=record, prefix=f"alerts[{index}]"))
            continue
        if alert.startsAt.year == 1:
            # Go's zero time: the sender never set it.
            parsed.rejected.append(
                refused(
                    "bad_timestamp",
                    f"alerts[{index}].startsAt is the zero time",
                    record=record,
                    where="startsAt",
                )
            )
            continue
        parsed.events.append(_event(index, alert, item))
    return parsed


def _event(index: int, alert: AlertmanagerAlert, item: dict[str, Any]) -> AlarmEvent:
    labels, notes = alert.labels, alert.annotations
    element = next((labels[name] for name in ELEMENT_LABELS if labels.get(name)), None)
    facts = AlarmFacts(
        key=fingerprint(labels),
        severity=labels.get("severity", ""),
        raised_at=alert.startsAt,
        element_ref=clip(element, 512),
        text=notes.get("description") or notes.get("summary") or labels.get("alertname", ""),
        probable_cause=clip(labels.get("alertname"), 200),
        specific_problem=clip(notes.get("summary"), 400),
        external_id=clip(alert.fingerprint, 200),
        labels=dict(labels),
        raw=item,
    )
    if alert.status == "firing":
        return AlarmEvent(index=index, action="raise", facts=facts)
    # Go's zero time means "not set": the clear time is then the time of arrival.
    ended = alert.endsAt if alert.endsAt is not None and alert.endsAt.year > 1 else None
    return AlarmEvent(index=index, action="clear", facts=facts, cleared_at=ended)


def _source(receiver: Any) -> str:
    return SOURCE_PREFIX + (source_part(receiver, max_length=MAX_RECEIVER) or "unknown")


def _whole(receiver: Any, rejected: Any) -> ParsedAlarms:
    return ParsedAlarms(
        kind=KIND, source=_source(receiver), rejected=[rejected], refused_whole=True
    )
