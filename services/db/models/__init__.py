"""All Beacon tables; importing this module registers every model on Base.metadata."""

from .analytics import Anomaly, AnomalyFeedback, CapacityRisk, Forecast, ForecastPoint
from .base import Base, utcnow
from .incidents import Incident, IncidentChangeWindow, IncidentEvent, IncidentRole, Notification
from .ingest import (
    Alarm,
    DataGap,
    DataHealthEvent,
    IngestBatch,
    PeriodCount,
    QuarantinedRecord,
    Source,
)
from .network import CounterMapping, Element, Kpi, Measurement
from .oncall import (
    EscalationPolicy,
    EscalationStep,
    OncallOverride,
    Ownership,
    Person,
    Rotation,
    RotationMember,
    Team,
    TeamMember,
)
from .ops import JobRun, SchedulerLease
from .security import ApiToken, AuditEvent, KioskToken, Setting, User, UserView
from .trust import (
    ChangeWindow,
    Decision,
    Disagreement,
    Execution,
    MaturityChange,
    Recommendation,
    Review,
    UseCase,
)

__all__ = [
    "Alarm",
    "Anomaly",
    "AnomalyFeedback",
    "ApiToken",
    "AuditEvent",
    "Base",
    "CapacityRisk",
    "ChangeWindow",
    "CounterMapping",
    "DataGap",
    "DataHealthEvent",
    "Decision",
    "Disagreement",
    "Element",
    "EscalationPolicy",
    "EscalationStep",
    "Execution",
    "Forecast",
    "ForecastPoint",
    "Incident",
    "IncidentChangeWindow",
    "IncidentEvent",
    "IncidentRole",
    "IngestBatch",
    "JobRun",
    "KioskToken",
    "Kpi",
    "MaturityChange",
    "Measurement",
    "Notification",
    "OncallOverride",
    "Ownership",
    "PeriodCount",
    "Person",
    "QuarantinedRecord",
    "Recommendation",
    "Review",
    "Rotation",
    "RotationMember",
    "SchedulerLease",
    "Setting",
    "Source",
    "Team",
    "TeamMember",
    "UseCase",
    "User",
    "UserView",
    "utcnow",
]
