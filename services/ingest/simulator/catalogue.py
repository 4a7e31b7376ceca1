"""KPI catalogue of the simulated network: names, units, valid ranges and thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

CELL = "cell"
LINK = "link"
CORE = "core"


@dataclass(frozen=True)
class KpiSpec:
    """One measured KPI: unit, valid range, direction and capacity threshold."""

    name: str
    unit: str
    element_type: str
    valid_min: float
    valid_max: float
    higher_is_worse: bool
    capacity_threshold: float | None
    criticality: int
    description: str

    def __post_init__(self) -> None:
        if self.valid_min >= self.valid_max:
            raise ValueError(f"{self.name}: valid_min must be below valid_max")
        if self.criticality not in (1, 2, 3):
            raise ValueError(f"{self.name}: criticality must be 1, 2 or 3")


KPI_CATALOGUE: tuple[KpiSpec, ...] = (
    KpiSpec(
        "prb_util_dl", "%", CELL, 0.0, 100.0, True, 80.0, 3,
        "Downlink physical resource block utilisation",
    ),
    KpiSpec(
        "prb_util_ul", "%", CELL, 0.0, 100.0, True, 80.0, 2,
        "Uplink physical resource block utilisation",
    ),
    KpiSpec(
        "active_users", "count", CELL, 0.0, 2000.0, True, None, 2,
        "Mean number of RRC-connected users with data in the buffer",
    ),
    KpiSpec(
        "dl_throughput_mbps", "Mbps", CELL, 0.0, 2000.0, False, None, 2,
        "Downlink cell throughput served",
    ),
    KpiSpec(
        "rrc_setup_sr", "%", CELL, 0.0, 100.0, False, None, 3,
        "RRC connection setup success rate",
    ),
    KpiSpec(
        "erab_drop_rate", "%", CELL, 0.0, 100.0, True, None, 3,
        "Share of established bearers dropped abnormally",
    ),
    KpiSpec(
        "link_util", "%", LINK, 0.0, 100.0, True, 70.0, 3,
        "Backhaul link utilisation (busiest direction)",
    ),
    KpiSpec(
        "latency_ms", "ms", LINK, 0.0, 1000.0, True, None, 2,
        "Round-trip latency across the backhaul link",
    ),
    KpiSpec(
        "packet_loss_pct", "%", LINK, 0.0, 100.0, True, None, 3,
        "Packet loss across the backhaul link",
    ),
    KpiSpec(
        "cpu_util", "%", CORE, 0.0, 100.0, True, 85.0, 3,
        "Mean CPU utilisation of the core network function",
    ),
    KpiSpec(
        "sessions", "count", CORE, 0.0, 5e6, True, None, 2,
        "Active sessions or UE contexts on the core network function",
    ),
)  # fmt: skip


def kpi_names(element_type: str) -> tuple[str, ...]:
    """Names of the catalogue KPIs measured on one element type, in catalogue order."""
    return tuple(k.name for k in KPI_CATALOGUE if k.element_type == element_type)


def kpi_spec(name: str) -> KpiSpec:
    """The catalogue entry for a KPI name."""
    for spec in KPI_CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(name)


def catalogue_frame() -> pd.DataFrame:
    """The catalogue as a DataFrame, one row per KPI."""
    return pd.DataFrame([asdict(k) for k in KPI_CATALOGUE])
