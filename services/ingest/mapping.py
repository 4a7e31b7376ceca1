"""Vendor counter names -> Beacon KPIs, with a scale (e.g. kbit/s -> Mbit/s)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import CounterMapping, Kpi

ANY_VENDOR = "*"


def apply_counter_mappings(session: Session, frame: pd.DataFrame) -> pd.DataFrame:
    """Rename mapped counters to their KPI and attach the scale; others pass unchanged.

    A vendor-specific mapping wins over one for any vendor. The name as received is kept
    in a `counter` column so a quarantined record shows what the source really sent.
    """
    rows = session.execute(
        select(CounterMapping.vendor, CounterMapping.counter, Kpi.name, CounterMapping.scale).join(
            Kpi, Kpi.id == CounterMapping.kpi_id
        )
    ).all()
    if "counter" not in frame:
        frame = frame.assign(counter=frame["kpi"])
    if not rows:
        return frame
    table = pd.DataFrame(rows, columns=["vendor", "counter", "kpi_name", "scale"])
    vendor = (
        frame["vendor"].astype("string").fillna("")
        if "vendor" in frame
        else pd.Series("", index=frame.index, dtype="string")
    )
    counter = frame["counter"].astype("string")
    specific = table[table["vendor"] != ANY_VENDOR].set_index(["vendor", "counter"])
    generic = table[table["vendor"] == ANY_VENDOR].set_index("counter")
    keys = pd.MultiIndex.from_arrays([vendor, counter])
    kpi = pd.Series(specific["kpi_name"].reindex(keys).to_numpy(), index=frame.index)
    scale = pd.Series(specific["scale"].reindex(keys).to_numpy(), index=frame.index)
    missing = kpi.isna()
    kpi[missing] = generic["kpi_name"].reindex(counter[missing]).to_numpy()
    scale[missing] = generic["scale"].reindex(counter[missing]).to_numpy()
    mapped = kpi.notna()
    if not mapped.any():
        return frame
    frame = frame.copy()
    frame.loc[mapped, "kpi"] = kpi[mapped]
    existing = frame["scale"] if "scale" in frame else pd.Series(1.0, index=frame.index)
    frame["scale"] = existing.where(~mapped, scale.astype("float64"))
    return frame
