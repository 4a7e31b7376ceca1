"""Validation of a large batch decides every record exactly as small batches do.

Large batches take shortcuts (text columns with few distinct values are converted once per
value, blank checks only look at values that did not parse, an all-valid batch skips the
row selection); a record's fate and typed values must not depend on the batch it came in.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from services.ingest.validate import KpiLimits, validate

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KPIS = {
    "prb_util_dl": KpiLimits("%", 0.0, 100.0),
    "active_users": KpiLimits("count", 0.0, None),
}
KPI_TEXTS = ["prb_util_dl", " prb_util_dl ", "active_users", "unknown_kpi", None, ""]
VALUES = ["12.5", " 7 ", "", "   ", None, "abc", "150", "-1", "nan", "inf", "3e1"]
PERIODS = ["2026-11-20T11:45:00Z", "2026-11-20T11:30:00+00:00", "not a time", None]


def batch(n: int, seed: int, *, extras: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "dn": [f" SubNetwork=N,EUtranCellFDD=C{i % 40} " if i % 97 else "" for i in range(n)],
            "kpi": pd.Series(rng.choice(np.array(KPI_TEXTS, dtype=object), n), dtype=object),
            "period_end": pd.Series(rng.choice(np.array(PERIODS, dtype=object), n), dtype=object),
            "value": pd.Series(rng.choice(np.array(VALUES, dtype=object), n), dtype=object),
        }
    )
    if extras:
        frame["vendor"] = pd.Series(rng.choice(np.array(["Acme", "x" * 70, None], dtype=object), n))
        frame["sw_version"] = pd.Series(rng.choice(np.array(["R1", "R2", None], dtype=object), n))
        frame["unit"] = pd.Series(rng.choice(np.array(["%", " % ", "count", "", None]), n))
    return frame


def in_pieces(records: pd.DataFrame, size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    goods, bads = [], []
    for start in range(0, len(records), size):
        good, bad = validate(records.iloc[start : start + size], kpis=KPIS, now=NOW)
        goods.append(good.assign(position=good.index + start))
        bads.append(bad.assign(position=bad.index + start))
    return pd.concat(goods, ignore_index=True), pd.concat(bads, ignore_index=True)


def whole(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    good, bad = validate(records, kpis=KPIS, now=NOW)
    return (
        good.assign(position=good.index).reset_index(drop=True),
        bad.assign(position=bad.index).reset_index(drop=True),
    )


@pytest.mark.parametrize("extras", [False, True])
@pytest.mark.parametrize("as_arrow_text", [False, True])
def test_a_large_batch_decides_like_small_ones(extras: bool, as_arrow_text: bool) -> None:
    records = batch(6000, seed=3, extras=extras)
    if as_arrow_text:  # what the CSV reader produces
        records = records.astype({c: "str" for c in records.columns})
    big_good, big_bad = whole(records)
    small_good, small_bad = in_pieces(records, 200)
    assert len(big_good) + len(big_bad) == len(records)
    pd.testing.assert_frame_equal(big_good, small_good, check_dtype=False)
    pd.testing.assert_frame_equal(big_bad, small_bad, check_dtype=False)
    assert set(big_bad["reason_code"]) >= {"missing_dn", "unknown_counter", "missing_value"}


def test_an_all_valid_large_batch_is_typed_like_a_small_one() -> None:
    n = 5000
    records = pd.DataFrame(
        {
            "dn": [f"SubNetwork=N,EUtranCellFDD=C{i}" for i in range(n)],
            "kpi": ["prb_util_dl"] * n,
            "period_end": ["2026-11-20T11:45:00Z"] * n,
            "value": [str(i % 100) for i in range(n)],
        }
    )
    big_good, big_bad = validate(records, kpis=KPIS, now=NOW)
    small_good, small_bad = validate(records.iloc[:10], kpis=KPIS, now=NOW)
    assert big_bad.empty
    assert small_bad.empty
    assert big_good.dtypes.to_dict() == small_good.dtypes.to_dict()
    pd.testing.assert_frame_equal(big_good.iloc[:10], small_good)
    assert records["value"].iloc[0] == "0"  # the caller's frame is left as it was


@pytest.mark.parametrize("period", [[False, True], [None, None]], ids=["booleans", "all-missing"])
def test_a_period_column_that_is_not_time_is_refused_as_bad_timestamp(period: list) -> None:
    # JSON `"timestamp": false` arrives as a boolean column, which pandas converts to
    # times without a zone; it must be refused record by record, not raise.
    records = pd.DataFrame(
        {
            "dn": ["SubNetwork=N,EUtranCellFDD=C1", "SubNetwork=N,EUtranCellFDD=C2"],
            "kpi": ["prb_util_dl", "prb_util_dl"],
            "period_end": pd.Series(period),
            "value": ["1", "2"],
        }
    )
    good, bad = validate(records, kpis=KPIS, now=NOW)
    assert good.empty
    assert bad["reason_code"].tolist() == ["bad_timestamp", "bad_timestamp"]
