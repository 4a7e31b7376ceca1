"""Data quality: flags, the confidence factor and the sentence shown with a verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from services.anomaly import calibration, quality
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE

T0 = datetime(2026, 11, 17, 12, 0, tzinfo=UTC)


def rows(**extra: object) -> pd.DataFrame:
    base = {"element_id": [1], "period_end": [T0], "source_id": [5], "late": [False],
            "suspect": [False]}  # fmt: skip
    base.update({k: [v] for k, v in extra.items()})
    return pd.DataFrame(base)


def test_clean_data_keeps_full_confidence() -> None:
    out = quality.flag_frame(rows(), quality.QualityInputs(), now=T0)
    assert out["flags"].iloc[0] == ()
    assert out["dq_factor"].iloc[0] == 1.0
    assert quality.describe([], 40) == "Data complete and on time (40 reference points)."


def test_each_condition_lowers_confidence() -> None:
    inputs = quality.QualityInputs(
        gaps={1: [(T0 - timedelta(hours=3), T0 - timedelta(hours=2))]},
        stale_sources=frozenset({5}),
        drift={1: [T0 - timedelta(days=2)]},
        cold=frozenset({1}),
    )
    out = quality.flag_frame(rows(late=True, suspect=True), inputs, now=T0)
    flags = out["flags"].iloc[0]
    assert set(flags) == {"gap", "stale_source", "late_data", "drift", "cold_start", "suspect"}
    assert out["dq_factor"].iloc[0] < 0.2
    for flag in flags:
        assert quality.factor_for([flag]) < 1.0


def test_old_conditions_do_not_flag() -> None:
    inputs = quality.QualityInputs(
        gaps={1: [(T0 - timedelta(days=3), T0 - timedelta(days=2))]},
        drift={1: [T0 - timedelta(days=9)]},
        stale_sources=frozenset({5}),
    )
    # A stale source says nothing about a period evaluated long after the fact.
    out = quality.flag_frame(rows(), inputs, now=T0 + timedelta(days=1))
    assert out["flags"].iloc[0] == ()


def test_source_level_gap_flags_every_element_of_that_source() -> None:
    inputs = quality.QualityInputs(source_gaps={5: [(T0 - timedelta(hours=1), T0)]})
    assert quality.flag_frame(rows(), inputs, now=T0)["flags"].iloc[0] == ("gap",)


def test_peer_baseline_cold_start_is_flagged() -> None:
    out = quality.flag_frame(rows(cold=True), quality.QualityInputs(), now=T0)
    assert out["flags"].iloc[0] == ("cold_start",)


def test_quality_document_lists_flags_in_contract_order() -> None:
    doc = quality.quality_dict({"revised", "gap"}, 12)
    assert doc["flags"] == ["gap", "revised"]
    assert doc["factor"] == quality.factor_for(["gap"])
    assert doc["history_points"] == 12
    assert "recent periods are missing" in doc["text"]


def test_a_new_element_can_alert_only_on_its_clearest_peer_deviation() -> None:
    """Cold start lowers confidence but must not silence new elements for good."""
    best = float(max(calibration.load_table().confidences))
    assert best * quality.factor_for(["cold_start"]) >= DEFAULT_MIN_CONFIDENCE
    assert best * quality.factor_for(["cold_start", "gap"]) < DEFAULT_MIN_CONFIDENCE
