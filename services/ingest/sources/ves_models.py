"""Typed views of the VES fields Beacon reads (pydantic v2); other fields pass untouched.

These models are Beacon's contract whether or not the Common Event Format schema is
configured: a field Beacon uses must be present, non-empty and of a usable type. Fields
Beacon does not read are not checked here (the CEF schema checks them when configured).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

# Domain -> the block of fields that carries its content.
MEASUREMENT_BLOCKS = {
    "measurement": "measurementFields",  # VES 7.x
    "measurementsForVfScaling": "measurementsForVfScalingFields",  # VES 5.x
}
ALARM_BLOCKS = {"fault": "faultFields", "thresholdCrossingAlert": "thresholdCrossingAlertFields"}
BLOCKS = {
    **MEASUREMENT_BLOCKS,
    **ALARM_BLOCKS,
    "heartbeat": "heartbeatFields",
    "stndDefined": "stndDefinedFields",
}
# Domains Beacon accepts but stores nothing from (kept in quarantine as unsupported_event).
OTHER_DOMAINS = frozenset(
    {
        "mobileFlow",
        "notification",
        "other",
        "perf3gpp",
        "pnfRegistration",
        "sipSignaling",
        "stateChange",
        "syslog",
        "voiceQuality",
    }
)
KNOWN_DOMAINS = frozenset(BLOCKS) | OTHER_DOMAINS
# A block may be absent only for these domains (VES 5.x heartbeats carry no fields).
OPTIONAL_BLOCKS = frozenset({"heartbeat"})

# Events dated before this, or more than a day after arrival, carry an implausible time.
PLAUSIBLE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
MAX_EPOCH_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def _not_bool(value: Any) -> Any:
    # JSON true/false must not pass as 1/0 where Beacon expects a number.
    if isinstance(value, bool):
        raise ValueError("a number is required, not a boolean")
    return value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
# sourceName becomes an element DN and name: 200 characters leave room for an instance part.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Epoch = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]
Severity = Annotated[
    Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "NORMAL"], BeforeValidator(_upper)
]
Scalar = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CommonEventHeader(_Model):
    """The header fields Beacon uses: what happened, where, when, and who reported it."""

    domain: Text
    eventId: Text
    sourceName: Name
    startEpochMicrosec: Epoch
    lastEpochMicrosec: Epoch
    eventName: str | None = None
    reportingEntityName: str | None = None
    vesEventListenerVersion: str | None = None
    stndDefinedNamespace: str | None = None
    nfVendorName: str | None = None

    @property
    def reporter(self) -> str:
        """The sending entity: reportingEntityName, or sourceName when that is blank."""
        name = (self.reportingEntityName or "").strip()
        return name or self.sourceName


class FaultFields(_Model):
    """A fault: alarmCondition on sourceName (+ alarmInterfaceA); NORMAL clears it."""

    alarmCondition: Text
    eventSeverity: Severity
    specificProblem: str | None = None
    alarmInterfaceA: str | None = None
    eventSourceType: str | None = None
    eventCategory: str | None = None
    vfStatus: str | None = None
    alarmAdditionalInformation: dict[str, Any] | list[Any] | None = None


class ThresholdCrossingAlertFields(_Model):
    """A threshold crossing: SET raises (CONT repeats), CLEAR clears."""

    alertAction: Annotated[Literal["SET", "CONT", "CLEAR"], BeforeValidator(_upper)]
    alertDescription: Text
    eventSeverity: Severity
    alertType: str | None = None
    alertValue: str | int | float | None = None
    interfaceName: str | None = None
    elementType: str | None = None
    networkService: str | None = None
    possibleRootCause: str | None = None
    additionalParameters: list[Any] | None = None


class HeartbeatFields(_Model):
    """How often the sender promises a heartbeat (seconds, up to a week)."""

    heartbeatInterval: (
        Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=604_800)] | None
    ) = None


class StndDefinedFields(_Model):
    """A standards-defined notification and the schema it claims to follow."""

    data: dict[str, Any]
    schemaReference: str | None = None


class NameValue(_Model):
    """One `{name, value}` pair (VES 5.x arrayOfFields)."""

    name: Text
    value: Scalar = None


class NamedMeasurements(_Model):
    """One additionalMeasurements entry: VES 7.x hashMap or VES 5.x arrayOfFields."""

    name: Text
    hashMap: dict[str, Scalar] | None = None
    arrayOfFields: list[NameValue] | None = None

    def pairs(self) -> list[tuple[str, Scalar]]:
        """The (field, value) pairs, whichever of the two shapes was sent."""
        found = list((self.hashMap or {}).items())
        found += [(item.name, item.value) for item in self.arrayOfFields or []]
        return found


Items = list[dict[str, Any]] | None


class MeasurementFields(_Model):
    """measurementFields (7.x) / measurementsForVfScalingFields (5.x): the parts Beacon reads."""

    additionalMeasurements: list[NamedMeasurements] | None = None
    cpuUsageArray: Items = None
    memoryUsageArray: Items = None
    nicPerformanceArray: Items = None
    vNicPerformanceArray: Items = None
    diskUsageArray: Items = None
    filesystemUsageArray: Items = None
    hugePagesArray: Items = None
    processStatsArray: Items = None
    machineCheckExceptionArray: Items = None
    loadArray: Items = None
    codecUsageArray: Items = None


BLOCK_MODELS: dict[str, type[_Model]] = {
    **dict.fromkeys(MEASUREMENT_BLOCKS, MeasurementFields),
    "fault": FaultFields,
    "thresholdCrossingAlert": ThresholdCrossingAlertFields,
    "heartbeat": HeartbeatFields,
    "stndDefined": StndDefinedFields,
}


def epoch_datetime(microseconds: float) -> datetime | None:
    """A VES epoch (microseconds) as UTC, or None when it lies outside years 1970-9999."""
    if not 0 <= microseconds <= MAX_EPOCH_US:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(microseconds))


def event_time(microseconds: float, *, received_at: datetime) -> tuple[datetime, bool]:
    """The event's time, or the arrival time when the event's is implausible (and a flag)."""
    moment = epoch_datetime(microseconds)
    if moment is None or not PLAUSIBLE_FROM <= moment <= received_at + timedelta(days=1):
        return received_at, False
    return moment, True
