"""API views, one module per area; importing this package registers their routes."""

from services.api.views import (
    admin,
    adoption,
    alarms,
    anomalies,
    audit,
    change_windows,
    disagreements,
    forecasts,
    incidents,
    inventory,
    meta,
    oncall,
    recommendations,
    telemetry,
    use_cases,
)

__all__ = [
    "admin",
    "adoption",
    "alarms",
    "anomalies",
    "audit",
    "change_windows",
    "disagreements",
    "forecasts",
    "incidents",
    "inventory",
    "meta",
    "oncall",
    "recommendations",
    "telemetry",
    "use_cases",
]
