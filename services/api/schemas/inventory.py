"""Models of the network inventory, the KPI catalogue and the data sources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from services.api.schemas.common import PageInfo, PageQuery, UtcDateTime


class KpiOut(BaseModel):
    """One KPI of the catalogue."""

    name: str
    unit: str
    element_type: str = Field(description="Element type the KPI is measured on")
    valid_min: float | None = Field(description="Lowest plausible value; below is quarantined")
    valid_max: float | None = Field(description="Highest plausible value; above is quarantined")
    direction: Literal["higher_is_worse", "higher_is_better"]
    capacity_threshold: float | None = Field(description="Level at which capacity is exhausted")
    criticality: int = Field(ge=1, le=3, description="1 low .. 3 high")
    description: str


class KpiList(BaseModel):
    """The KPI catalogue, by name."""

    items: list[KpiOut]


class ElementQuery(PageQuery):
    """Filters of the inventory; all given filters must match."""

    element_type: str | None = Field(default=None, max_length=16, examples=["cell"])
    domain: str | None = Field(default=None, max_length=16, examples=["RAN"])
    region: str | None = Field(default=None, max_length=64)
    vendor: str | None = Field(default=None, max_length=64)
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Case-insensitive substring of the distinguished name or the name",
    )
    new: bool | None = Field(default=None, description="Only elements without (or with) a baseline")


class ElementOut(BaseModel):
    """A managed network object."""

    id: int
    dn: str = Field(description="3GPP-style distinguished name")
    name: str
    element_type: str
    vendor: str | None
    sw_version: str | None
    technology: str | None
    domain: str
    region: str | None
    parent_id: int | None
    new: bool = Field(description="True while the element has no baseline of its own")
    first_seen: UtcDateTime
    last_seen: UtcDateTime | None
    attributes: dict[str, Any]


class ElementPage(PageInfo):
    """One page of the inventory, ordered by distinguished name."""

    items: list[ElementOut]


class SourceOut(BaseModel):
    """A data source and how fresh its data is."""

    id: int
    name: str
    kind: str
    status: Literal["fresh", "stale", "unknown", "disabled"]
    newest_period: UtcDateTime | None = Field(description="Newest period end accepted")
    last_received_at: UtcDateTime | None
    age_seconds: float | None = Field(description="Seconds since the last delivery")
    stale_after_s: int = Field(description="Age at which the source counts as stale")
    batches_24h: int
    records_24h: int
    quarantined_24h: int


class SourceList(BaseModel):
    """Every source, by name."""

    items: list[SourceOut]
