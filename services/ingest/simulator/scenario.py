"""Injected incidents: seeded per UTC day, so any time range can be queried on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.ingest.simulator import hashrng
from services.ingest.simulator.catalogue import CELL, LINK
from services.ingest.simulator.topology import Topology
from services.ingest.simulator.traffic import IncidentCells

DAY_NS = int(pd.Timedelta(days=1).value)
_S_INCIDENTS = 201


@dataclass(frozen=True)
class IncidentKind:
    """How one kind of incident is drawn and which KPIs it changes."""

    kind: str
    element_type: str
    kpis: tuple[str, ...]
    min_minutes: float
    max_minutes: float
    start_hours_utc: tuple[float, float]  # window in which incidents begin


INCIDENT_KINDS: tuple[IncidentKind, ...] = (
    IncidentKind(
        "congestion",
        CELL,
        ("prb_util_dl", "prb_util_ul", "active_users", "dl_throughput_mbps",
         "rrc_setup_sr", "erab_drop_rate"),
        60.0, 240.0, (6.0, 20.0),
    ),
    IncidentKind(
        "sleeping_cell",
        CELL,
        ("active_users", "prb_util_dl", "prb_util_ul", "dl_throughput_mbps",
         "rrc_setup_sr", "erab_drop_rate"),
        120.0, 600.0, (0.0, 24.0),
    ),
    IncidentKind(
        "link_flap", LINK, ("link_util", "latency_ms", "packet_loss_pct"), 30.0, 90.0, (0.0, 24.0)
    ),
)  # fmt: skip
INCIDENT_COLUMNS: tuple[str, ...] = (
    "incident_id", "kind", "dn", "element_type", "kpis", "related_dns", "start", "end",
)  # fmt: skip


class Scenario:
    """Decides which incidents happen where and when; a pure function of config and day."""

    def __init__(self, topology: Topology) -> None:
        config = topology.config
        self.seed = config.seed
        self.period_ns = config.period_ns
        self.periods_per_day = DAY_NS // self.period_ns
        self.cells_per_site = config.cells_per_site
        self.rates = {
            "congestion": config.incident_rates.congestion,
            "sleeping_cell": config.incident_rates.sleeping_cell,
            "link_flap": config.incident_rates.link_flap,
        }
        el = topology.elements
        self.dns = {
            t: el.loc[el["element_type"] == t, "dn"].to_numpy(dtype=object) for t in (CELL, LINK)
        }
        self.link_peer = el.loc[el["element_type"] == LINK, "peer_dn"].to_numpy(dtype=object)

    def _day(self, day: int) -> pd.DataFrame:
        """Incidents beginning on one UTC day, before overlap resolution."""
        rng = hashrng.generator(self.seed, _S_INCIDENTS, day)
        parts = []
        for order, spec in enumerate(INCIDENT_KINDS):
            n_elements = len(self.dns[spec.element_type])
            n = int(rng.poisson(self.rates[spec.kind] * n_elements)) if n_elements else 0
            element = rng.integers(0, max(n_elements, 1), n)
            lo = int(spec.start_hours_utc[0] / 24 * self.periods_per_day)
            hi = max(lo + 1, int(spec.start_hours_utc[1] / 24 * self.periods_per_day))
            offset = rng.integers(lo, hi, n)
            minutes = rng.uniform(spec.min_minutes, spec.max_minutes, n)
            length = np.maximum(1, np.round(minutes * 60e9 / self.period_ns)).astype(np.int64)
            start_idx = day * self.periods_per_day + offset
            parts.append(
                pd.DataFrame(
                    {
                        "kind_order": order,
                        "ordinal": np.arange(n),
                        "day": day,
                        "element": element,
                        "start_idx": start_idx,
                        "end_idx": start_idx + length,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def raw_between(self, p_lo: int, p_hi: int) -> pd.DataFrame:
        """Resolved incidents touching period ends p_lo..p_hi (period indices, inclusive)."""
        first_day = (p_lo * self.period_ns) // DAY_NS - 2
        last_day = (p_hi * self.period_ns) // DAY_NS
        raw = pd.concat([self._day(d) for d in range(first_day, last_day + 1)], ignore_index=True)
        raw = _drop_overlaps(raw)
        touching = (raw["start_idx"] + 1 <= p_hi) & (raw["end_idx"] >= p_lo)
        return raw[touching].reset_index(drop=True)

    def incident_cells(self, period_idx: np.ndarray) -> dict[str, IncidentCells]:
        """Active (element, period column) pairs per incident kind for sorted period indices."""
        if len(period_idx) == 0:
            return {}
        raw = self.raw_between(int(period_idx[0]), int(period_idx[-1]))
        out = {}
        for order, spec in enumerate(INCIDENT_KINDS):
            rows = raw[raw["kind_order"] == order]
            lo = np.searchsorted(period_idx, rows["start_idx"].to_numpy() + 1, side="left")
            hi = np.searchsorted(period_idx, rows["end_idx"].to_numpy(), side="right")
            counts = np.maximum(hi - lo, 0)
            owner = np.repeat(np.arange(len(rows)), counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            out[spec.kind] = IncidentCells(
                element=rows["element"].to_numpy(dtype=np.int64)[owner],
                column=(lo[owner] + within).astype(np.int64),
            )
        return out

    def incidents_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Ground-truth incidents whose window [start, end] overlaps the given time range."""
        start_ns, end_ns = int(start.value), int(end.value)
        p_lo = -(-start_ns // self.period_ns)
        p_hi = -(-end_ns // self.period_ns)
        raw = self.raw_between(p_lo, p_hi)
        begins = raw["start_idx"].to_numpy() * self.period_ns
        ends = raw["end_idx"].to_numpy() * self.period_ns
        raw = raw[(begins < end_ns) & (ends > start_ns)].reset_index(drop=True)
        return self._public(raw)

    def _public(self, raw: pd.DataFrame) -> pd.DataFrame:
        kinds = [INCIDENT_KINDS[k] for k in raw["kind_order"]]
        element = raw["element"].to_numpy(dtype=np.int64)
        days = pd.to_datetime(raw["day"].to_numpy() * DAY_NS, utc=True).strftime("%Y%m%d")
        frame = pd.DataFrame(
            {
                "incident_id": [
                    f"sim-{s.kind}-{d}-{n:04d}"
                    for s, d, n in zip(kinds, days, raw["ordinal"], strict=True)
                ],
                "kind": [s.kind for s in kinds],
                "dn": [self.dns[s.element_type][e] for s, e in zip(kinds, element, strict=True)],
                "element_type": [s.element_type for s in kinds],
                "kpis": [s.kpis for s in kinds],
                "related_dns": [self._related(s, e) for s, e in zip(kinds, element, strict=True)],
                "start": pd.to_datetime(raw["start_idx"].to_numpy() * self.period_ns, utc=True),
                "end": pd.to_datetime(raw["end_idx"].to_numpy() * self.period_ns, utc=True),
            },
            columns=list(INCIDENT_COLUMNS),
        )
        return frame.sort_values(["start", "incident_id"], ignore_index=True)

    def _related(self, spec: IncidentKind, element: int) -> tuple[str, ...]:
        """Elements an operator should look at alongside the incident's own element."""
        if spec.kind == "link_flap":
            return (str(self.link_peer[element]),)
        if spec.kind == "sleeping_cell":
            site = element // self.cells_per_site
            cells = range(site * self.cells_per_site, (site + 1) * self.cells_per_site)
            return tuple(str(self.dns[CELL][c]) for c in cells if c != element)
        return ()


def _drop_overlaps(raw: pd.DataFrame) -> pd.DataFrame:
    """Drop incidents overlapping an earlier-starting one on the same element.

    Comparing against every drawn incident, kept or not, makes the decision depend only
    on the previous day's draws, so any query range resolves the same way.
    """
    if raw.empty:
        return raw
    # Kinds on the same element type compete for the same elements.
    type_code = {t: i for i, t in enumerate(sorted({k.element_type for k in INCIDENT_KINDS}))}
    kind_family = np.array([type_code[k.element_type] for k in INCIDENT_KINDS])
    family = kind_family[raw["kind_order"].to_numpy()]
    raw = raw.assign(family=family).sort_values(
        ["family", "element", "start_idx", "kind_order", "day", "ordinal"], ignore_index=True
    )
    group = raw.groupby(["family", "element"], sort=False)["end_idx"]
    previous_end = group.cummax().groupby([raw["family"], raw["element"]]).shift(1)
    keep = previous_end.isna() | (raw["start_idx"] >= previous_end)
    return raw[keep.to_numpy()].drop(columns="family").reset_index(drop=True)
