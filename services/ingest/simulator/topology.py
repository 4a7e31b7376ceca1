"""Simulator configuration and the seeded topology: sites, cells, routers, links, core."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.ingest.simulator import hashrng
from services.ingest.simulator.catalogue import CELL, CORE, LINK, catalogue_frame, kpi_names
from services.ingest.simulator.seasonality import COUNTRIES, PROFILES

SOURCE_ERICSSON = "sim-pm-ericsson"
SOURCE_NOKIA = "sim-pm-nokia"
SOURCE_TRANSPORT = "sim-transport"
SOURCE_CORE = "sim-core"
SOURCES: tuple[str, ...] = (SOURCE_ERICSSON, SOURCE_NOKIA, SOURCE_TRANSPORT, SOURCE_CORE)

# Per RAN vendor: its PM source and its (older, newer) software versions in the field.
RAN_VENDORS: tuple[tuple[str, str, tuple[str, str]], ...] = (
    ("Ericsson", SOURCE_ERICSSON, ("23.Q4", "24.Q2")),
    ("Nokia", SOURCE_NOKIA, ("SRAN23B", "SRAN24A")),
)
TRANSPORT_VENDORS: tuple[tuple[str, str], ...] = (
    ("Cisco", "IOS-XR-7.9.2"),
    ("Juniper", "Junos-23.2R1"),
)
# (name, software, sessions per network active user) of each core network function.
CORE_NODES: tuple[tuple[str, str, float], ...] = (
    ("AMF-01", "PCC-1.32", 1.5),
    ("SMF-01", "PCC-1.32", 1.2),
    ("UPF-01", "PCG-1.32", 0.62),
    ("UPF-02", "PCG-1.32", 0.58),
)
CORE_VENDOR = "Ericsson"
PRB_OVERHEAD_PCT = 1.5  # control channels occupy some PRBs even in an empty cell
PROFILE_SHARES = (0.5, 0.25, 0.25)  # residential, business, mixed
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_TOPOLOGY_STREAM = 11


@dataclass(frozen=True)
class IncidentRates:
    """Expected incidents per element per day, by kind."""

    congestion: float = 0.025
    sleeping_cell: float = 0.005
    link_flap: float = 0.03


@dataclass(frozen=True)
class DefectRates:
    """Probability that one source batch carries each data defect."""

    late: float = 0.006
    out_of_order: float = 0.004
    gap: float = 0.006
    duplicate: float = 0.008
    correction: float = 0.006
    malformed: float = 0.01


@dataclass(frozen=True)
class ScaleShift:
    """A software version that starts reporting throughput in kbit/s some time after start."""

    vendor: str = "Nokia"
    sw_version: str = "SRAN24A"
    after: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=21))
    kpi: str = "dl_throughput_mbps"
    factor: float = 1000.0


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything that determines the simulated network; equal configs give equal data."""

    start: pd.Timestamp
    seed: int = 7
    regions: tuple[str, ...] = ("North", "South", "East", "West")
    sites_per_region: int = 6
    cells_per_site: int = 3
    period: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("15min"))
    tz: str = "Europe/Berlin"
    country: str = "DE"
    nr_share: float = 0.3
    fast_grower_share: float = 0.04
    sites_per_router: int = 4
    incident_rates: IncidentRates = field(default_factory=IncidentRates)
    defect_rates: DefectRates = field(default_factory=DefectRates)
    scale_shift: ScaleShift | None = field(default_factory=ScaleShift)

    def __post_init__(self) -> None:
        start = pd.Timestamp(self.start)
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        object.__setattr__(self, "start", start.tz_convert("UTC"))
        object.__setattr__(self, "period", pd.Timedelta(self.period))
        object.__setattr__(self, "regions", tuple(self.regions))
        self._validate()

    def _validate(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be non-negative")
        if not self.regions or len(set(self.regions)) != len(self.regions):
            raise ValueError("regions must be non-empty and unique")
        if not all(_NAME_RE.match(r) for r in self.regions):
            raise ValueError("region names may hold only letters, digits, '_' and '-'")
        if self.sites_per_region < 1 or not 1 <= self.cells_per_site <= 12:
            raise ValueError("need at least one site per region and 1-12 cells per site")
        if self.sites_per_router < 1:
            raise ValueError("sites_per_router must be positive")
        minute = pd.Timedelta(minutes=1)
        if self.period < minute or pd.Timedelta(days=1) % self.period != pd.Timedelta(0):
            raise ValueError("period must be at least a minute and divide a day")
        if self.country not in COUNTRIES:
            raise ValueError(f"country must be one of {COUNTRIES}")
        if not (0.0 <= self.nr_share <= 1.0 and 0.0 <= self.fast_grower_share <= 1.0):
            raise ValueError("shares must lie in [0, 1]")

    @property
    def period_ns(self) -> int:
        """Period length in nanoseconds."""
        return int(self.period.value)


def live_start(now: pd.Timestamp, *, backfill: pd.Timedelta | None = None) -> pd.Timestamp:
    """A scenario anchor for a live demo: midnight UTC on the day `backfill` (28 d) before now."""
    backfill = pd.Timedelta(days=28) if backfill is None else backfill
    return (pd.Timestamp(now).tz_convert("UTC") - backfill).floor("D")


@dataclass(frozen=True)
class Topology:
    """The simulated network: elements, the KPI catalogue and the measured series."""

    config: SimConfig
    elements: pd.DataFrame
    kpis: pd.DataFrame
    series: pd.DataFrame

    def count(self, element_type: str) -> int:
        """Number of elements of one type."""
        return int((self.elements["element_type"] == element_type).sum())


def _padded(numbers: np.ndarray, width: int) -> pd.Series:
    return pd.Series(numbers).astype(str).str.zfill(width)


def _balanced_flags(rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
    """True for a random half (rounded up) of the members of each group."""
    key = rng.random(len(groups))
    order = np.lexsort((key, groups))
    sorted_groups = groups[order]
    starts = np.searchsorted(sorted_groups, sorted_groups, side="left")
    sizes = np.bincount(sorted_groups, minlength=groups.max() + 1)[sorted_groups]
    rank_sorted = np.arange(len(groups)) - starts
    flags = np.empty(len(groups), dtype=bool)
    flags[order] = rank_sorted < (sizes + 1) // 2
    return flags


def _sites(config: SimConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Sites, each with one RAN vendor and software version and a traffic profile."""
    n_regions, spr = len(config.regions), config.sites_per_region
    n = n_regions * spr
    region_idx = np.repeat(np.arange(n_regions), spr)
    width = max(4, len(str(n)))
    names = "SITE-" + _padded(np.arange(1, n + 1), width)
    region = pd.Series(np.asarray(config.regions, dtype=object)[region_idx])
    ericsson = _balanced_flags(rng, np.zeros(n, dtype=np.int64))
    vendor_idx = np.where(ericsson, 0, 1)
    newer = _balanced_flags(rng, vendor_idx)
    vendors = np.array([v[0] for v in RAN_VENDORS], dtype=object)
    versions = np.array([v[2] for v in RAN_VENDORS], dtype=object)
    profile = rng.choice(len(PROFILES), size=n, p=PROFILE_SHARES)
    return pd.DataFrame(
        {
            "dn": "SubNetwork=" + region + ",ManagedElement=" + names,
            "name": names,
            "element_type": "site",
            "vendor": vendors[vendor_idx],
            "sw_version": versions[vendor_idx, newer.astype(int)],
            "domain": "RAN",
            "region": region,
            "parent_dn": None,
            "profile": np.asarray(PROFILES, dtype=object)[profile],
            "_region_idx": region_idx,
            "_local_idx": np.tile(np.arange(spr), n_regions),
        }
    )


def _cell_traffic(
    config: SimConfig, rng: np.random.Generator, is_nr: np.ndarray
) -> dict[str, np.ndarray | pd.DatetimeIndex]:
    """Per-cell load, growth and capacity parameters."""
    n = len(is_nr)
    fast = np.zeros(n, dtype=bool)
    n_fast = min(n, max(1, round(config.fast_grower_share * n))) if n else 0
    if config.fast_grower_share > 0 and n_fast:
        fast[rng.choice(n, size=n_fast, replace=False)] = True
    growth = np.where(fast, rng.uniform(0.6, 1.5, n), 0.4 * rng.beta(1.5, 3.0, n))
    # Fast growers start just below the threshold so their noise-free busy-hour PRB
    # crosses 80 % 30-120 days after start: capacity forecasting has something to find.
    days_to_breach = rng.uniform(30.0, 120.0, n)
    headroom = (80.0 - PRB_OVERHEAD_PCT) / (1.0 + growth) ** (days_to_breach / 365.25)
    peak = np.where(fast, PRB_OVERHEAD_PCT + headroom, 15.0 + 50.0 * rng.beta(2.0, 2.5, n))
    years = np.log((80.0 - PRB_OVERHEAD_PCT) / (peak - PRB_OVERHEAD_PCT)) / np.log1p(growth)
    years = np.where(np.isfinite(years) & (years <= 5.0), years, np.nan)
    breach = config.start + pd.to_timedelta(years * 365.25, unit="D")
    return {
        "busy_hour_shift_min": np.clip(rng.normal(0.0, 30.0, n), -90.0, 90.0).round(),
        "growth_per_year": growth,
        "peak_load_pct": peak,
        "users_at_full_prb": np.where(is_nr, rng.uniform(520, 900, n), rng.uniform(260, 420, n)),
        "capacity_mbps": np.where(is_nr, rng.uniform(700, 1400, n), rng.uniform(110, 190, n)),
        "efficiency": rng.uniform(0.55, 0.8, n),
        "ul_ratio": rng.uniform(0.35, 0.6, n),
        "base_fail_pct": rng.uniform(0.1, 0.5, n),
        "base_drop_pct": rng.uniform(0.08, 0.45, n),
        "fast_grower": fast,
        "breach_at": breach,
    }


def _cells(config: SimConfig, rng: np.random.Generator, sites: pd.DataFrame) -> pd.DataFrame:
    """Cells, contiguous per site, LTE or NR, with their traffic parameters."""
    cps = config.cells_per_site
    n = len(sites) * cps
    site_idx = np.repeat(np.arange(len(sites)), cps)
    is_nr = rng.random(n) < config.nr_share
    by_site = is_nr.reshape(-1, cps)
    ordinal = np.where(by_site, np.cumsum(by_site, axis=1), np.cumsum(~by_site, axis=1)).ravel()
    label = np.where(is_nr, ",NRCellDU=N", ",EUtranCellFDD=C")
    site_rows = sites.iloc[site_idx].reset_index(drop=True)
    suffix = pd.Series(label, dtype=object) + pd.Series(ordinal).astype(str)
    frame = pd.DataFrame(
        {
            "dn": site_rows["dn"] + suffix,
            "name": site_rows["name"]
            + np.where(is_nr, "-N", "-C")
            + pd.Series(ordinal).astype(str),
            "element_type": CELL,
            "vendor": site_rows["vendor"],
            "sw_version": site_rows["sw_version"],
            "domain": "RAN",
            "region": site_rows["region"],
            "parent_dn": site_rows["dn"],
            "technology": np.where(is_nr, "NR", "LTE"),
            "profile": site_rows["profile"],
        }
    )
    return frame.assign(**_cell_traffic(config, rng, is_nr))


def _routers_and_links(
    config: SimConfig, rng: np.random.Generator, sites: pd.DataFrame, cells: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregation routers per region and one backhaul link per site."""
    per_region = math.ceil(config.sites_per_region / config.sites_per_router)
    region_idx = np.repeat(np.arange(len(config.regions)), per_region)
    router_no = np.tile(np.arange(1, per_region + 1), len(config.regions))
    upper = pd.Series([r.upper() for r in config.regions], dtype=object)[region_idx]
    names = "AGG-" + upper.reset_index(drop=True) + "-" + pd.Series(router_no).astype(str)
    tv = np.array(TRANSPORT_VENDORS, dtype=object)[region_idx % len(TRANSPORT_VENDORS)]
    routers = pd.DataFrame(
        {
            "dn": "SubNetwork=Transport,ManagedElement=" + names,
            "name": names,
            "element_type": "router",
            "vendor": tv[:, 0],
            "sw_version": tv[:, 1],
            "domain": "Transport",
            "region": np.asarray(config.regions, dtype=object)[region_idx],
            "parent_dn": None,
        }
    )
    router_of_site = (
        sites["_region_idx"].to_numpy() * per_region + sites["_local_idx"].to_numpy() % per_region
    )
    router_rows = routers.iloc[router_of_site].reset_index(drop=True)
    cps = config.cells_per_site
    # Size each backhaul for a modest busy-hour utilisation at start; growth does the rest.
    cell_peak_mbps = (
        cells["capacity_mbps"] * cells["peak_load_pct"] / 100.0 * cells["efficiency"]
    ).to_numpy()
    site_peak = cell_peak_mbps.reshape(-1, cps).sum(axis=1)
    target = rng.uniform(25.0, 55.0, len(sites))
    links = pd.DataFrame(
        {
            "dn": router_rows["dn"] + ",Link=" + sites["name"],
            "name": "LINK-" + sites["name"],
            "element_type": LINK,
            "vendor": router_rows["vendor"],
            "sw_version": router_rows["sw_version"],
            "domain": "Transport",
            "region": sites["region"],
            "parent_dn": router_rows["dn"],
            "peer_dn": sites["dn"],
            "peak_load_pct": target,
            "capacity_mbps": np.maximum(50.0, np.round(site_peak * 100.0 / target / 10.0) * 10.0),
            "base_latency_ms": rng.uniform(1.5, 8.0, len(sites)),
            "base_loss_pct": rng.uniform(0.001, 0.02, len(sites)),
        }
    )
    return routers, links


def _core(rng: np.random.Generator) -> pd.DataFrame:
    """The core network functions."""
    names = pd.Series([c[0] for c in CORE_NODES], dtype=object)
    return pd.DataFrame(
        {
            "dn": "SubNetwork=Core,ManagedElement=" + names,
            "name": names,
            "element_type": CORE,
            "vendor": CORE_VENDOR,
            "sw_version": [c[1] for c in CORE_NODES],
            "domain": "Core",
            "region": None,
            "parent_dn": None,
            "peak_load_pct": rng.uniform(45.0, 65.0, len(CORE_NODES)),
            "sessions_per_user": [c[2] for c in CORE_NODES],
        }
    )


_ELEMENT_COLUMNS: tuple[str, ...] = (
    "dn", "name", "element_type", "vendor", "sw_version", "domain", "region", "parent_dn",
    "peer_dn", "technology", "profile", "busy_hour_shift_min", "growth_per_year",
    "peak_load_pct", "users_at_full_prb", "capacity_mbps", "efficiency", "ul_ratio",
    "base_fail_pct", "base_drop_pct", "base_latency_ms", "base_loss_pct",
    "sessions_per_user", "fast_grower", "breach_at",
)  # fmt: skip


def _series(elements: pd.DataFrame) -> pd.DataFrame:
    """(element, kpi) pairs that are measured, element-major in catalogue KPI order."""
    parts = []
    for element_type, source_of in (
        (CELL, None),
        (LINK, SOURCE_TRANSPORT),
        (CORE, SOURCE_CORE),
    ):
        rows = elements.index[elements["element_type"] == element_type].to_numpy()
        kpis = kpi_names(element_type)
        idx = np.repeat(rows, len(kpis))
        part = elements.loc[idx, ["dn", "element_type", "vendor", "sw_version"]]
        part = part.reset_index(drop=True).assign(
            kpi=np.tile(np.asarray(kpis, dtype=object), len(rows))
        )
        if source_of is None:
            vendor_source = {v[0]: v[1] for v in RAN_VENDORS}
            part["source"] = part["vendor"].map(vendor_source)
        else:
            part["source"] = source_of
        part["element_index"] = idx
        parts.append(part)
    series = pd.concat(parts, ignore_index=True)
    return series[["dn", "kpi", "element_type", "source", "vendor", "sw_version", "element_index"]]


def build_topology(config: SimConfig) -> Topology:
    """Build the seeded network described by `config`."""
    rng = hashrng.generator(config.seed, _TOPOLOGY_STREAM)
    sites = _sites(config, rng)
    cells = _cells(config, rng, sites)
    routers, links = _routers_and_links(config, rng, sites, cells)
    core = _core(rng)
    elements = pd.concat(
        [sites.drop(columns=["_region_idx", "_local_idx"]), cells, routers, links, core],
        ignore_index=True,
    )
    elements = elements.reindex(columns=list(_ELEMENT_COLUMNS))
    elements["fast_grower"] = elements["fast_grower"].astype("boolean").fillna(False).astype(bool)
    elements["breach_at"] = pd.to_datetime(elements["breach_at"], utc=True).dt.round("s")
    for column in ("region", "parent_dn", "peer_dn", "technology", "profile"):
        values = elements[column].astype(object)
        elements[column] = values.where(values.notna(), None)
    return Topology(
        config=config, elements=elements, kpis=catalogue_frame(), series=_series(elements)
    )
