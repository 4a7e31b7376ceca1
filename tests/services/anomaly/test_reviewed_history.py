"""Reviewed new normals and bad-data windows hide history from the detector's baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from services.anomaly.history import META_COLUMNS, KpiHistory
from services.anomaly.reviewed import Reviewed, hide_reviewed_history

STEP = timedelta(minutes=15)
T0 = datetime(2026, 11, 20, tzinfo=UTC)
COLUMNS = [T0 + STEP * i for i in range(8)]


def history(values: dict[int, list[float]]) -> KpiHistory:
    matrix = pd.DataFrame.from_dict(values, orient="index", columns=pd.DatetimeIndex(COLUMNS))
    return KpiHistory(kpi_id=1, matrix=matrix, meta=pd.DataFrame(columns=META_COLUMNS), rows_read=0)


def test_new_normal_hides_everything_before_it_for_that_element_only() -> None:
    loaded = history({1: [1.0] * 8, 2: [2.0] * 8})
    reviewed = Reviewed(resets={1: COLUMNS[5]})
    out = hide_reviewed_history(loaded, reviewed, targets=[COLUMNS[7]])
    assert np.isnan(out.matrix.loc[1].to_numpy()[:5]).all()
    assert out.matrix.loc[1].to_numpy()[5:].tolist() == [1.0, 1.0, 1.0]
    assert out.matrix.loc[2].tolist() == [2.0] * 8
    # The loaded (possibly cached) matrix itself is never changed.
    assert loaded.matrix.loc[1].tolist() == [1.0] * 8


def test_bad_data_window_leaves_the_baseline_but_a_scored_period_keeps_its_value() -> None:
    loaded = history({1: [1.0, 9.0, 9.0, 1.0, 1.0, 1.0, 9.0, 1.0]})
    reviewed = Reviewed(issues={1: [(COLUMNS[1], COLUMNS[2]), (COLUMNS[6], COLUMNS[7])]})
    out = hide_reviewed_history(loaded, reviewed, targets=[COLUMNS[7]])
    row = out.matrix.loc[1].to_numpy()
    assert np.isnan(row[[1, 2, 6]]).all()
    assert row[[0, 3, 4, 5, 7]].tolist() == [1.0] * 5


def test_nothing_reviewed_returns_the_same_history() -> None:
    loaded = history({1: [1.0] * 8})
    assert hide_reviewed_history(loaded, Reviewed(resets={7: T0}), targets=[]) is loaded
