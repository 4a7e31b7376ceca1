"""Vectorised traffic model: true KPI values for every series over many periods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.ingest.simulator import hashrng
from services.ingest.simulator.catalogue import CELL, CORE, LINK, kpi_names, kpi_spec
from services.ingest.simulator.seasonality import PROFILES, profile_grid, time_features
from services.ingest.simulator.topology import PRB_OVERHEAD_PCT, Topology

_NS_PER_YEAR = int(pd.Timedelta(days=365.25).value)

# Hash streams: one per independent noise source so they never correlate by accident.
_S_DAY = 101
_S_USERS = 102
_S_USERS_POISSON = 103
_S_PRB = 104
_S_UL = 105
_S_EFF = 106
_S_RRC = 107
_S_DROP = 108
_S_LINK = 109
_S_LAT = 110
_S_LOSS = 111
_S_CORE = 112
_S_INCIDENT = 120  # + offsets per drawn incident quantity


@dataclass(frozen=True)
class IncidentCells:
    """Where incidents of one kind are active: element position and period column pairs."""

    element: np.ndarray  # position within the element type's rows
    column: np.ndarray  # column into the requested periods

    @staticmethod
    def empty() -> IncidentCells:
        """No incident at all."""
        return IncidentCells(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64)


class TrafficModel:
    """Per-element parameters as arrays, and the functions that turn them into KPI values."""

    def __init__(self, topology: Topology) -> None:
        config = topology.config
        self.seed = config.seed
        self.period_ns = config.period_ns
        self.start_ns = int(config.start.value)
        self.tz, self.country = config.tz, config.country
        self.cells_per_site = config.cells_per_site
        self.grid = profile_grid()
        el = topology.elements
        cells = el[el["element_type"] == CELL]
        links = el[el["element_type"] == LINK]
        core = el[el["element_type"] == CORE]
        self.cell_key = cells.index.to_numpy(dtype=np.int64)
        self.link_key = links.index.to_numpy(dtype=np.int64)
        self.core_key = core.index.to_numpy(dtype=np.int64)
        profile_codes = {name: i for i, name in enumerate(PROFILES)}
        self.profile = cells["profile"].map(profile_codes).to_numpy(dtype=np.int64)
        self.shift_min = cells["busy_hour_shift_min"].to_numpy(dtype=np.int64)
        self.log_growth = np.log1p(_column(cells, "growth_per_year"))
        self.users_full = _column(cells, "users_at_full_prb")
        self.peak_users = (
            (_column(cells, "peak_load_pct") - PRB_OVERHEAD_PCT) / 100 * self.users_full
        )
        self.cell_capacity = _column(cells, "capacity_mbps")
        self.efficiency = _column(cells, "efficiency")
        self.ul_ratio = _column(cells, "ul_ratio")
        self.base_fail = _column(cells, "base_fail_pct")
        self.base_drop = _column(cells, "base_drop_pct")
        self.link_capacity = _column(links, "capacity_mbps")
        self.base_latency = _column(links, "base_latency_ms")
        self.base_loss = _column(links, "base_loss_pct")
        self.core_cpu = _column(core, "peak_load_pct")
        self.sessions_per_user = _column(core, "sessions_per_user")
        # Busy-hour network load at start: not all cells peak at once, hence the factor.
        self.reference_users = max(1.0, 0.8 * float(self.peak_users.sum()))
        self.cell_bounds = _bounds(CELL)
        self.link_bounds = _bounds(LINK)
        self.core_bounds = _bounds(CORE)
        self.n_series = len(topology.series)

    def _noise(self, stream: int, keys: np.ndarray, periods: np.ndarray) -> np.ndarray:
        return hashrng.normal(self.seed, stream, keys[:, None], periods[None, :])

    def _draw(
        self, quantity: int, keys: np.ndarray, periods: np.ndarray, lo: float, hi: float
    ) -> np.ndarray:
        """Uniform draws in [lo, hi) for incident (element, period) pairs."""
        u = hashrng.uniform(self.seed, _S_INCIDENT + quantity, keys, periods)
        return lo + (hi - lo) * u

    def values(self, period_idx: np.ndarray, incidents: dict[str, IncidentCells]) -> np.ndarray:
        """True values, shape (n_series, len(period_idx)), rows in topology series order."""
        period_idx = np.asarray(period_idx, dtype=np.int64)
        cells = self._cells(period_idx, incidents)
        links = self._links(period_idx, cells["dl_throughput_mbps"], incidents)
        core = self._core(period_idx, cells["active_users"])
        out = [
            _stack(cells, kpi_names(CELL), self.cell_bounds),
            _stack(links, kpi_names(LINK), self.link_bounds),
            _stack(core, kpi_names(CORE), self.core_bounds),
        ]
        return np.concatenate(out, axis=0)

    def _load(self, period_idx: np.ndarray) -> np.ndarray:
        """Noise-free load factor per (cell, period): profile x weekday x holiday x growth."""
        end_ns = period_idx * self.period_ns
        tf = time_features(end_ns, period_ns=self.period_ns, tz=self.tz, country=self.country)
        minute = (tf.minute_of_day[None, :] - self.shift_min[:, None]) % self.grid.shape[2]
        shape = self.grid[self.profile[:, None], tf.day_kind[None, :], minute]
        years = (end_ns - self.start_ns) / _NS_PER_YEAR
        day_noise = 0.04 * self._noise(_S_DAY, self.cell_key, tf.day_index)
        return shape * np.exp(self.log_growth[:, None] * years[None, :] + day_noise)

    def _cells(
        self, period_idx: np.ndarray, incidents: dict[str, IncidentCells]
    ) -> dict[str, np.ndarray]:
        keys = self.cell_key
        mean = self.peak_users[:, None] * self._load(period_idx)
        users = mean * np.exp(0.05 * self._noise(_S_USERS, keys, period_idx))
        users += 0.3 * np.sqrt(mean) * self._noise(_S_USERS_POISSON, keys, period_idx)
        users = np.maximum(users, 0.0)
        sleeping = incidents.get("sleeping_cell", IncidentCells.empty())
        congestion = incidents.get("congestion", IncidentCells.empty())
        s_keys, s_per = keys[sleeping.element], period_idx[sleeping.column]
        c_keys, c_per = keys[congestion.element], period_idx[congestion.column]
        self._move_sleeping_users(users, sleeping, s_keys, s_per)
        # A crowd that outgrows the cell: at least enough users to fill every PRB.
        crowd = np.maximum(
            users[congestion.element, congestion.column] * self._draw(0, c_keys, c_per, 1.3, 1.8),
            self.users_full[congestion.element] * self._draw(14, c_keys, c_per, 1.0, 1.3),
        )
        users[congestion.element, congestion.column] = crowd

        prb_dl = PRB_OVERHEAD_PCT + 100.0 * users / self.users_full[:, None]
        prb_dl *= np.exp(0.03 * self._noise(_S_PRB, keys, period_idx))
        prb_dl = np.clip(prb_dl, 0.0, 100.0)
        prb_dl[congestion.element, congestion.column] = self._draw(1, c_keys, c_per, 95.0, 100.0)
        prb_dl[sleeping.element, sleeping.column] = self._draw(2, s_keys, s_per, 0.0, 0.5)
        carried = np.maximum(prb_dl - PRB_OVERHEAD_PCT, 0.0)
        prb_ul = 0.8 + self.ul_ratio[:, None] * carried
        prb_ul *= np.exp(0.1 * self._noise(_S_UL, keys, period_idx))
        prb_ul[sleeping.element, sleeping.column] = self._draw(3, s_keys, s_per, 0.0, 0.4)

        eff = self.efficiency[:, None] * np.exp(0.06 * self._noise(_S_EFF, keys, period_idx))
        eff[congestion.element, congestion.column] *= self._draw(4, c_keys, c_per, 0.45, 0.65)
        throughput = self.cell_capacity[:, None] * carried / 100.0 * eff
        throughput[sleeping.element, sleeping.column] = self._draw(5, s_keys, s_per, 0.0, 0.05)

        strain = np.clip((prb_dl - 70.0) / 30.0, 0.0, 1.0) ** 2
        fail = self.base_fail[:, None] * np.exp(0.25 * self._noise(_S_RRC, keys, period_idx))
        rrc = 100.0 - fail - 1.5 * strain
        rrc[congestion.element, congestion.column] -= self._draw(6, c_keys, c_per, 1.0, 4.0)
        rrc[sleeping.element, sleeping.column] = 100.0  # no attempts, so nothing fails
        drop = self.base_drop[:, None] * np.exp(0.3 * self._noise(_S_DROP, keys, period_idx))
        drop += 1.0 * strain
        drop[congestion.element, congestion.column] += self._draw(7, c_keys, c_per, 0.8, 3.0)
        drop[sleeping.element, sleeping.column] = 0.0
        return {
            "prb_util_dl": prb_dl,
            "prb_util_ul": prb_ul,
            "active_users": users,
            "dl_throughput_mbps": throughput,
            "rrc_setup_sr": rrc,
            "erab_drop_rate": drop,
        }

    def _move_sleeping_users(
        self, users: np.ndarray, sleeping: IncidentCells, keys: np.ndarray, periods: np.ndarray
    ) -> None:
        """Zero sleeping cells; their site siblings pick up part of the stranded users."""
        cps = self.cells_per_site
        if cps > 1 and len(sleeping.element):
            picked = users[sleeping.element, sleeping.column] * self._draw(
                8, keys, periods, 0.4, 0.7
            )
            n_sites = users.shape[0] // cps
            site_pick = np.zeros((n_sites, users.shape[1]))
            np.add.at(site_pick, (sleeping.element // cps, sleeping.column), picked)
            # The sleeping cell gets a share too, but is overwritten right after.
            users += np.repeat(site_pick, cps, axis=0) / (cps - 1)
        users[sleeping.element, sleeping.column] = self._draw(9, keys, periods, 0.0, 0.3)

    def _links(
        self,
        period_idx: np.ndarray,
        cell_throughput: np.ndarray,
        incidents: dict[str, IncidentCells],
    ) -> dict[str, np.ndarray]:
        keys = self.link_key
        n_links = len(keys)
        site_mbps = cell_throughput.reshape(n_links, self.cells_per_site, -1).sum(axis=1)
        util = 0.5 + 106.0 * site_mbps / self.link_capacity[:, None]
        util *= np.exp(0.04 * self._noise(_S_LINK, keys, period_idx))
        flap = incidents.get("link_flap", IncidentCells.empty())
        f_keys, f_per = keys[flap.element], period_idx[flap.column]
        down = self._draw(10, f_keys, f_per, 0.2, 0.8)
        util[flap.element, flap.column] *= (1.0 - down) * self._draw(11, f_keys, f_per, 0.4, 1.6)
        # Queueing delay grows like rho / (1 - rho) as the link fills up.
        rho = np.clip(util, 0.0, 99.5) / 100.0
        latency = self.base_latency[:, None] * (1.0 + 0.15 * rho / (1.0 - rho))
        latency *= np.exp(0.05 * self._noise(_S_LAT, keys, period_idx))
        latency[flap.element, flap.column] *= 1.0 + self._draw(12, f_keys, f_per, 3.0, 25.0)
        loss = self.base_loss[:, None] * np.exp(0.5 * self._noise(_S_LOSS, keys, period_idx))
        loss += 5.0 * np.clip((rho - 0.85) / 0.15, 0.0, 1.0) ** 2
        loss[flap.element, flap.column] += down * self._draw(13, f_keys, f_per, 15.0, 60.0)
        return {"link_util": util, "latency_ms": latency, "packet_loss_pct": loss}

    def _core(self, period_idx: np.ndarray, users: np.ndarray) -> dict[str, np.ndarray]:
        keys = self.core_key
        load = users.sum(axis=0)[None, :] / self.reference_users
        cpu = self.core_cpu[:, None] * (0.25 + 0.75 * load)
        cpu *= np.exp(0.03 * self._noise(_S_CORE, keys, period_idx))
        # Registered contexts linger when users go idle, so sessions never track users fully.
        attached = 0.35 * self.reference_users + 0.65 * users.sum(axis=0)
        sessions = self.sessions_per_user[:, None] * attached[None, :]
        sessions *= np.exp(0.01 * self._noise(_S_CORE + 1, keys, period_idx))
        return {"cpu_util": cpu, "sessions": sessions}


def _bounds(element_type: str) -> np.ndarray:
    """(n_kpis, 2) valid ranges in catalogue order."""
    return np.array(
        [(kpi_spec(k).valid_min, kpi_spec(k).valid_max) for k in kpi_names(element_type)]
    )


def _stack(values: dict[str, np.ndarray], kpis: tuple[str, ...], bounds: np.ndarray) -> np.ndarray:
    """Element-major rows (element, kpi), clipped to each KPI's valid range."""
    cube = np.stack([values[k] for k in kpis], axis=1)
    cube = np.clip(cube, bounds[None, :, 0, None], bounds[None, :, 1, None])
    return cube.reshape(-1, cube.shape[2])
