"""The seasonal robust baseline: which past periods it reads and how it scores one period.

The kernel works on a lag matrix: one row per (series, target period), one column per lag
(steps back from the target). Everything it decides, including whether the series is
seasonal at all, comes from those columns, so a loader that fetches only `lag_plan().lags` gets the
same answer as one holding the full history, and no future value can leak in. The amount
of history is counted there too (past days at the same time of day), so a cold start is
judged the same way by every loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MEAN_AD_TO_SIGMA = 1.2533  # same for the mean absolute deviation (fallback when MAD is 0)
SCORE_LIMIT = 1000.0  # keeps scores finite and printable when a flat series moves


@dataclass(frozen=True)
class DetectorConfig:
    """Tuning of the seasonal robust baseline; the step is inferred from the data when None."""

    step: pd.Timedelta | None = None
    level_points: int = 3  # the recent level is the median of the last n points
    # Residuals of the local predictor at t-1..t-n. Off by default: on NAB, letting the last
    # few errors size the spread masked sustained deviations (a burst widened its own band).
    recent_phases: int = 0
    context_points: int = 24  # residuals at n points spread evenly over the last day
    daily_cycles: int = 7  # same time of day on the previous n days
    weekly_cycles: int = 4  # same time of week in the previous n weeks
    tail_quantile: float = 0.9  # spread >= the sigma this quantile of past |errors| implies
    min_level: int = 2  # fewer valid points among the last level_points -> insufficient_data
    min_residuals: int = 8  # fewer past residuals to size the spread -> insufficient_data
    min_cycles: int = 3  # a seasonal profile needs this many valid past cycles
    seasonal_gain: float = 0.9  # seasonal only when its past error < gain × the local one
    min_ratio: float = 0.3  # a seasonal spread is at least this share of the local one
    relative_floor: float = 0.001  # spread never below this share of the expected level
    absolute_floor: float = 1e-6  # nor below this (flat zero series)
    # The slower-scale shift statistic counts as evidence at this weight against the point
    # score (confidence = calibrated max(|score|, weight * |shift|)); 0 turns it off.
    # Chosen on NAB (BENCHMARKS.md): standard score 60-64 for any weight from 3 to 10.
    shift_weight: float = 5.0
    # |shift| of the periods before t (in the slower statistic's sigma) from which they are
    # treated as anomalous: the expectation stops following their level.
    hold_shift: float = 10.0
    # Cold start, in days of history the lag columns reach back: fewer than min_days
    # -> the confidence is scaled by the share of a day seen (the first morning ramp is
    # not yet known to be routine); fewer than shift_days -> no slower statistic and no
    # hold yet, because its long-run reference has not seen a whole week (the first
    # weekend is not a shift). Ignored without a daily cycle (steps of more than 6 hours).
    # After that and until the weekly profile has min_cycles past weeks, a single past day
    # at the same time within hold_shift point sigma of the level explains it (the second
    # weekend is not a shift either; see score_lag_matrix).
    min_days: int = 1
    shift_days: int = 7
    # Band half-width in sigma; None = the |score| at which the calibrated confidence reaches
    # the default alert threshold, so "outside the band" and "anomaly" agree.
    band_sigma: float | None = None


@dataclass(frozen=True)
class LagPlan:
    """The lag columns the kernel reads: blocks of level_points + 1 lags at each phase."""

    lags: tuple[int, ...]
    phases: tuple[int, ...]  # lag of each reference point whose local residual is measured
    seasons: tuple[tuple[int, int], ...]  # (period in steps, cycles)
    day: int = 0  # steps per day when a daily cycle is among the seasons, else 0


def seasonal_periods(config: DetectorConfig, step: pd.Timedelta) -> list[tuple[int, int]]:
    """Daily and weekly periods (in steps) the step supports, with their cycle counts."""
    if step <= pd.Timedelta(0):
        raise ValueError("the step must be positive")
    per_day = DAY / step
    periods: list[tuple[int, int]] = []
    # A period is only usable when it is a whole number of steps of at least four.
    if per_day >= 4 and float(per_day).is_integer():
        periods.append((int(per_day), config.daily_cycles))
    per_week = 7 * per_day
    if per_week >= 4 and float(per_week).is_integer():
        periods.append((int(per_week), config.weekly_cycles))
    return [(p, c) for p, c in periods if c > 0]


def lag_plan(config: DetectorConfig, step: pd.Timedelta) -> LagPlan:
    """The bounded set of lags for this configuration and step."""
    phases = set(range(1, config.recent_phases + 1))
    per_day = DAY / step
    if per_day >= config.context_points:
        span = round(per_day)
        points = np.linspace(span / config.context_points, span, config.context_points)
        phases.update(round(float(v)) for v in points)
    else:
        phases.update(range(1, config.context_points + 1))
    seasons = tuple(seasonal_periods(config, step))
    for period, cycles in seasons:
        phases.update(k * period for k in range(1, cycles + 1))
    lags = {r + j for r in phases for j in range(config.level_points + 1)}
    lags.update(range(1, config.level_points + 1))
    day = round(per_day) if any(p == round(per_day) for p, _c in seasons) else 0
    if day:
        # Past days of history are counted at the same time of day (cold start).
        lags.update(k * day for k in range(1, max(config.min_days, config.shift_days) + 1))
    return LagPlan(tuple(sorted(lags)), tuple(sorted(phases)), seasons, day)


def nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN; complete rows take numpy's fast path."""
    flat = values.reshape(-1, values.shape[-1])
    gaps = np.isnan(flat).any(axis=1)
    if flat.shape[1] == 3 and not gaps.any():
        # The common case (level blocks of three, no gaps): median-of-three without a sort.
        a, b, c = flat[:, 0], flat[:, 1], flat[:, 2]
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c)).reshape(
            values.shape[:-1]
        )
    out = np.empty(flat.shape[0], dtype=flat.dtype)
    if not gaps.all():
        out[~gaps] = np.median(flat[~gaps], axis=1) if flat.shape[1] else np.nan
    if gaps.any():
        out[gaps] = _sorted_nanmedian(flat[gaps])
    return out.reshape(values.shape[:-1])


def _sorted_nanmedian(flat: np.ndarray) -> np.ndarray:
    ordered = np.sort(flat, axis=1)  # NaN sorts last
    count = (~np.isnan(ordered)).sum(axis=1)
    rows = np.arange(len(flat))
    lo = np.maximum(count - 1, 0) // 2
    hi = np.maximum(count, 1) // 2 - (count == 0)
    out = (ordered[rows, lo] + ordered[rows, np.maximum(hi, 0)]) / 2.0
    return np.where(count > 0, out, np.nan)


def leave_one_out_median(values: np.ndarray) -> np.ndarray:
    """For each element on the last axis, the median of the others (NaN-aware)."""
    order = np.argsort(values, axis=-1, kind="stable")  # NaN last
    ordered = np.take_along_axis(values, order, axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(values.shape[-1]), axis=-1)
    count = (~np.isnan(values)).sum(axis=-1, keepdims=True)
    lo = np.maximum(count - 2, 0) // 2
    hi = np.maximum(count - 1, 0) // 2
    # Position p among the others is rank p, or p + 1 once past the removed element.
    lo = lo + (lo >= rank)
    hi = hi + (hi >= rank)
    size = values.shape[-1] - 1
    a = np.take_along_axis(ordered, np.minimum(lo, size), axis=-1)
    b = np.take_along_axis(ordered, np.minimum(hi, size), axis=-1)
    out = (a + b) / 2.0
    return np.where((count >= 2) & ~np.isnan(values), out, np.nan)


def tail_scale(deviations: np.ndarray, quantile: float) -> np.ndarray:
    """Sigma implied by a high quantile of |deviations| (last axis), as if they were normal."""
    ordered = np.sort(np.abs(deviations), axis=-1)
    count = (~np.isnan(ordered)).sum(axis=-1)
    at = np.floor(quantile * np.maximum(count - 1, 0)).astype(np.intp)
    value = np.take_along_axis(ordered, at[..., None], axis=-1)[..., 0]
    z = NormalDist().inv_cdf((1.0 + quantile) / 2.0)  # |Z| quantile of a normal
    return np.where(count > 0, value / z, np.nan)


def robust_scale(deviations: np.ndarray) -> np.ndarray:
    """Sigma estimate from deviations (last axis): MAD, or mean |dev| where MAD is zero."""
    absolute = np.abs(deviations)
    mad = nanmedian(absolute) * MAD_TO_SIGMA
    count = (~np.isnan(absolute)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ad = np.nansum(absolute, axis=-1) / count * MEAN_AD_TO_SIGMA
    # Mostly-constant series have MAD 0 although they do move: the mean keeps that movement.
    return np.where((mad > 0) | np.isnan(mean_ad), mad, mean_ad)


def _columns(plan: LagPlan, wanted: tuple[int, ...] | list[int]) -> np.ndarray:
    position = {lag: i for i, lag in enumerate(plan.lags)}
    return np.array([position[lag] for lag in wanted], dtype=np.intp)


def _nearest_day(
    observed: np.ndarray,
    latest: np.ndarray,
    blocks: np.ndarray,
    plan: LagPlan,
    phases: list[int],
    config: DetectorConfig,
    young: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Drift of the recent points from the single past day that matches them best.

    Returns (drift with this period, drift of the points before it), each against the past
    day at the same time (lags k days, k = 1..daily_cycles) with the smallest |drift|; NaN
    where no past day has values there, the plan has no daily cycle, or the row is not
    `young` (computed for those rows only).
    """
    rows = len(observed)
    cycles = [k for k in range(1, config.daily_cycles + 1) if k * plan.day in phases]
    out = [np.full(rows, np.nan), np.full(rows, np.nan)]
    if not plan.day or not cycles or not young.any():
        return out[0], out[1]
    # Only the rows still without a weekly profile (none in steady state): no extra cost.
    days = blocks[young][:, [phases.index(k * plan.day) for k in cycles], :]
    now = np.column_stack([observed, latest])[young]
    picked = []
    for drift in (
        nanmedian(now[:, None, :] - days),
        nanmedian(latest[young][:, None, :] - days[:, :, 1:]),
    ):
        size = np.where(np.isnan(drift), np.inf, np.abs(drift))
        pick = np.take_along_axis(drift, size.argmin(axis=1)[:, None], axis=1)[:, 0]
        picked.append(np.where(np.isfinite(size.min(axis=1)), pick, np.nan))
    out[0][young], out[1][young] = picked
    return out[0], out[1]


def score_lag_matrix(
    observed: np.ndarray, lagged: np.ndarray, plan: LagPlan, config: DetectorConfig
) -> dict[str, np.ndarray]:
    """Expected value, spread, score, history and status for each row of a lag matrix."""
    observed = np.asarray(observed, dtype=np.float64)
    lagged = np.asarray(lagged, dtype=np.float64)
    rows, width = len(observed), config.level_points + 1
    phases = list(plan.phases)
    blocks = lagged[:, _columns(plan, [r + j for r in phases for j in range(width)])]
    blocks = blocks.reshape(rows, len(phases), width)
    latest = lagged[:, _columns(plan, list(range(1, width)))]
    n_level = (~np.isnan(latest)).sum(axis=1)
    expected = nanmedian(latest)
    # The local predictor's own past errors (at recent points, across the last day and at
    # past cycles) size the spread: a long memory at a bounded number of lags.
    local_error = blocks[:, :, 0] - nanmedian(blocks[:, :, 1:])
    n_residuals = (~np.isnan(local_error)).sum(axis=1)
    # Heavy-tailed series (bursty counts) get the sigma their own tail implies, so their
    # routine bursts do not all become anomalies; light-tailed ones keep the MAD sigma. The
    # tail is read at this time of day/week: a daily ramp widens the band at ramp time
    # only, not at night.
    same_phase = [phases.index(k * p) for p, c in plan.seasons for k in range(1, c + 1)]
    tail_at = same_phase or list(range(len(phases)))
    spread = np.fmax(
        robust_scale(local_error), tail_scale(local_error[:, tail_at], config.tail_quantile)
    )
    history = n_residuals.astype(np.int64)
    days_seen = np.full(rows, np.inf)
    if plan.day:
        # How far back the history reaches (the oldest lag holding a value), in days: a
        # missing value here and there does not make an old series young again.
        deep = [lag for lag in plan.lags if lag >= plan.day]
        reach = np.where(np.isnan(lagged[:, _columns(plan, deep)]), 0, np.asarray(deep))
        days_seen = reach.max(axis=1, initial=0) / plan.day
    seasonal = np.zeros(rows, dtype=np.int64)
    best_ratio = np.full(rows, np.inf)
    season_z = np.full(rows, np.inf)  # smallest |shift| over the usable seasonal profiles
    season_num, season_den = np.full(rows, np.nan), np.full(rows, np.nan)
    season_prev = np.full(rows, np.inf)  # the same for the points before t (no observed)
    held_profile = np.full(rows, np.nan)  # the winning profile at t, not shifted
    closest_profile = np.full(rows, np.nan)  # the usable profile nearest the level before t
    level = expected
    weekly_cycles = np.full(rows, -1, dtype=np.int64)  # -1: no weekly season in the plan
    # Slower scale: the level of the last level_points + 1 periods (this one included)
    # against a long-run reference that does not follow the level, in sigma of how far
    # single past points stray from that reference. A single spike barely moves it; a
    # sustained shift or build-up that the level-following expectation absorbs does not.
    recent = nanmedian(np.column_stack([observed, latest]))
    anchor = blocks[:, :, 0]
    reference = nanmedian(anchor)
    shift_scale = robust_scale(anchor - reference[:, None])
    shift_num, shift_den = recent - reference, np.fmax(shift_scale, spread)
    for period, cycles in plan.seasons:
        at = [phases.index(k * period) for k in range(1, cycles + 1)]
        block = blocks[:, at, :]
        profile = nanmedian(np.swapaxes(block, 1, 2))  # (rows, width): typical shape
        # Shift the profile to the current level, measured on the points just before t.
        offset = nanmedian(latest - profile[:, 1:])
        candidate = profile[:, 0] + offset
        # Past errors are judged leave-one-out: a cycle never predicts itself.
        others = np.swapaxes(leave_one_out_median(np.swapaxes(block, 1, 2)), 1, 2)
        past_offset = nanmedian(block[:, :, 1:] - others[:, :, 1:])
        seasonal_error = block[:, :, 0] - others[:, :, 0] - past_offset
        valid_cycles = (~np.isnan(seasonal_error)).sum(axis=1)
        if plan.day and period == 7 * plan.day:
            weekly_cycles = valid_cycles
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = robust_scale(seasonal_error) / robust_scale(local_error[:, at])
        wins = (
            (valid_cycles >= config.min_cycles)
            & np.isfinite(candidate)
            & (ratio < config.seasonal_gain)
            & (ratio < best_ratio)
        )
        expected = np.where(wins, candidate, expected)
        # A handful of cycles can agree by chance: the seasonal spread never drops below
        # min_ratio of the local one nor below what the seasonal errors' own tail implies.
        seasonal_spread = np.fmax(
            spread * np.fmax(ratio, config.min_ratio),
            tail_scale(seasonal_error, config.tail_quantile),
        )
        spread = np.where(wins, seasonal_spread, spread)
        # Seasonal series: the recent points against the unshifted profile at their times.
        # Any profile that explains the level (weekday vs weekend) vetoes a shift, so the
        # smallest |z| over the usable profiles is kept.
        drift = nanmedian(np.column_stack([observed, latest]) - profile)
        unshifted = np.fmax(robust_scale(block[:, :, 0] - others[:, :, 0]), seasonal_spread)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(drift) / np.fmax(np.nan_to_num(unshifted), config.absolute_floor)
        usable = (valid_cycles >= config.min_cycles) & np.isfinite(z) & (z < season_z)
        season_z = np.where(usable, z, season_z)
        season_num = np.where(usable, drift, season_num)
        season_den = np.where(usable, unshifted, season_den)
        with np.errstate(divide="ignore", invalid="ignore"):
            prev = np.abs(offset) / np.fmax(np.nan_to_num(unshifted), config.absolute_floor)
        usable = (valid_cycles >= config.min_cycles) & np.isfinite(prev)
        closest_profile = np.where(usable & (prev < season_prev), profile[:, 0], closest_profile)
        season_prev = np.where(usable, np.fmin(season_prev, prev), season_prev)
        held_profile = np.where(wins, profile[:, 0], held_profile)
        history = np.where(wins, n_residuals + valid_cycles, history)
        seasonal = np.where(wins, period, seasonal)
        best_ratio = np.where(wins, ratio, best_ratio)
    # Series whose expectation is seasonal judge shifts against their profiles.
    # Floored like the spread, so a flat or barely sampled history never holds on noise.
    level_floor = np.fmax(
        config.relative_floor * np.abs(np.nan_to_num(level)), config.absolute_floor
    )
    with np.errstate(invalid="ignore"):
        level_z = np.abs(level - reference) / np.fmax(np.nan_to_num(shift_den), level_floor)
    shift_num = np.where(seasonal > 0, season_num, shift_num)
    shift_den = np.where(seasonal > 0, season_den, shift_den)
    # Periods already anomalous on the slower scale do not set the level: an ongoing
    # anomaly is not absorbed into the expectation (and its band) within a few periods.
    hold = config.hold_shift if config.shift_weight > 0 else np.inf
    warm = days_seen >= config.shift_days
    # Until the weekly profile is usable (min_cycles past weeks), the references above mix
    # day kinds: a weekend slot is judged against a weekday-dominated profile or level and
    # every weekend after the first week looks shifted. Then a single past day at the same
    # time that matches (the last Saturday for this Saturday: within hold_shift point
    # sigma) explains the level: no hold, and the shift is measured against that day.
    young_week = weekly_cycles >= 0
    young_week &= weekly_cycles < config.min_cycles
    day_drift, day_prev = _nearest_day(observed, latest, blocks, plan, phases, config, young_week)
    point_sigma = np.fmax(np.nan_to_num(spread), level_floor)
    with np.errstate(invalid="ignore"):
        day_explains = young_week & (np.abs(day_drift) / point_sigma < hold)
        day_explains_prev = young_week & (np.abs(day_prev) / point_sigma < hold)
    # Where the level predictor won this period but usable profiles all say the periods
    # before t are shifted, the nearest profile holds too: which predictor wins may flip
    # from one period to the next during an incident, and the hold must not flip with it.
    by_profile = (seasonal == 0) & (season_prev >= hold) & np.isfinite(closest_profile)
    held_value = np.where(
        seasonal > 0, held_profile, np.where(by_profile, closest_profile, reference)
    )
    held = np.where(seasonal > 0, season_prev >= hold, (level_z >= hold) | by_profile) & warm
    held &= np.isfinite(held_value)
    held &= ~day_explains_prev
    expected = np.where(held, held_value, expected)
    floor = np.fmax(config.relative_floor * np.abs(np.nan_to_num(expected)), config.absolute_floor)
    spread = np.fmax(np.nan_to_num(spread), floor)
    sufficient = (
        (n_level >= config.min_level)
        & (n_residuals >= config.min_residuals)
        & np.isfinite(expected)
    )
    score = np.clip((observed - expected) / spread, -SCORE_LIMIT, SCORE_LIMIT)
    # A period without a value is "missing" whatever the history; otherwise too little
    # history is "insufficient_data" and never an anomaly.
    status = np.where(
        np.isnan(observed), "missing", np.where(sufficient, "ok", "insufficient_data")
    )
    score = np.where(status == "ok", score, np.nan)
    shift = np.clip(shift_num / np.fmax(np.nan_to_num(shift_den), floor), -SCORE_LIMIT, SCORE_LIMIT)
    with np.errstate(invalid="ignore"):
        day_shift = day_drift / np.fmax(np.nan_to_num(shift_den), floor)
        nearer = day_explains & np.isfinite(day_shift) & ~(np.abs(shift) <= np.abs(day_shift))
    shift = np.where(nearer, np.clip(day_shift, -SCORE_LIMIT, SCORE_LIMIT), shift)
    shift = np.where((status == "ok") & warm, shift, np.nan)
    seen = np.clip(n_residuals / max(config.context_points, 1), 0.0, 1.0)
    return {
        "ramp": np.where(days_seen >= config.min_days, 1.0, seen),
        "shift": shift,
        "expected": np.where(sufficient, expected, np.nan),
        "spread": np.where(sufficient, spread, np.nan),
        "score": score,
        "history": history,
        "season": seasonal,
        "status": status,
    }
