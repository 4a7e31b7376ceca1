"""The ground-truth table of injected data defects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.ingest.simulator import defects as dfx
from services.ingest.simulator.topology import ScaleShift

DEFECT_COLUMNS: tuple[str, ...] = (
    "defect_id", "kind", "source", "period_end", "delivered_at", "first_delivered_at",
    "dns", "kpis", "n_records", "detail",
)  # fmt: skip


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _batch_rows(
    *,
    layout: dfx.SourceLayout,
    plan: dfx.BatchPlan | None,
    flags: dict[str, bool],
    schedule: dfx.Schedule,
    s: int,
    j: int,
    period_ns: int,
) -> list[dict]:
    """Defect rows of one source batch."""
    p = int(schedule.periods[j])
    period_end = _ts(p * period_ns)
    regular = _ts(schedule.regular_ns[s, j])
    n_batch = plan.n_records if plan is not None else len(layout.series)
    stamp = f"{period_end:%Y%m%dT%H%MZ}"
    rows: list[dict] = []

    def add(kind: str, delivered_at: pd.Timestamp, n: int, detail: str, **extra: object) -> None:
        suffix = extra.pop("suffix", "")
        rows.append(
            {
                "defect_id": f"sim-{kind}-{layout.name}-{stamp}{suffix}",
                "kind": kind,
                "source": layout.name,
                "period_end": period_end,
                "delivered_at": delivered_at,
                "first_delivered_at": extra.get("first", pd.NaT),
                "dns": extra.get("dns", ()),
                "kpis": extra.get("kpis", ()),
                "n_records": int(n),
                "detail": detail,
            }
        )

    def cells(pos: np.ndarray) -> dict[str, tuple[str, ...]]:
        return {"dns": tuple(layout.dn[pos]), "kpis": tuple(layout.kpi[pos])}

    if flags["late"]:
        add("late", regular, n_batch, f"{int(schedule.late_lag[s, j])} periods late")
    if flags["out_of_order"]:
        add("out_of_order", regular, n_batch, "delivered after the next period's batch")
    if plan is not None and flags["gap"]:
        k = layout.n_kpis
        missing = np.repeat(plan.gap_elements * k, k) + np.tile(
            np.arange(k), len(plan.gap_elements)
        )
        add("gap", regular, len(missing), "records never delivered", **cells(missing))
    if flags["duplicate_batch"]:
        dup = _ts(schedule.duplicate_ns[s, j])
        add(
            "duplicate", dup, n_batch, "whole batch delivered twice", first=regular, suffix="-batch"
        )
    if plan is not None and flags["duplicate_records"]:
        pos = plan.duplicate_pos
        add(
            "duplicate",
            regular,
            len(pos),
            "records repeated in the batch",
            suffix="-records",
            **cells(pos),
        )
    if plan is not None and flags["correction"]:
        pos = plan.correction_pos
        detail = "first delivery carried preliminary values; the correction carries the truth"
        add(
            "correction",
            _ts(schedule.correction_ns[s, j]),
            len(pos),
            detail,
            first=regular,
            **cells(pos),
        )
    if plan is not None and flags["malformed"]:
        pos = plan.malformed_pos
        add("malformed", regular, len(pos), ",".join(plan.malformed_form), **cells(pos))
    return rows


def _scale_shift_rows(
    layouts: tuple[dfx.SourceLayout, ...], shift: ScaleShift, shift_first: int, period_ns: int
) -> list[dict]:
    rows = []
    first_end = _ts(shift_first * period_ns)
    for layout in layouts:
        if not layout.shifted.any():
            continue
        rows.append(
            {
                "defect_id": f"sim-scale_shift-{layout.name}-{shift.vendor}-{shift.sw_version}",
                "kind": "scale_shift",
                "source": layout.name,
                "period_end": first_end,
                "delivered_at": pd.NaT,
                "first_delivered_at": pd.NaT,
                "dns": tuple(layout.dn[layout.shifted]),
                "kpis": (shift.kpi,),
                "n_records": int(layout.shifted.sum()),
                "detail": (
                    f"{shift.vendor} {shift.sw_version} reports {shift.kpi} x{shift.factor:g} "
                    f"for every period ending from {first_end} on"
                ),
            }
        )
    return rows


def defect_table(
    *,
    seed: int,
    schedule: dfx.Schedule,
    layouts: tuple[dfx.SourceLayout, ...],
    period_ns: int,
    p_hi: int,
    shift_first: int | None,
    scale_shift: ScaleShift | None,
) -> pd.DataFrame:
    """One row per injected defect of the scheduled periods up to p_hi."""
    f = schedule.flags
    interesting = f["late"] | f["out_of_order"] | f["duplicate_batch"] | schedule.needs_plan
    rows: list[dict] = []
    for s, j in zip(*np.nonzero(interesting), strict=True):
        p = int(schedule.periods[j])
        if p > p_hi:
            continue
        flags = {name: bool(v[s, j]) for name, v in f.items()}
        plan = None
        if schedule.needs_plan[s, j]:
            plan = dfx.make_plan(seed, layouts[s], int(s), p, flags)
        rows += _batch_rows(
            layout=layouts[s],
            plan=plan,
            flags=flags,
            schedule=schedule,
            s=int(s),
            j=int(j),
            period_ns=period_ns,
        )
    in_range = len(schedule.periods) and schedule.periods[0] <= p_hi
    if scale_shift is not None and shift_first is not None and in_range and p_hi >= shift_first:
        rows += _scale_shift_rows(layouts, scale_shift, shift_first, period_ns)
    frame = pd.DataFrame(rows, columns=list(DEFECT_COLUMNS))
    for column in ("period_end", "delivered_at", "first_delivered_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["n_records"] = frame["n_records"].astype(np.int64)
    return frame.sort_values(["period_end", "source", "kind", "defect_id"], ignore_index=True)
