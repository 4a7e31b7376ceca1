"""Data defects: when each source batch is delivered and how its records are damaged.

Every decision is a pure function of (seed, source, period index), so the delivery of any
period is known without replaying earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.ingest.simulator import hashrng
from services.ingest.simulator.catalogue import kpi_spec
from services.ingest.simulator.topology import SOURCES, Topology

DEFECT_KINDS: tuple[str, ...] = (
    "late", "out_of_order", "gap", "duplicate", "correction", "malformed", "scale_shift",
)  # fmt: skip
REGULAR, DUPLICATE, CORRECTION = 0, 1, 2
DELIVERY_KINDS: tuple[str, ...] = ("regular", "duplicate", "correction")
MAX_LAG_PERIODS = 12  # late (6) + duplicate copy (~1.5) + correction (4) and delays
MALFORMED_FORMS: tuple[str, ...] = ("nan", "text", "negative", "unknown_counter", "empty_dn")
_TEXT_VALUES: tuple[str, ...] = ("N/A", "n/a", "-", "#DIV/0!")
_UNKNOWN_COUNTERS: tuple[str, ...] = ("pmRadioThpVolDlExt", "VS.UNKNOWN.Counter.7", "kpi_x")

_S_DELAY = 301
_S_FLAGS = 310  # + defect kind position
_S_LAG = 320
_S_DUP_KIND = 321
_S_DUP_DELAY = 322
_S_CORR_LAG = 323
_S_EXTRA = 324
_S_PLAN = 330


@dataclass(frozen=True)
class SourceLayout:
    """The series one source reports, in delivery order (element-major)."""

    name: str
    series: np.ndarray  # row numbers in the topology's series table
    n_kpis: int
    dn: np.ndarray
    kpi: np.ndarray
    vendor: np.ndarray
    sw_version: np.ndarray
    valid_min: np.ndarray
    valid_max: np.ndarray
    shifted: np.ndarray  # bool: reports the scale-shifted KPI after the shift date

    @property
    def n_elements(self) -> int:
        """Elements reported by this source."""
        return len(self.series) // max(self.n_kpis, 1)


def source_layouts(topology: Topology) -> tuple[SourceLayout, ...]:
    """One layout per source, in SOURCES order."""
    series = topology.series
    shift = topology.config.scale_shift
    layouts = []
    for name in SOURCES:
        rows = series.index[series["source"] == name].to_numpy()
        part = series.loc[rows]
        shifted = np.zeros(len(rows), dtype=bool)
        if shift is not None:
            shifted = (
                (part["vendor"] == shift.vendor)
                & (part["sw_version"] == shift.sw_version)
                & (part["kpi"] == shift.kpi)
            ).to_numpy()
        specs = [kpi_spec(k) for k in part["kpi"]]
        layouts.append(
            SourceLayout(
                name=name,
                series=rows,
                n_kpis=int(part["kpi"].nunique()) if len(rows) else 0,
                dn=part["dn"].to_numpy(dtype=object),
                kpi=part["kpi"].to_numpy(dtype=object),
                vendor=part["vendor"].to_numpy(dtype=object),
                sw_version=part["sw_version"].to_numpy(dtype=object),
                valid_min=np.array([s.valid_min for s in specs]),
                valid_max=np.array([s.valid_max for s in specs]),
                shifted=shifted,
            )
        )
    return tuple(layouts)


@dataclass(frozen=True)
class Schedule:
    """Defect flags and delivery times per (source, period); arrays shaped (sources, periods)."""

    periods: np.ndarray
    flags: dict[str, np.ndarray]  # late, out_of_order, gap, duplicate_batch, duplicate_records, ...
    late_lag: np.ndarray
    regular_ns: np.ndarray
    duplicate_ns: np.ndarray
    correction_ns: np.ndarray

    @property
    def needs_plan(self) -> np.ndarray:
        """Batches whose records are altered, not just their timing."""
        f = self.flags
        return f["gap"] | f["duplicate_records"] | f["correction"] | f["malformed"]


def _seconds(fraction: np.ndarray, period_ns: int) -> np.ndarray:
    """A fraction of a period as whole seconds in ns, so delivery times stay tidy."""
    return (np.floor(fraction * period_ns / 1e9) * 1e9).astype(np.int64)


def build_schedule(
    config_seed: int, rates: dict[str, float], period_ns: int, p_lo: int, p_hi: int
) -> Schedule:
    """Decide delivery times and defect flags for data periods p_lo..p_hi (inclusive)."""
    periods = np.arange(p_lo, p_hi + 1, dtype=np.int64)
    src = np.arange(len(SOURCES), dtype=np.int64)[:, None]
    p = periods[None, :]

    def u(stream: int, shift: int = 0) -> np.ndarray:
        return hashrng.uniform(config_seed, stream, src, p + shift)

    draws = {kind: u(_S_FLAGS + i) for i, kind in enumerate(DEFECT_KINDS[:6])}
    late = draws["late"] < rates["late"]
    ooo = ~late & (draws["out_of_order"] < rates["out_of_order"])
    duplicate = draws["duplicate"] < rates["duplicate"]
    dup_batch = duplicate & (u(_S_DUP_KIND) < 0.5)
    lag = np.where(late, 2 + np.floor(u(_S_LAG) * 5).astype(np.int64), 0)
    delay = _seconds(0.08 + 0.22 * u(_S_DELAY), period_ns)
    # An out-of-order batch lands just after the next period's batch.
    next_delay = 0.08 + 0.22 * u(_S_DELAY, shift=1)
    swapped = (p + 1) * period_ns + _seconds(next_delay + 0.05 + 0.25 * u(_S_EXTRA), period_ns)
    regular = np.where(ooo, swapped, (p + lag) * period_ns + delay)
    dup = regular + _seconds(0.1 + 1.1 * u(_S_DUP_DELAY), period_ns)
    corr_lag = 1 + np.floor(u(_S_CORR_LAG) * 4).astype(np.int64)
    flags = {
        "late": late,
        "out_of_order": ooo,
        "gap": draws["gap"] < rates["gap"],
        "duplicate_batch": dup_batch,
        "duplicate_records": duplicate & ~dup_batch,
        "correction": draws["correction"] < rates["correction"],
        "malformed": draws["malformed"] < rates["malformed"],
    }
    return Schedule(
        periods=periods,
        flags=flags,
        late_lag=lag,
        regular_ns=regular,
        duplicate_ns=dup,
        correction_ns=regular + corr_lag * period_ns,
    )


def deliveries(schedule: Schedule, *, period_ns: int, w_lo: int, w_hi: int) -> pd.DataFrame:
    """Batches delivered in windows w_lo..w_hi, window w being (w, w + 1] periods, in order."""
    n_src, n_p = schedule.regular_ns.shape
    src = np.repeat(np.arange(n_src), n_p).reshape(n_src, n_p)
    per = np.broadcast_to(schedule.periods[None, :], (n_src, n_p))
    parts = [(REGULAR, np.ones((n_src, n_p), dtype=bool), schedule.regular_ns)]
    parts.append((DUPLICATE, schedule.flags["duplicate_batch"], schedule.duplicate_ns))
    parts.append((CORRECTION, schedule.flags["correction"], schedule.correction_ns))
    frames = []
    for kind, mask, ns in parts:
        window = (ns[mask] - 1) // period_ns
        inside = (window >= w_lo) & (window <= w_hi)
        frames.append(
            pd.DataFrame(
                {
                    "source_pos": src[mask][inside],
                    "period_idx": per[mask][inside],
                    "kind": kind,
                    "delivered_ns": ns[mask][inside],
                    "column": np.broadcast_to(np.arange(n_p), (n_src, n_p))[mask][inside],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["delivered_ns", "source_pos", "kind", "period_idx"], ignore_index=True)


@dataclass(frozen=True)
class BatchPlan:
    """Record-level damage of one source batch, as positions into its layout."""

    keep: np.ndarray  # bool per series: False where the element is in a gap
    gap_elements: np.ndarray
    correction_pos: np.ndarray
    correction_factor: np.ndarray
    duplicate_pos: np.ndarray
    malformed_pos: np.ndarray
    malformed_form: np.ndarray
    malformed_text: np.ndarray

    @property
    def n_records(self) -> int:
        """Records in the delivered batch, extra rows included."""
        extra = np.isin(self.malformed_form, ("unknown_counter", "empty_dn")).sum()
        return int(self.keep.sum() + len(self.duplicate_pos) + extra)


def make_plan(
    seed: int, layout: SourceLayout, source_pos: int, period_idx: int, flags: dict[str, bool]
) -> BatchPlan:
    """Choose the damaged records of one batch."""
    rng = hashrng.generator(seed, _S_PLAN, source_pos, period_idx)
    n_el, k = layout.n_elements, layout.n_kpis
    keep = np.ones(len(layout.series), dtype=bool)
    gap_elements = np.zeros(0, dtype=np.int64)
    if flags["gap"] and n_el:
        n_gap = int(np.clip(round(rng.uniform(0.05, 0.3) * n_el), 1, max(1, n_el - 1)))
        gap_elements = np.sort(rng.choice(n_el, size=n_gap, replace=False))
        keep.reshape(n_el, k)[gap_elements] = False
    counts = {
        "correction": int(rng.integers(1, 6)) if flags["correction"] else 0,
        "duplicate": int(rng.integers(1, 6)) if flags["duplicate_records"] else 0,
        "malformed": int(rng.integers(1, 4)) if flags["malformed"] else 0,
    }
    available = np.flatnonzero(keep)
    wanted = min(sum(counts.values()), len(available))
    picked = np.sort(rng.choice(available, size=wanted, replace=False)) if wanted else available[:0]
    picked = rng.permutation(picked)
    c_end = min(counts["correction"], wanted)
    d_end = min(c_end + counts["duplicate"], wanted)
    n_mal = wanted - d_end
    factor = np.where(
        rng.random(c_end) < 0.5, rng.uniform(0.6, 0.9, c_end), rng.uniform(1.1, 1.4, c_end)
    )
    return BatchPlan(
        keep=keep,
        gap_elements=gap_elements,
        correction_pos=np.sort(picked[:c_end]),
        correction_factor=factor,
        duplicate_pos=np.sort(picked[c_end:d_end]),
        malformed_pos=np.sort(picked[d_end:]),
        malformed_form=np.asarray(MALFORMED_FORMS, dtype=object)[
            rng.integers(0, len(MALFORMED_FORMS), n_mal)
        ],
        malformed_text=np.asarray(_TEXT_VALUES, dtype=object)[
            rng.integers(0, len(_TEXT_VALUES), n_mal)
        ],
    )


def preliminary(
    truth: np.ndarray, factor: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """A plausible but wrong first value that always differs from the truth."""
    value = truth * factor
    bad = (value < lo) | (value > hi) | (value == truth)
    fallback = np.where(truth > lo, lo + 0.5 * (truth - lo), np.minimum(hi, lo + 1.0))
    return np.where(bad, fallback, value)


def record_frame(
    *,
    dn: np.ndarray,
    kpi: np.ndarray,
    period_end_ns: np.ndarray | int,
    value: np.ndarray,
    vendor: np.ndarray,
    sw_version: np.ndarray,
) -> pd.DataFrame:
    """The delivered record table (value stays object so malformed entries survive)."""
    n = len(dn)
    ends = np.broadcast_to(np.asarray(period_end_ns, dtype=np.int64), (n,))
    return pd.DataFrame(
        {
            "dn": pd.array(dn, dtype="str"),
            "kpi": pd.array(kpi, dtype="str"),
            "period_end": pd.DatetimeIndex(ends, tz="UTC"),
            "value": pd.Series(value, dtype=object, copy=False).to_numpy(),
            "vendor": pd.array(vendor, dtype="str"),
            "sw_version": pd.array(sw_version, dtype="str"),
        }
    )


def damaged_records(
    layout: SourceLayout,
    plan: BatchPlan,
    *,
    truth: np.ndarray,
    multiplier: np.ndarray,
    period_end_ns: int,
) -> pd.DataFrame:
    """A regular batch with its gap, preliminary, duplicate and malformed records applied."""
    values = truth.copy()
    cpos = plan.correction_pos
    values[cpos] = preliminary(
        truth[cpos], plan.correction_factor, layout.valid_min[cpos], layout.valid_max[cpos]
    )
    values = (values * multiplier).astype(object)
    dn, kpi = layout.dn.copy(), layout.kpi.copy()
    extra_rows = []
    for pos, form, text in zip(
        plan.malformed_pos, plan.malformed_form, plan.malformed_text, strict=True
    ):
        if form == "nan":
            values[pos] = float("nan")
        elif form == "text":
            values[pos] = text
        elif form == "negative":
            values[pos] = -(abs(float(values[pos])) + 1.0)
        elif form == "unknown_counter":
            extra_rows.append(
                (pos, layout.dn[pos], _UNKNOWN_COUNTERS[pos % len(_UNKNOWN_COUNTERS)])
            )
        else:
            extra_rows.append((pos, "", layout.kpi[pos]))
    rows = np.concatenate([np.flatnonzero(plan.keep), plan.duplicate_pos]).astype(np.int64)
    extra_pos = np.array([r[0] for r in extra_rows], dtype=np.int64)
    all_rows = np.concatenate([rows, extra_pos])
    out_dn = np.concatenate([dn[rows], np.array([r[1] for r in extra_rows], dtype=object)])
    out_kpi = np.concatenate([kpi[rows], np.array([r[2] for r in extra_rows], dtype=object)])
    return record_frame(
        dn=out_dn,
        kpi=out_kpi,
        period_end_ns=period_end_ns,
        value=values[all_rows],
        vendor=layout.vendor[all_rows],
        sw_version=layout.sw_version[all_rows],
    )


def correction_records(
    layout: SourceLayout,
    plan: BatchPlan,
    *,
    truth: np.ndarray,
    multiplier: np.ndarray,
    period_end_ns: int,
) -> pd.DataFrame:
    """The re-delivered records carrying the true values."""
    pos = plan.correction_pos
    return record_frame(
        dn=layout.dn[pos],
        kpi=layout.kpi[pos],
        period_end_ns=period_end_ns,
        value=(truth[pos] * multiplier[pos]).astype(object),
        vendor=layout.vendor[pos],
        sw_version=layout.sw_version[pos],
    )
