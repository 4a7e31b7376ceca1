"""The simulator facade: true values, delivered batches, backfill and ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from services.ingest.simulator import defects as dfx
from services.ingest.simulator.actions import Effect, EffectSet
from services.ingest.simulator.groundtruth import defect_table
from services.ingest.simulator.scenario import Scenario
from services.ingest.simulator.topology import SOURCES, SimConfig, Topology, build_topology
from services.ingest.simulator.traffic import TrafficModel

_ROWS_PER_CHUNK = 2_000_000  # bounds backfill memory on large networks


@dataclass(frozen=True)
class SimBatch:
    """One delivery from one source: records of a single data period, plus ground truth."""

    source: str
    delivered_at: pd.Timestamp
    records: pd.DataFrame
    defects: tuple[str, ...]
    period_end: pd.Timestamp
    batch_id: str


class _Delivery(NamedTuple):
    """One scheduled delivery: which source and data period, how and when."""

    source_pos: int
    period_idx: int
    kind: int
    delivered_ns: int
    column: int


def _utc(ts: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {stamp} must be timezone-aware")
    return stamp.tz_convert("UTC")


class NetworkSimulator:
    """A seeded synthetic mobile network with injected incidents and data defects."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.topology: Topology = build_topology(config)
        self._traffic = TrafficModel(self.topology)
        self._scenario = Scenario(self.topology)
        self._layouts = dfx.source_layouts(self.topology)
        self._rates = asdict(config.defect_rates)
        self._period_ns = config.period_ns
        self._effects = EffectSet(self.topology, self._period_ns, [])
        shift = config.scale_shift
        self._shift_factor = shift.factor if shift is not None else 1.0
        self._shift_first = None
        if shift is not None:
            # First affected period is the one starting at or after the shift moment.
            self._shift_first = -(-int((config.start + shift.after).value) // self._period_ns) + 1

    # -- time grid ---------------------------------------------------------------------
    def period_index(self, period_end: pd.Timestamp | str) -> int:
        """Index of a period end on the period grid; raises if off-grid."""
        ns = int(_utc(period_end).value)
        if ns % self._period_ns:
            raise ValueError(f"{period_end} is not on the {self.config.period} period grid")
        return ns // self._period_ns

    def _period_indices(self, period_ends: pd.DatetimeIndex) -> np.ndarray:
        if period_ends.tz is None:
            raise ValueError("period ends must be timezone-aware")
        ns = period_ends.tz_convert("UTC").as_unit("ns").asi8
        if (ns % self._period_ns).any():
            raise ValueError(f"period ends must lie on the {self.config.period} period grid")
        return (ns // self._period_ns).astype(np.int64)

    def align(self, ts: pd.Timestamp | str) -> pd.Timestamp:
        """The latest period end at or before a timestamp."""
        return _utc(ts).floor(self.config.period)

    # -- truth -------------------------------------------------------------------------
    def set_effects(self, effects: list[Effect]) -> None:
        """Automation actions in force (see simulator/actions.py); later truth reflects them."""
        self._effects = EffectSet(self.topology, self._period_ns, list(effects))

    def _truth_matrix(self, periods: np.ndarray) -> np.ndarray:
        incidents = self._scenario.incident_cells(periods)
        if not self._effects:
            return self._traffic.values(periods, incidents)
        incidents = self._effects.mask_incidents(incidents, periods)
        return self._effects.adjust(self._traffic.values(periods, incidents), periods)

    def truth(self, period_ends: pd.DatetimeIndex) -> pd.DataFrame:
        """Clean values with incidents for the given period ends, sorted by period, then series."""
        periods = np.unique(self._period_indices(pd.DatetimeIndex(period_ends)))
        values = self._truth_matrix(periods)
        series = self.topology.series
        n = len(series)
        return pd.DataFrame(
            {
                "dn": pd.array(
                    np.tile(series["dn"].to_numpy(dtype=object), len(periods)), dtype="str"
                ),
                "kpi": pd.array(
                    np.tile(series["kpi"].to_numpy(dtype=object), len(periods)), dtype="str"
                ),
                "period_end": pd.DatetimeIndex(np.repeat(periods * self._period_ns, n), tz="UTC"),
                "value": values.T.ravel(),
            }
        )

    # -- delivery ----------------------------------------------------------------------
    def _schedule(self, p_lo: int, p_hi: int) -> dfx.Schedule:
        return dfx.build_schedule(self.config.seed, self._rates, self._period_ns, p_lo, p_hi)

    def _multiplier(self, layout: dfx.SourceLayout, periods: np.ndarray) -> np.ndarray:
        """(series, periods) factor of the scale shift: 1 or the shift factor."""
        periods = np.asarray(periods)
        after = np.zeros(len(periods), dtype=bool)
        if self._shift_first is not None:
            after = periods >= self._shift_first
        return np.where(layout.shifted[:, None] & after[None, :], self._shift_factor, 1.0)

    def batches(self, period_end: pd.Timestamp) -> list[SimBatch]:
        """Batches delivered in (period_end, period_end + period], in delivery order."""
        w = self.period_index(period_end)
        return self._deliver(w, w)

    def backfill(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SimBatch]:
        """The same batches as calling batches() for every period end in [start, end]."""
        p_lo = -(-int(_utc(start).value) // self._period_ns)
        p_hi = int(_utc(end).value) // self._period_ns
        chunk = max(1, _ROWS_PER_CHUNK // max(1, len(self.topology.series)))
        for w in range(p_lo, p_hi + 1, chunk):
            yield from self._deliver(w, min(w + chunk - 1, p_hi))

    def _deliver(self, w_lo: int, w_hi: int) -> list[SimBatch]:
        schedule = self._schedule(w_lo - dfx.MAX_LAG_PERIODS, w_hi)
        plan_needed = schedule.needs_plan
        todo = dfx.deliveries(schedule, period_ns=self._period_ns, w_lo=w_lo, w_hi=w_hi)
        if todo.empty:
            return []
        periods = np.unique(todo["period_idx"].to_numpy())
        truth = self._truth_matrix(periods)
        src = todo["source_pos"].to_numpy()
        col = todo["column"].to_numpy()
        fast = (todo["kind"].to_numpy() != dfx.CORRECTION) & ~plan_needed[src, col]
        clean = self._clean_frames(todo[fast], truth, periods)
        plans: dict[tuple[int, int], dfx.BatchPlan] = {}
        out = []
        fields = list(_Delivery._fields)
        for row in map(_Delivery._make, todo[fields].itertuples(index=False, name=None)):
            key = (row.source_pos, row.period_idx)
            flags = {
                name: bool(f[row.source_pos, row.column]) for name, f in schedule.flags.items()
            }
            plan = None
            if plan_needed[row.source_pos, row.column]:
                if key not in plans:
                    plans[key] = dfx.make_plan(
                        self.config.seed, self._layouts[row.source_pos], *key, flags
                    )
                plan = plans[key]
            if plan is None:
                records = clean[key]
            else:
                records = self._planned_records(
                    row, plan, truth[:, np.searchsorted(periods, row.period_idx)]
                )
            out.append(self._batch(row, records, self._labels(row, flags, plan)))
        return out

    def _clean_frames(
        self, rows: pd.DataFrame, truth: np.ndarray, periods: np.ndarray
    ) -> dict[tuple[int, int], pd.DataFrame]:
        """Undamaged batches, built per source in one go and sliced per period."""
        out: dict[tuple[int, int], pd.DataFrame] = {}
        for source_pos, group in rows.groupby("source_pos"):
            layout = self._layouts[int(source_pos)]
            wanted = np.unique(group["period_idx"].to_numpy())
            n = len(layout.series)
            block = truth[layout.series][:, np.searchsorted(periods, wanted)]
            block = block * self._multiplier(layout, wanted)
            frame = dfx.record_frame(
                dn=np.tile(layout.dn, len(wanted)),
                kpi=np.tile(layout.kpi, len(wanted)),
                period_end_ns=np.repeat(wanted * self._period_ns, n),
                value=block.T.ravel().astype(object),
                vendor=np.tile(layout.vendor, len(wanted)),
                sw_version=np.tile(layout.sw_version, len(wanted)),
            )
            index = pd.RangeIndex(n)
            for j, p in enumerate(wanted):
                part = frame.iloc[j * n : (j + 1) * n]
                part.index = index
                out[(int(source_pos), int(p))] = part
        return out

    def _planned_records(
        self, row: _Delivery, plan: dfx.BatchPlan, truth_column: np.ndarray
    ) -> pd.DataFrame:
        layout = self._layouts[row.source_pos]
        kwargs = {
            "truth": truth_column[layout.series],
            "multiplier": self._multiplier(layout, np.array([row.period_idx]))[:, 0],
            "period_end_ns": row.period_idx * self._period_ns,
        }
        if row.kind == dfx.CORRECTION:
            return dfx.correction_records(layout, plan, **kwargs)
        return dfx.damaged_records(layout, plan, **kwargs)

    def _labels(
        self, row: _Delivery, flags: dict[str, bool], plan: dfx.BatchPlan | None
    ) -> tuple[str, ...]:
        """Ground-truth defect labels of one delivered batch, in DEFECT_KINDS order."""
        layout = self._layouts[row.source_pos]
        shifted = self._shift_first is not None and row.period_idx >= self._shift_first
        if row.kind == dfx.CORRECTION:
            present = {"correction"}
            rows = plan.correction_pos if plan is not None else np.zeros(0, dtype=np.int64)
        else:
            present = {name for name in ("late", "out_of_order", "gap", "malformed") if flags[name]}
            if flags["duplicate_records"] or row.kind == dfx.DUPLICATE:
                present.add("duplicate")
            rows = plan.keep if plan is not None else slice(None)
        if shifted and layout.shifted[rows].any():
            present.add("scale_shift")
        return tuple(k for k in dfx.DEFECT_KINDS if k in present)

    def _batch(self, row: _Delivery, records: pd.DataFrame, labels: tuple[str, ...]) -> SimBatch:
        source = SOURCES[row.source_pos]
        period_end = pd.Timestamp(row.period_idx * self._period_ns, tz="UTC")
        kind = dfx.DELIVERY_KINDS[row.kind]
        return SimBatch(
            source=source,
            delivered_at=pd.Timestamp(row.delivered_ns, tz="UTC"),
            records=records,
            defects=labels,
            period_end=period_end,
            batch_id=f"{source}:{period_end:%Y%m%dT%H%MZ}:{kind}",
        )

    # -- ground truth ------------------------------------------------------------------
    def incidents_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Injected incidents overlapping [start, end]; they change the true values."""
        return self._scenario.incidents_between(_utc(start), _utc(end))

    def defects_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Injected data defects of the data periods ending in [start, end]."""
        p_lo = -(-int(_utc(start).value) // self._period_ns)
        p_hi = int(_utc(end).value) // self._period_ns
        schedule = self._schedule(p_lo, max(p_lo, p_hi))
        return defect_table(
            seed=self.config.seed,
            schedule=schedule,
            layouts=self._layouts,
            period_ns=self._period_ns,
            p_hi=p_hi,
            shift_first=self._shift_first,
            scale_shift=self.config.scale_shift,
        )
