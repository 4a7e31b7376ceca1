"""The pure detection core: seasonality, spikes, gaps, cold start, level shifts, causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.anomaly.detect import (
    DETECTOR,
    MODEL_VERSION,
    DetectorConfig,
    band_for_series,
    corroborate,
    detect_series_matrix,
    peer_scores,
    required_lags,
)
from services.anomaly.stream import alert_onsets, decide
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE

STEP = pd.Timedelta(minutes=15)
PER_DAY = 96


def daily_series(days: int = 12, seed: int = 1, noise: float = 1.0) -> pd.Series:
    """A KPI with a strong daily cycle (busy-hour peak) and Gaussian noise, 15-minute grid."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    stamps = pd.date_range("2026-03-02", periods=n, freq=STEP, tz="UTC")
    hour = (np.arange(n) % PER_DAY) / 4
    shape = 100 + 60 * np.exp(-((hour - 19) ** 2) / 6) + 25 * (hour > 8)
    return pd.Series(shape + rng.normal(0, noise, n), index=stamps)


def flagged(out: pd.DataFrame) -> np.ndarray:
    """Rows the product would report at its default threshold."""
    return decide_rows(out)["anomaly"].to_numpy()


def decide_rows(out: pd.DataFrame) -> pd.DataFrame:
    """Apply the default threshold to already scored rows."""
    ok = out["status"].to_numpy() == "ok"
    return out.assign(anomaly=ok & (out["confidence"].to_numpy() >= DEFAULT_MIN_CONFIDENCE))


def test_identity_and_lags_are_bounded() -> None:
    assert DETECTOR == "seasonal_robust"
    assert MODEL_VERSION
    for step in ("5min", "15min", "1h", "1D"):
        lags = required_lags(DetectorConfig(), pd.Timedelta(step))
        assert min(lags) >= 1
        assert len(lags) < 250
        assert lags == sorted(set(lags))
    # A 15-minute KPI reads its previous week: the weekly profile needs those columns.
    assert 7 * PER_DAY in required_lags(DetectorConfig(), STEP)


def test_daily_cycle_is_not_flagged_and_a_spike_is() -> None:
    series = daily_series()
    spike_at = 11 * PER_DAY + 30  # an ordinary night-time slot on day 12
    series.iloc[spike_at] += 150  # the default threshold is strict (see BENCHMARKS.md)
    out = band_for_series(series)
    anomalies = flagged(out)
    assert anomalies[spike_at]
    assert out["score"].iloc[spike_at] > 20
    # Outside the spike the busy-hour ramps of eleven days raise no alert.
    others = np.delete(anomalies, [spike_at])
    assert others[2 * PER_DAY :].sum() == 0


def test_seasonal_profile_is_used_once_history_supports_it() -> None:
    out = band_for_series(daily_series())
    early = out["season"].iloc[: 2 * PER_DAY]
    assert (early == "none").all()  # fewer than three past days: no daily profile yet
    assert (out["season"].iloc[4 * PER_DAY :] != "none").any()


def test_weekly_pattern_is_not_flagged() -> None:
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2026-01-05", periods=6 * 7 * 24, freq="1h", tz="UTC")
    weekend = stamps.day_of_week >= 5
    hour = stamps.hour.to_numpy()
    values = (
        200 + 80 * np.sin(np.pi * hour / 24) ** 2 - 120 * weekend + rng.normal(0, 2, len(stamps))
    )
    out = band_for_series(pd.Series(values, index=stamps))
    assert flagged(out)[4 * 7 * 24 :].sum() == 0


def test_cold_start_is_insufficient_data_never_an_anomaly() -> None:
    series = daily_series(days=1)
    series.iloc[5] = 10_000  # wild value before any history exists
    out = band_for_series(series)
    first = out.iloc[:8]
    assert (first["status"] == "insufficient_data").all()
    assert (first["confidence"] == 0).all()
    assert first["score"].isna().all()
    assert not flagged(out)[:8].any()


def test_gaps_are_missing_and_scoring_resumes() -> None:
    series = daily_series(days=6)
    series.iloc[300:340] = np.nan
    out = band_for_series(series.drop(series.index[400:420]))  # absent rows, too
    assert (out["status"].iloc[300:340] == "missing").all()
    assert (out["confidence"].iloc[300:340] == 0).all()
    after = out.iloc[345:]
    assert (after["status"] == "ok").mean() > 0.99
    assert not flagged(out)[345:].any()


def test_level_shift_is_one_alert_and_the_band_does_not_follow_it_at_once() -> None:
    rng = np.random.default_rng(5)
    # The shift comes after the first week (2,016 rows): the hold needs a week of history.
    values = np.r_[rng.normal(50, 1, 2400), rng.normal(80, 1, 1600)]
    stamps = pd.date_range("2026-02-01", periods=len(values), freq="5min", tz="UTC")
    out = decide(pd.Series(values, index=stamps))
    assert out["anomaly"].iloc[2400:2402].any()
    assert out["onset"].sum() == 1
    # While the shift is recent it stays anomalous and the expectation (and band) stays on
    # the long-run level instead of absorbing the anomaly within a few periods ...
    assert out["anomaly"].iloc[2402:2500].all()
    assert (out["expected"].iloc[2402:2500] < 55).all()
    # ... until the long-run references adopt it (here within about three days).
    assert not out["anomaly"].iloc[3400:].any()
    assert (out["expected"].iloc[3400:] > 75).all()


def test_gradual_build_up_is_seen_by_the_slower_statistic_only() -> None:
    rng = np.random.default_rng(6)
    values = rng.normal(50, 1, 2600)
    values[2000:2100] += np.linspace(0, 30, 100)  # 0.3 sigma per period
    stamps = pd.date_range("2026-02-01", periods=len(values), freq="5min", tz="UTC")
    series = pd.Series(values, index=stamps)
    out = decide(series)
    assert out["anomaly"].iloc[2000:2100].any()
    assert not out["anomaly"].iloc[:2000].any()
    # The point score alone follows the build-up and never reaches the threshold.
    point_only = decide(series, config=DetectorConfig(shift_weight=0.0))
    assert not point_only["anomaly"].iloc[2000:2100].any()


def test_slow_drift_is_not_flagged() -> None:
    rng = np.random.default_rng(8)
    n = 3000
    values = 100 + 0.05 * np.arange(n) + rng.normal(0, 1, n)
    stamps = pd.date_range("2026-02-01", periods=n, freq="5min", tz="UTC")
    assert not flagged(band_for_series(pd.Series(values, index=stamps))).any()


def test_flat_series_does_not_explode_but_a_change_is_seen() -> None:
    stamps = pd.date_range("2026-02-01", periods=500, freq="5min", tz="UTC")
    values = np.full(500, 7.0)
    values[450] = 9.0
    out = band_for_series(pd.Series(values, index=stamps))
    assert np.isfinite(out["score"].iloc[120:]).all()
    assert (out["score"].iloc[120:450].abs() < 1e-9).all()
    assert flagged(out)[450]


@pytest.mark.parametrize("cut", [60, 400, 777, 1100])
def test_no_look_ahead_prefix_gives_the_same_rows(cut: int) -> None:
    series = daily_series()
    series.iloc[900] += 30
    full = band_for_series(series)
    pd.testing.assert_frame_equal(band_for_series(series.iloc[:cut]), full.iloc[:cut])


def test_out_of_order_rows_stay_causal() -> None:
    series = daily_series(days=4)
    shuffled = pd.concat([series.iloc[:200], series.iloc[[210]], series.iloc[200:210]])
    full = band_for_series(pd.concat([shuffled, series.iloc[211:]]))
    part = band_for_series(shuffled)
    pd.testing.assert_frame_equal(part, full.iloc[: len(shuffled)])


def test_matrix_with_only_required_lags_matches_the_series_path() -> None:
    a, b = daily_series(seed=1), daily_series(seed=2) * 3
    b.iloc[1000] += 200
    full = band_for_series(b)
    targets = b.index[[700, 1000, 1100]]
    keep = set()
    for t in targets:
        keep.update(t - lag * STEP for lag in required_lags(DetectorConfig(), STEP))
        keep.add(t)
    matrix = pd.DataFrame([a.values, b.values], index=["a", ("cell", 7)], columns=a.index)
    sparse = matrix[[c for c in matrix.columns if c in keep]]
    result = detect_series_matrix(sparse, targets, DetectorConfig(step=STEP))
    assert list(result.columns[:4]) == ["series", "period_end", "observed", "expected"]
    got = result[result["series"] == ("cell", 7)].set_index("period_end")
    want = full.loc[targets]
    for column in ("observed", "expected", "band_low", "band_high", "score", "confidence"):
        np.testing.assert_allclose(got[column].to_numpy(), want[column].to_numpy())
    assert (got["status"] == "ok").all()
    assert got["score"].iloc[1] > 10
    assert (got["history"] > 0).all()


def test_matrix_without_history_is_insufficient() -> None:
    stamps = pd.date_range("2026-02-01", periods=3, freq="15min", tz="UTC")
    matrix = pd.DataFrame([[1.0, 2.0, 3.0]], index=[1], columns=stamps)
    result = detect_series_matrix(matrix, stamps[-1:])
    assert result["status"].tolist() == ["insufficient_data"]
    assert result["confidence"].tolist() == [0.0]


def test_alert_onsets_merge_short_pauses() -> None:
    anomaly = np.zeros(60, dtype=bool)
    anomaly[[3, 4, 8, 30, 43]] = True
    assert np.flatnonzero(alert_onsets(anomaly, clear_after=12)).tolist() == [3, 30, 43]


def test_peer_scores_find_the_odd_member() -> None:
    t = pd.Timestamp("2026-02-01 10:00", tz="UTC")
    frame = pd.DataFrame(
        {
            "series": list(range(7)),
            "group": ["site-a"] * 6 + ["site-b"],
            "period_end": [t] * 7,
            "value": [10.0, 11.0, 10.5, 9.5, 10.2, 40.0, 3.0],
        }
    )
    out = peer_scores(frame)
    assert out.loc[5, "peer_score"] > 10
    assert out.loc[:4, "peer_score"].abs().max() < 2
    assert out.loc[0, "peer_size"] == 6
    assert np.isnan(out.loc[6, "peer_score"])  # a group of one has no peers


def test_corroboration_counts_kpis_and_never_lowers_confidence() -> None:
    t = pd.Timestamp("2026-02-01 10:00", tz="UTC")
    results = pd.DataFrame(
        {
            "element": [1, 1, 1, 2],
            "period_end": [t] * 4,
            "kpi": ["drop_rate", "throughput", "latency", "drop_rate"],
            "score": [8.0, -6.0, 0.5, 9.0],
            "confidence": [0.3, 0.25, 0.05, 0.3],
        }
    )
    out = corroborate(results, min_confidence=0.2).set_index("element")
    assert out.loc[1, "kpis_deviating"] == 2
    assert out.loc[1, "deviating_kpis"] == ["drop_rate", "throughput"]
    assert out.loc[1, "combined_confidence"] > out.loc[1, "max_confidence"] == 0.3
    assert out.loc[2, "combined_confidence"] == pytest.approx(0.3)
    assert (out["combined_confidence"] <= 1).all()


def test_first_week_weekend_is_not_a_shift_but_an_outage_is_seen() -> None:
    rng = np.random.default_rng(3)
    # Starts on a Wednesday: the first weekend arrives before a week of history exists.
    stamps = pd.date_range("2026-01-07", periods=10 * PER_DAY, freq=STEP, tz="UTC")
    weekend = stamps.day_of_week >= 5
    hour = stamps.hour.to_numpy()
    values = 200 + 80 * np.sin(np.pi * hour / 24) ** 2 - 120 * weekend
    values = values + rng.normal(0, 2, len(stamps))
    out = band_for_series(pd.Series(values, index=stamps))
    assert not flagged(out).any()
    # The first day's confidence ramps up with the share of the day seen.
    first = out.iloc[: PER_DAY - 1]
    assert (first["confidence"] <= first["history"] / 24 + 1e-9).all()
    # The slower statistic waits for a week of history; the point score does not.
    assert out["shift"].iloc[: 7 * PER_DAY].isna().all()
    assert out["shift"].iloc[7 * PER_DAY :].notna().all()
    outage = values.copy()
    outage[5 * PER_DAY + 40 : 5 * PER_DAY + 48] = 0.0  # Saturday 10:00-12:00
    hit = flagged(band_for_series(pd.Series(outage, index=stamps)))
    assert hit[5 * PER_DAY + 40 : 5 * PER_DAY + 48].any()


def test_expectation_holds_through_an_incident_and_the_return_is_no_swing() -> None:
    series = daily_series(days=12, noise=3.0)
    at = 10 * PER_DAY + 60  # 15:00 on day 11
    series.iloc[at : at + 12] += 150
    out = band_for_series(series)
    # Whichever predictor wins a period, the expectation stays near the usual profile ...
    assert (out["expected"].iloc[at : at + 12] < 200).all()
    assert flagged(out)[at : at + 12].all()
    # ... so the return to normal is not a deviation in the other direction.
    assert (out["score"].iloc[at + 12 : at + 20] > -5).all()


def test_a_missing_value_does_not_make_an_old_series_young() -> None:
    series = daily_series(days=10)
    target = 9 * PER_DAY + 10
    series.iloc[target - 3 * PER_DAY] = np.nan  # a gap at a lag the day count reads
    out = band_for_series(series)
    assert out["status"].iloc[target] == "ok"
    assert np.isfinite(out["shift"].iloc[target])  # still counted as nine days of history


def weekend_series(days: int, seed: int = 3) -> pd.Series:
    """A diurnal KPI that drops by 40% at weekends, with 2% multiplicative noise."""
    rng = np.random.default_rng(seed)
    # Starts on a Wednesday: weekends on days 3-4, 10-11 and 17-18.
    stamps = pd.date_range("2026-01-07", periods=days * PER_DAY, freq=STEP, tz="UTC")
    hour = stamps.hour.to_numpy() + stamps.minute.to_numpy() / 60
    level = 200 + 80 * np.sin(np.pi * hour / 24) ** 2 - 120 * (stamps.day_of_week >= 5)
    return pd.Series(level * (1 + rng.normal(0, 0.02, len(stamps))), index=stamps)


def test_second_weekend_is_not_a_shift_before_the_weekly_profile_exists() -> None:
    # Weeks two and three: the slower statistic is on (> 7 days), but the weekly profile
    # needs three past weeks, so the daily profile and the level are weekday-dominated.
    series = weekend_series(days=19)
    out = band_for_series(series)
    assert out["shift"].iloc[7 * PER_DAY :].notna().all()
    # Neither the second nor the third weekend (nor the Mondays after) is an anomaly ...
    assert not flagged(out)[7 * PER_DAY :].any()
    assert (out["shift"].iloc[10 * PER_DAY : 12 * PER_DAY].abs() < 3).all()
    # ... while an outage on the second Saturday and a sustained rise on a weekday of the
    # second week are still seen.
    for lo, hi, factor in (
        (10 * PER_DAY + 40, 10 * PER_DAY + 48, 0.0),
        (13 * PER_DAY + 40, 13 * PER_DAY + 64, 1.3),
    ):
        changed = series.copy()
        changed.iloc[lo:hi] *= factor
        hit = flagged(band_for_series(changed))
        assert hit[lo:hi].sum() >= 3
        assert not np.delete(hit, np.arange(lo, hi + 8))[7 * PER_DAY :].any()
