"""Conformal interval scaling: scores, scale factors, calibrated paths and bands."""

from __future__ import annotations

import numpy as np
import pytest

from services.forecast import calibration as cal


def test_mape_and_coverage_skip_missing_and_zero_actuals() -> None:
    actual = np.array([10.0, 0.0, np.nan, 20.0])
    predicted = np.array([11.0, 5.0, 3.0, 18.0])
    assert cal.mape(actual, predicted) == pytest.approx((0.1 + 0.1) / 2)
    assert cal.coverage(actual, actual - 1, actual + 1) == 1.0
    assert np.isnan(cal.mape(np.array([0.0]), np.array([1.0])))


def test_normalised_scores_use_the_side_the_actual_fell() -> None:
    yhat = np.zeros(2)
    scores = cal.normalised_scores(np.array([2.0, -2.0]), yhat, np.array([-4.0, -4.0]), np.ones(2))
    assert scores.tolist() == [2.0, 0.5]


def test_conformal_scale_recovers_the_needed_stretch() -> None:
    rng = np.random.default_rng(0)
    # Errors twice as wide as the model claims: its 80% half-width is 1.2816 for sigma 1.
    errors = rng.normal(0, 2.0, 4000)
    scores = np.abs(errors) / 1.2816
    assert cal.conformal_scale(scores, 0.8) == pytest.approx(2.0, rel=0.06)


def test_conformal_scale_needs_enough_points_and_is_bounded() -> None:
    assert cal.conformal_scale(np.array([5.0, 6.0]), 0.8) == 1.0
    assert cal.conformal_scale(np.full(50, 1e6), 0.8) == cal.SCALE_BOUNDS[1]
    assert cal.conformal_scale(np.full(50, np.nan), 0.8) == 1.0


def test_calibrated_paths_cover_as_scaled() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(0, 1, (5, 4000))
    yhat = np.zeros(5)
    out = cal.calibrate_samples(samples, yhat, 2.0, 3.0)
    lo80, hi80 = cal.quantile_bands(samples, 0.8)
    clo80, chi80 = cal.quantile_bands(out, 0.8)
    np.testing.assert_allclose(chi80, 2.0 * hi80, rtol=0.03)
    np.testing.assert_allclose(clo80, 2.0 * lo80, rtol=0.03)
    _, hi95 = cal.quantile_bands(samples, 0.95)
    _, chi95 = cal.quantile_bands(out, 0.95)
    np.testing.assert_allclose(chi95, 3.0 * hi95, rtol=0.03)
    # Order within each period is kept, so each path stays the same path.
    np.testing.assert_array_equal(out.argsort(axis=1), samples.argsort(axis=1))


def test_identity_scales_leave_paths_alone() -> None:
    samples = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(cal.calibrate_samples(samples, np.ones(3), 1.0, 1.0), samples)


def test_bands_are_nested() -> None:
    samples = np.random.default_rng(2).normal(5, 1, (10, 500))
    b = cal.bands(samples)
    assert (b["lower_95"] <= b["lower_80"]).all()
    assert (b["upper_80"] <= b["upper_95"]).all()
