"""Calibrated confidence: isotonic fit, the shipped table, reliability and ECE helpers."""

from __future__ import annotations

import numpy as np
import pytest

from services.anomaly import calibration as cal
from services.anomaly.detect import MODEL_VERSION
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


def synthetic_episodes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Peak confidence, periods, other KPIs and labels whose truth depends on all three."""
    peak = rng.uniform(0.5, 0.95, n)
    periods = rng.integers(1, 12, n)
    others = rng.integers(0, 4, n) * (rng.uniform(size=n) < 0.4)
    base = np.where(periods >= 4, 0.5, 0.1) + np.where(others > 0, 0.3, 0.0)
    truth = np.clip(base + (peak - 0.5) * 0.4, 0, 1)
    return peak, periods, others, (rng.uniform(size=n) < truth).astype(float)


STRATA: list[cal.StratumSpec] = [
    ("short, alone", 1, 3, 0, 0),
    ("short, with others", 1, 3, 1, None),
    ("long", 4, None, 0, None),
]


def test_episode_table_is_calibrated_per_stratum_on_held_out_episodes() -> None:
    rng = np.random.default_rng(1)
    train, held = synthetic_episodes(20_000, rng), synthetic_episodes(20_000, rng)
    table = cal.fit_episode_table(
        *train, strata=STRATA, version="ep-t", target="synthetic", fitted_on="test"
    )
    assert [s.name for s in table.strata] == [s[0] for s in STRATA]
    assert sum(s.episodes for s in table.strata) == 20_000
    before = held[0]  # the peak period confidence, as episodes reported it before
    after = table.confidence(*held[:3])
    assert cal.expected_calibration_error(after, held[3]) < 0.02
    assert cal.expected_calibration_error(before, held[3]) > 0.1
    # The same peak means different things for a lone blip and a long, corroborated episode.
    blip, lasting = table.confidence(np.array([0.9, 0.9]), np.array([1, 8]), np.array([0, 2]))
    assert blip < 0.3 < 0.6 < lasting


def test_episode_strata_apply_in_order_and_uncovered_episodes_keep_their_peak() -> None:
    rng = np.random.default_rng(2)
    table = cal.fit_episode_table(
        *synthetic_episodes(2_000, rng), strata=STRATA[:1], version="v", target="t", fitted_on="f"
    )
    # A 5-period episode falls in no stratum of this partial table: its peak stands.
    assert table.confidence(0.8, 5, 0).tolist() == [0.8]
    assert table.confidence(0.8, 2, 0)[0] != 0.8


def test_shipped_episode_table_covers_every_episode_with_provenance() -> None:
    table = cal.load_episode_table()
    assert table.version.startswith("ep-")
    assert table.version in MODEL_VERSION
    assert "incident" in table.target
    assert "seeds 1, 2, 3" in table.fitted_on
    periods = np.repeat(np.arange(1, 200), 20)
    others = np.tile(np.arange(20), 199)
    covered = np.zeros(len(periods), dtype=bool)
    for stratum in table.strata:
        assert stratum.episodes > 0
        assert list(stratum.table.confidences) == sorted(stratum.table.confidences)
        assert all(0 <= c <= 1 for c in stratum.table.confidences)
        covered |= stratum.holds(periods, others)
    assert covered.all()
    conf = table.confidence(np.full(len(periods), 0.9), periods, others)
    assert ((conf >= 0) & (conf <= 1)).all()
    # "More likely than not" stays reachable for episodes.
    assert conf.max() >= DEFAULT_MIN_CONFIDENCE


def test_saving_one_table_keeps_the_other(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "calibration.json"
    path.write_text(cal.TABLE_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    period = cal.CalibrationTable("p-new", "test", (0.0, 5.0), (0.0, 0.9), fitted_on="x")
    try:
        cal.save_tables(period=period, path=path)
        assert cal.load_table(path).version == "p-new"
        assert cal.load_episode_table(path) == cal.load_episode_table()
        rng = np.random.default_rng(3)
        episode = cal.fit_episode_table(
            *synthetic_episodes(500, rng), strata=STRATA, version="ep-new", target="t",
            fitted_on="f",
        )  # fmt: skip
        cal.save_tables(episode=episode, path=path)
        assert cal.load_table(path).version == "p-new"
        assert cal.load_episode_table(path).version == "ep-new"
    finally:
        cal.load_table.cache_clear()
        cal.load_episode_table.cache_clear()


def test_a_file_without_an_episode_table_reports_the_peak_period_confidence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "calibration.json"
    path.write_text(cal.load_table().to_json(), encoding="utf-8")
    table = cal.load_episode_table(path)
    assert table.strata == ()
    assert table.confidence(np.array([0.7, 0.9]), 3, 2).tolist() == [0.7, 0.9]
