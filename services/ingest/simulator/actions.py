"""Effects of automation actions on the simulated network, so executions show in later KPIs.

The simulator stays pure: callers hand `NetworkSimulator.set_effects` a list of `Effect`s
(built from the executions table by `services.automation.actuators.simulator_effects`), and
the simulator applies them to every period end inside each effect's window. Two hook
points, both in `NetworkSimulator._truth_matrix`: `mask_incidents` removes incident
(element, period) pairs an action cures (a restart wakes a sleeping cell, a reroute takes
traffic off a flapping link) before the traffic model runs; `adjust` then scales the true
values an action changes (load balancing moves users to neighbour cells).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from services.ingest.simulator.catalogue import CELL, LINK
from services.ingest.simulator.topology import PRB_OVERHEAD_PCT, Topology
from services.ingest.simulator.traffic import IncidentCells


@dataclass(frozen=True)
class Effect:
    """One action applied to one element from `start` until `end` (None: still in force)."""

    action: str
    dn: str
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EffectSpec:
    """What an action does: the element type it targets, incidents it cures, values it scales."""

    element_type: str
    cures: tuple[str, ...] = ()
    # (dn's series rows by KPI, values, column mask, parameters) -> None, editing in place.
    adjust: Callable[[dict[str, int], np.ndarray, np.ndarray, Mapping[str, Any]], None] | None = (
        None
    )
    parameters: Mapping[str, float] = field(default_factory=dict)  # defaults


def _share(parameters: Mapping[str, Any], key: str, default: float) -> float:
    """A percentage parameter as a fraction clipped to [0, 0.9]; never switch a cell off."""
    return float(np.clip(float(parameters.get(key, default)) / 100.0, 0.0, 0.9))


def _load_balance(
    rows: dict[str, int], values: np.ndarray, cols: np.ndarray, parameters: Mapping[str, Any]
) -> None:
    """Hand `offload_pct` of the cell's users to neighbours: less load, fewer drops."""
    f = _share(parameters, "offload_pct", 30.0)
    for kpi in ("prb_util_dl", "prb_util_ul"):
        row = values[rows[kpi], cols]
        values[rows[kpi], cols] = PRB_OVERHEAD_PCT + np.maximum(row - PRB_OVERHEAD_PCT, 0) * (1 - f)
    values[rows["active_users"], cols] *= 1 - f
    values[rows["erab_drop_rate"], cols] *= 1 - f
    rrc = values[rows["rrc_setup_sr"], cols]
    values[rows["rrc_setup_sr"], cols] = rrc + (100.0 - rrc) * f


def _reroute(
    rows: dict[str, int], values: np.ndarray, cols: np.ndarray, parameters: Mapping[str, Any]
) -> None:
    """Move `share_pct` of the link's traffic onto another path: lower utilisation and loss."""
    f = _share(parameters, "share_pct", 50.0)
    values[rows["link_util"], cols] *= 1 - f
    values[rows["packet_loss_pct"], cols] *= 1 - f


EFFECTS: Mapping[str, EffectSpec] = {
    "lb_param_change": EffectSpec(CELL, adjust=_load_balance, parameters={"offload_pct": 30.0}),
    "cell_restart": EffectSpec(CELL, cures=("sleeping_cell",)),
    "traffic_reroute": EffectSpec(
        LINK, cures=("link_flap",), adjust=_reroute, parameters={"share_pct": 50.0}
    ),
}


def supports(action: str) -> bool:
    """True when the simulator knows how `action` changes the network."""
    return action in EFFECTS


@dataclass(frozen=True)
class _Placed:
    """An effect resolved against the topology: row positions and its period-index window."""

    effect: Effect
    spec: EffectSpec
    position: int  # within the element type's rows (IncidentCells.element)
    rows: dict[str, int]  # KPI name -> row of the truth matrix
    first: int  # first affected period index (period end after start)
    last: int | None  # last affected period index, None when open-ended


class EffectSet:
    """Effects placed on one topology; applied to truth matrices of any period range."""

    def __init__(self, topology: Topology, period_ns: int, effects: list[Effect]) -> None:
        el = topology.elements
        series = topology.series
        placed = []
        for effect in effects:
            spec = EFFECTS.get(effect.action)
            if spec is None:
                continue  # tickets and unknown actions change nothing in the network
            typed = el.loc[el["element_type"] == spec.element_type, "dn"].to_numpy(dtype=object)
            hits = np.flatnonzero(typed == effect.dn)
            if not len(hits):
                continue
            mine = np.flatnonzero(series["dn"].to_numpy(dtype=object) == effect.dn)
            rows = {str(series["kpi"].iloc[i]): int(i) for i in mine}
            first = int(effect.start.value) // period_ns + 1
            last = None if effect.end is None else int(effect.end.value) // period_ns
            placed.append(_Placed(effect, spec, int(hits[0]), rows, first, last))
        self._placed = tuple(placed)

    def __bool__(self) -> bool:
        return bool(self._placed)

    def _mask(self, placed: _Placed, periods: np.ndarray) -> np.ndarray:
        inside = periods >= placed.first
        if placed.last is not None:
            inside &= periods <= placed.last
        return inside

    def mask_incidents(
        self, incidents: dict[str, IncidentCells], periods: np.ndarray
    ) -> dict[str, IncidentCells]:
        """Drop incident pairs an effect cures while it is in force."""
        out = dict(incidents)
        for placed in self._placed:
            inside = self._mask(placed, periods)
            for kind in placed.spec.cures:
                cells = out.get(kind)
                if cells is None or not len(cells.element):
                    continue
                cured = (cells.element == placed.position) & inside[cells.column]
                out[kind] = IncidentCells(cells.element[~cured], cells.column[~cured])
        return out

    def adjust(self, values: np.ndarray, periods: np.ndarray) -> np.ndarray:
        """Scale true values (rows in series order, one column per period) in place."""
        for placed in self._placed:
            if placed.spec.adjust is None:
                continue
            cols = np.flatnonzero(self._mask(placed, periods))
            if len(cols):
                params = {**placed.spec.parameters, **placed.effect.parameters}
                placed.spec.adjust(placed.rows, values, cols, params)
        return values
