"""TM Forum TMF642 Alarm Management v4: alarms raised, updated and cleared by their source.

Accepted bodies: one Alarm (Alarm_Create), a list of them, a hub notification
(AlarmCreateEvent, AlarmAttributeValueChangeEvent, AlarmStateChangeEvent) carrying one,
or a ClearAlarms task (ClearAlarms_Create). An alarm whose `state` or `perceivedSeverity`
is `cleared`, or that has an `alarmClearedTime`, is a clear. A raise is identified, as in
X.733, by alarmed object, alarm type, probable cause and specific problem within its
source system; a clear matches like a ClearAlarms `alarmPattern` (see clear_matching).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from services.alarms import fingerprint
from services.ingest.records import Rejected
from services.ingest.sources.alarms_common import (
    AlarmEvent,
    AlarmFacts,
    ParsedAlarms,
    PayloadRefused,
    Rfc3339,
    decode_json,
    refusal,
    refused,
    source_part,
    text_field,
)

KIND = "tmf642"
SOURCE_PREFIX = f"{KIND}:"
MAX_SYSTEM = 100 - len(SOURCE_PREFIX)
# What a clear must name to find its alarms, in order of preference.
ANCHORS = ("alarmedObject.id", "externalAlarmId", "id")
EVENT_TYPES = ("AlarmCreateEvent", "AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent")
CLEARED = "cleared"

SystemId = text_field(MAX_SYSTEM)
ObjectId = text_field(512)
Name200 = text_field(200)
Short = text_field(32)
OptionalName = Annotated[text_field(200, required=False) | None, Field(default=None)]
OptionalProblem = Annotated[text_field(400, required=False) | None, Field(default=None)]
Refs = list[dict[str, Any]] | None


class AlarmedObject(BaseModel):
    """The managed object an alarm is about; its id is usually a 3GPP DN."""

    model_config = ConfigDict(extra="allow")

    id: ObjectId
    href: str | None = None


class _AlarmFields(BaseModel):
    """Optional attributes of a TMF642 Alarm."""

    model_config = ConfigDict(extra="allow")

    id: str | int | None = Field(default=None, description="Id in the alarm-owning system")
    href: str | None = None
    ackState: str | None = None
    ackSystemId: str | None = None
    ackUserId: str | None = None
    alarmChangedTime: Rfc3339 | None = None
    alarmClearedTime: Rfc3339 | None = None
    alarmDetails: str | None = None
    alarmEscalation: bool | None = None
    alarmReportingTime: Rfc3339 | None = None
    alarmedObjectType: str | None = None
    clearSystemId: str | None = None
    clearUserId: str | None = None
    externalAlarmId: OptionalName
    isRootCause: bool | None = None
    plannedOutageIndicator: str | None = None
    proposedRepairedActions: str | None = None
    reportingSystemId: str | None = None
    serviceAffecting: bool | None = None
    specificProblem: OptionalProblem
    affectedService: Refs = None
    comment: Refs = None
    correlatedAlarm: Refs = None
    crossedThresholdInformation: dict[str, Any] | None = None
    parentAlarm: Refs = None
    place: Refs = None


class Tmf642AlarmCreate(_AlarmFields):
    """TMF642 Alarm_Create: an alarm raised (or updated) at its source, after ITU-T X.733."""

    alarmType: Name200
    perceivedSeverity: Short
    probableCause: Name200
    alarmedObject: AlarmedObject
    sourceSystemId: SystemId
    state: Short
    alarmRaisedTime: Rfc3339


class Tmf642AlarmClear(_AlarmFields):
    """A clear: an Alarm or Alarm_Update marked cleared, or one ClearAlarms alarmPattern."""

    alarmType: OptionalName
    perceivedSeverity: str | None = None
    probableCause: OptionalName
    alarmedObject: AlarmedObject | None = None
    sourceSystemId: Annotated[text_field(MAX_SYSTEM, required=False) | None, Field(default=None)]
    state: str | None = None
    alarmRaisedTime: Rfc3339 | None = None

    @model_validator(mode="after")
    def _names_a_target(self) -> Tmf642AlarmClear:
        if self.alarmedObject is None and not self.externalAlarmId and self.id in (None, ""):
            raise PydanticCustomError(
                "missing_field", "a clear must name alarmedObject.id, externalAlarmId or id"
            )
        return self


class Tmf642ClearAlarms(BaseModel):
    """TMF642 ClearAlarms_Create: clear every alarm matching any of the patterns."""

    model_config = ConfigDict(extra="allow")

    clearSystemId: SystemId
    clearUserId: Name200
    alarmClearedTime: Rfc3339
    state: str | None = None
    alarmPattern: list[Any] = Field(min_length=1)


class Tmf642ClearAlarmsBody(Tmf642ClearAlarms):
    """A ClearAlarms task as POSTed (documentation model)."""

    alarmPattern: list[Tmf642AlarmClear] = Field(min_length=1)  # type: ignore[assignment]


class Tmf642EventPayload(BaseModel):
    """The alarm a notification carries."""

    alarm: dict[str, Any] = Field(description="A Tmf642AlarmCreate or a Tmf642AlarmClear")


class Tmf642Event(BaseModel):
    """A TMF642 hub notification about one alarm."""

    model_config = ConfigDict(extra="allow")

    eventId: str | None = None
    eventTime: str | None = None
    eventType: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    event: Tmf642EventPayload


class Tmf642Payload(
    RootModel[
        Tmf642AlarmCreate
        | Tmf642AlarmClear
        | Tmf642ClearAlarmsBody
        | Tmf642Event
        | Annotated[
            list[dict[str, Any]],
            Field(description="Alarms or notifications, each as above; one source system"),
        ]
    ]
):
    """What POST /alarms/tmf642 accepts: an alarm, a list, a notification or a ClearAlarms."""


def parse_tmf642(raw: bytes) -> ParsedAlarms:
    """Parse a TMF642 body: one event per valid alarm or pattern, a refusal per invalid one."""
    try:
        body = decode_json(raw)
    except PayloadRefused as refusal_:
        return _whole(None, refusal_.rejected)
    if isinstance(body, dict) and "alarmPattern" in body:
        return _parse_clear_alarms(body)
    if not isinstance(body, dict | list):
        return _whole(
            None,
            refused(
                "schema_invalid",
                "the body must be a TMF642 Alarm, a list of alarms, an alarm event or a "
                "ClearAlarms task",
                record={"payload": body},
            ),
        )
    items = [body] if isinstance(body, dict) else body
    system = _first_system(items)
    parsed = ParsedAlarms(kind=KIND, source=_source(system))
    for index, item in enumerate(items):
        record = {"index": index, "item": item}
        outcome = _item(index, item, system=system)
        if isinstance(outcome, Rejected):
            parsed.rejected.append(_with_record(outcome, record))
        else:
            parsed.events.append(outcome)
    return parsed


def _item(index: int, item: Any, *, system: str | None) -> AlarmEvent | Rejected:
    alarm = _unwrap(item)
    if isinstance(alarm, Rejected):
        return alarm
    own = source_part(alarm.get("sourceSystemId"), max_length=MAX_SYSTEM)
    if own is not None and system is not None and own != system:
        return refused(
            "mixed_sources",
            f"[{index}] sourceSystemId {own!r} differs from the batch's {system!r}",
            record={},
            where="sourceSystemId",
        )
    try:
        if _is_clear(alarm):
            return _clear(index, Tmf642AlarmClear.model_validate(alarm))
        return _raise(index, Tmf642AlarmCreate.model_validate(alarm), item)
    except ValidationError as error:
        return refusal(error, record={}, prefix=f"[{index}]")


def _parse_clear_alarms(body: dict[str, Any]) -> ParsedAlarms:
    try:
        task = Tmf642ClearAlarms.model_validate(body)
    except ValidationError as error:
        return _whole(body.get("clearSystemId"), refusal(error, record={"payload": body}))
    parsed = ParsedAlarms(kind=KIND, source=_source(task.clearSystemId))
    context = {"clearSystemId": task.clearSystemId, "clearUserId": task.clearUserId}
    for index, item in enumerate(task.alarmPattern):
        record = {"index": index, "item": item, **context}
        try:
            pattern = Tmf642AlarmClear.model_validate(item)
        except ValidationError as error:
            prefix = f"alarmPattern[{index}]"
            parsed.rejected.append(refusal(error, record=record, prefix=prefix))
            continue
        parsed.events.append(_clear(index, pattern, at=task))
    return parsed


def _unwrap(item: Any) -> dict[str, Any] | Rejected:
    """The alarm in an item: the item itself, or the alarm a notification carries."""
    if not isinstance(item, dict):
        return refused("schema_invalid", "an alarm must be a JSON object", record={})
    if "eventType" not in item and "event" not in item:
        return item
    kind = item.get("eventType")
    if kind not in EVENT_TYPES:
        return refused(
            "unsupported_event",
            f"eventType {str(kind)[:60]!r} carries no alarm state Beacon stores; "
            f"send one of {', '.join(EVENT_TYPES)}",
            record={},
            where="eventType",
        )
    event = item.get("event")
    alarm = event.get("alarm") if isinstance(event, dict) else None
    if not isinstance(alarm, dict):
        return refused(
            "missing_field",
            "the notification carries no event.alarm object",
            record={},
            where="event.alarm",
        )
    return alarm


def _is_clear(alarm: dict[str, Any]) -> bool:
    state, severity = alarm.get("state"), alarm.get("perceivedSeverity")
    return (
        (isinstance(state, str) and state.strip().lower() == CLEARED)
        or (isinstance(severity, str) and severity.strip().lower() == CLEARED)
        or alarm.get("alarmClearedTime") is not None
    )


def _raise(index: int, alarm: Tmf642AlarmCreate, item: dict[str, Any]) -> AlarmEvent:
    identity = {
        "alarmedObject.id": alarm.alarmedObject.id,
        "alarmType": alarm.alarmType,
        "probableCause": alarm.probableCause,
        "specificProblem": alarm.specificProblem or "",
    }
    labels = {
        "sourceSystemId": alarm.sourceSystemId,
        **{k: v for k, v in identity.items() if v},
        **_present(
            externalAlarmId=alarm.externalAlarmId,
            id=alarm.id,
            alarmedObjectType=alarm.alarmedObjectType,
        ),
    }
    facts = AlarmFacts(
        key=fingerprint(identity),
        severity=alarm.perceivedSeverity,
        raised_at=alarm.alarmRaisedTime,
        element_ref=alarm.alarmedObject.id,
        text=alarm.alarmDetails or alarm.specificProblem or alarm.probableCause,
        probable_cause=alarm.probableCause,
        specific_problem=alarm.specificProblem,
        external_id=alarm.externalAlarmId,
        labels=labels,
        raw=item,
    )
    return AlarmEvent(index=index, action="raise", facts=facts)


def _clear(
    index: int, clear: Tmf642AlarmClear, *, at: Tmf642ClearAlarms | None = None
) -> AlarmEvent:
    pattern = _present(
        sourceSystemId=clear.sourceSystemId,
        **{"alarmedObject.id": clear.alarmedObject.id if clear.alarmedObject else None},
        alarmType=clear.alarmType,
        probableCause=clear.probableCause,
        specificProblem=clear.specificProblem,
        externalAlarmId=clear.externalAlarmId,
        id=clear.id,
    )
    anchor = next(name for name in ANCHORS if name in pattern)
    cleared_at = at.alarmClearedTime if at else clear.alarmClearedTime or clear.alarmChangedTime
    return AlarmEvent(
        index=index, action="clear", cleared_at=cleared_at, pattern=pattern, anchor=anchor
    )


def _present(**values: Any) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v not in (None, "")}


def _first_system(items: list[Any]) -> str | None:
    """The source system of a batch: the first sourceSystemId it names."""
    for item in items:
        alarm = _unwrap(item)
        if isinstance(alarm, dict):
            system = source_part(alarm.get("sourceSystemId"), max_length=MAX_SYSTEM)
            if system:
                return system
    return None


def _with_record(rejected: Rejected, record: dict[str, Any]) -> Rejected:
    return Rejected(
        rejected.reason_code, record=record, reason=rejected.reason, field=rejected.field
    )


def _source(system: Any) -> str:
    return SOURCE_PREFIX + (source_part(system, max_length=MAX_SYSTEM) or "unknown")


def _whole(system: Any, rejected: Rejected) -> ParsedAlarms:
    return ParsedAlarms(kind=KIND, source=_source(system), rejected=[rejected], refused_whole=True)
