"""Calibrated confidence: isotonic fit, the shipped table, reliability and ECE helpers."""

from __future__ import annotations

import numpy as np
import pytest

from services.anomaly import calibration as cal
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE

SCORE_STEP = cal.SCORE_GRID / 2


def test_isotonic_fit_pools_adjacent_violators() -> None:
    xs, ys = cal.isotonic_fit(np.array([1, 2, 3, 4, 5.0]), np.array([0, 1, 0, 1, 1.0]))
    # (1, 0) stays; (2, 1) and (3, 0) violate and pool to 0.5; then 1, 1.
    assert xs.tolist() == [1, 2, 4]
    assert ys.tolist() == [0, 0.5, 1]


def test_isotonic_fit_gives_equal_scores_one_value() -> None:
    xs, ys = cal.isotonic_fit(np.array([2, 2, 2, 1.0]), np.array([1, 0, 1, 0.0]))
    assert xs.tolist() == [1, 2]
    assert ys.tolist() == pytest.approx([0, 2 / 3])


def test_shipped_table_is_monotone_probabilities_with_provenance() -> None:
    table = cal.load_table()
    assert table.version
    assert table.target
    assert table.fitted_on
    assert list(table.scores) == sorted(table.scores)
    assert table.scores[0] == 0
    assert all(0 <= c <= 1 for c in table.confidences)
    assert list(table.confidences) == sorted(table.confidences)
    scores = np.linspace(-40, 40, 801)
    conf = cal.calibrated(scores)
    magnitude_order = np.argsort(np.abs(scores), kind="stable")
    assert (np.diff(conf[magnitude_order]) >= 0).all()
    assert cal.calibrated(np.array([np.nan]))[0] == 0
    assert cal.calibrated(-5.0) == cal.calibrated(5.0)  # symmetric in the direction


def test_score_for_is_the_edge_of_the_first_block_reaching_a_confidence() -> None:
    table = cal.CalibrationTable("t", "test", (0.0, 2.0, 5.0), (0.1, 0.4, 0.8))
    assert table.score_for(0.3) == 2.0
    assert table.score_for(0.8) == 5.0
    assert table.score_for(0.9) == float("inf")
    assert table.confidence(np.array([1.99, 2.0, 7.0])).tolist() == [0.1, 0.4, 0.8]


def test_fit_recovers_known_probabilities_on_held_out_data() -> None:
    rng = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        score = rng.uniform(0, 10, n)
        truth = 1 / (1 + np.exp(-(score - 6)))  # P(anomaly | score), increasing
        return score, (rng.uniform(size=n) < truth).astype(float)

    train, held = sample(40_000), sample(40_000)
    table = cal.fit_table(*train, version="t", target="synthetic", fitted_on="test")
    conf = table.confidence(held[0])
    assert cal.expected_calibration_error(conf, held[1]) < 0.02
    assert table.confidence(np.array([9.5]))[0] > 0.9
    assert table.confidence(np.array([1.0]))[0] < 0.05


def test_reliability_table_and_ece_by_hand() -> None:
    conf = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.95, 0.95])
    hit = np.array([0, 0, 1, 1, 1, 1, 0.0])
    table = cal.reliability_table(conf, hit, bins=10)
    assert table["count"].tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 4]
    assert table.loc[9, "observed_rate"] == 0.75
    # |0 - .05|*2 + |1 - .15|*1 + |.75 - .95|*4, over 7 outputs.
    expected = (0.1 + 0.85 + 0.8) / 7
    assert cal.expected_calibration_error(conf, hit, bins=10) == pytest.approx(expected)


def test_ece_is_zero_when_outcomes_match_confidence() -> None:
    conf = np.repeat([0.25, 0.75], 4)
    hit = np.array([1, 0, 0, 0, 1, 1, 1, 0.0])
    assert cal.expected_calibration_error(conf, hit) == pytest.approx(0.0)
    assert np.isnan(cal.expected_calibration_error(np.array([]), np.array([])))


def test_shipped_table_is_fitted_on_network_data_and_supports_the_default() -> None:
    table = cal.load_table()
    assert "simulator" in table.target  # the product's domain: network KPIs
    edge = table.score_for(DEFAULT_MIN_CONFIDENCE)
    assert np.isfinite(edge)  # "more likely than not" is reachable
    assert cal.calibrated(edge) >= DEFAULT_MIN_CONFIDENCE > cal.calibrated(edge - SCORE_STEP)
