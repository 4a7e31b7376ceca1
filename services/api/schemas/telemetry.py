"""Models of the telemetry push endpoint."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TelemetryQuery(BaseModel):
    """Where pushed telemetry is booked."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
        description="Source name; default `push:<token name>`.",
    )


class IngestSummary(BaseModel):
    """What happened to one pushed batch (received = accepted + duplicates + quarantined)."""

    batch_id: int
    source: str
    received: int
    accepted: int
    duplicates: int
    corrections: int
    quarantined: int
    late: int
    new_elements: int
    reasons: dict[str, int]
