"""NAB scoring on hand-computed cases and on one real NAB file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from testkit import SHARED_DATA

from benchmarks import nab_scoring as nab

STANDARD = nab.Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FN = nab.Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
STAMPS = pd.Series(pd.date_range("2026-01-01", periods=100, freq="5min"))
WINDOWS = ((STAMPS[40], STAMPS[49]),)  # rows 40..49, after the 15 probationary rows


def hits(*rows: int) -> np.ndarray:
    """Detections at the given rows."""
    out = np.zeros(len(STAMPS), dtype=bool)
    out[list(rows)] = True
    return out


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(4032) == 604
    assert nab.probationary_length(22695) == 750


def test_scaled_sigmoid_reference_values() -> None:
    assert nab.scaled_sigmoid(np.array(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(np.array(-0.5)) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(np.array(0.0)) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(np.array(3.0)) == -1.0


def test_perfect_detector_scores_100_and_none_scores_0() -> None:
    perfect = nab.score_file(hits(40), STAMPS, WINDOWS, STANDARD)
    assert perfect.raw == pytest.approx(1.0)  # earliest row of the window = full tp weight
    assert nab.normalised([perfect]) == pytest.approx(100.0)
    empty = nab.score_file(hits(), STAMPS, WINDOWS, STANDARD)
    assert empty.raw == -1.0
    assert nab.normalised([empty]) == pytest.approx(0.0)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    late = nab.score_file(hits(49), STAMPS, WINDOWS, STANDARD)
    both = nab.score_file(hits(45, 49), STAMPS, WINDOWS, STANDARD)
    middle = nab.score_file(hits(45), STAMPS, WINDOWS, STANDARD)
    # Row 45 of 40..49: position -(49 - 45 + 1)/10 = -0.5.
    assert middle.raw == pytest.approx(0.84828 / 0.98661, abs=1e-4)
    assert both.raw == pytest.approx(middle.raw)
    # Row 49, the last of the window: position -1/10.
    assert late.raw == pytest.approx((2 / (1 + math.exp(-0.5)) - 1) / 0.98661, abs=1e-4)
    assert both.tp == 1
    assert both.fp == 0


def test_false_positives_before_and_after_a_window() -> None:
    before = nab.score_file(hits(20, 40), STAMPS, WINDOWS, STANDARD)
    assert before.raw == pytest.approx(1.0 - 0.11)  # no preceding window: a full FP
    after = nab.score_file(hits(40, 52), STAMPS, WINDOWS, STANDARD)
    # 3 rows past the right edge of a 10-row window: position 3/9.
    fp = (2 / (1 + math.exp(5 * 3 / 9)) - 1) * 0.11
    assert after.raw == pytest.approx(1.0 + fp)
    assert after.fp == 1


def test_probationary_detections_are_ignored() -> None:
    assert nab.score_file(hits(3, 40), STAMPS, WINDOWS, STANDARD).raw == pytest.approx(1.0)


def test_low_fn_profile_normalises_with_its_own_null() -> None:
    empty = nab.score_file(hits(), STAMPS, WINDOWS, LOW_FN)
    assert empty.null == -2.0
    assert nab.normalised([empty]) == 0.0
    half = nab.score_file(hits(45), STAMPS, WINDOWS, LOW_FN)
    assert 0 < nab.normalised([half]) < 100


def test_a_real_nab_file_scores_100_for_window_starts() -> None:
    root = SHARED_DATA / "nab"  # the shared test data sits beside the repository, as in CI
    files = [f for f in nab.load_corpus(root) if f.key.endswith("art_daily_jumpsup.csv")]
    (file,) = files
    bounds = nab.window_bounds(file.frame["timestamp"], file.windows)
    perfect = np.zeros(len(file.frame), dtype=bool)
    perfect[[left for left, _ in bounds]] = True
    for profile in nab.load_profiles(root / "profiles.json"):
        score = nab.score_file(perfect, file.frame["timestamp"], file.windows, profile)
        assert nab.normalised([score]) == pytest.approx(100.0)
