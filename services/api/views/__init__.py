"""API views, one module per area; importing this package registers their routes."""

from services.api.views import (
    admin,
    alarms,
    anomalies,
    audit,
    forecasts,
    inventory,
    meta,
    telemetry,
)

__all__ = ["admin", "alarms", "anomalies", "audit", "forecasts", "inventory", "meta", "telemetry"]
