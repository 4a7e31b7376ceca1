"""Delivered batches of the network simulator: timing, defects, conservation, backfill."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.simulator import (
    DEFECT_KINDS,
    SOURCES,
    DefectRates,
    NetworkSimulator,
    ScaleShift,
    SimConfig,
)
from services.ingest.simulator.catalogue import KPI_CATALOGUE
from services.ingest.simulator.defects import MAX_LAG_PERIODS

START = pd.Timestamp("2026-01-05", tz="UTC")
PERIOD = pd.Timedelta("15min")
NOISY = DefectRates(
    late=0.05, out_of_order=0.05, gap=0.06, duplicate=0.08, correction=0.06, malformed=0.08
)
NONE = DefectRates(late=0, out_of_order=0, gap=0, duplicate=0, correction=0, malformed=0)
SHIFT = ScaleShift(after=pd.Timedelta(hours=30))
KNOWN_KPIS = {k.name for k in KPI_CATALOGUE}
# Data periods under test and the delivery windows that bring all of them in.
DATA_FIRST = START + pd.Timedelta(days=1)
DATA_LAST = DATA_FIRST + pd.Timedelta(hours=12) - PERIOD
WINDOWS = pd.date_range(DATA_FIRST, DATA_LAST + MAX_LAG_PERIODS * PERIOD, freq=PERIOD)


@pytest.fixture(scope="module")
def noisy() -> NetworkSimulator:
    return NetworkSimulator(SimConfig(start=START, defect_rates=NOISY, scale_shift=SHIFT))


@pytest.fixture(scope="module")
def delivered(noisy: NetworkSimulator) -> list:
    return [b for t in WINDOWS for b in noisy.batches(t)]


@pytest.fixture(scope="module")
def ground_truth(noisy: NetworkSimulator) -> pd.DataFrame:
    return noisy.defects_between(DATA_FIRST, DATA_LAST)


def _records(batches: list, *, kinds: tuple[str, ...] | None = None) -> pd.DataFrame:
    """All delivered records in the data range, tagged with their batch."""
    frames = []
    for b in batches:
        kind = b.batch_id.rsplit(":", 1)[1]
        if kinds is None or kind in kinds:
            frames.append(b.records.assign(batch_id=b.batch_id, delivery=kind, source=b.source))
    out = pd.concat(frames, ignore_index=True)
    return out[(out["period_end"] >= DATA_FIRST) & (out["period_end"] <= DATA_LAST)]


def _keys(frame: pd.DataFrame) -> pd.Series:
    return frame["dn"] + "|" + frame["kpi"] + "|" + frame["period_end"].astype(str)


def _gt_keys(rows: pd.DataFrame) -> Counter:
    """(dn|kpi|period_end) keys named by ground-truth rows, with multiplicity."""
    out: Counter = Counter()
    for _, r in rows.iterrows():
        for dn, kpi in zip(r["dns"], r["kpis"], strict=True):
            out[f"{dn}|{kpi}|{r['period_end']}"] += 1
    return out


# -- shape and timing ---------------------------------------------------------------------


def test_batches_have_the_documented_shape(delivered: list) -> None:
    assert {b.source for b in delivered} == set(SOURCES)
    for b in delivered[:50]:
        assert list(b.records.columns) == [
            "dn",
            "kpi",
            "period_end",
            "value",
            "vendor",
            "sw_version",
        ]
        assert b.records["value"].dtype == object
        assert str(b.records["period_end"].dt.tz) == "UTC"
        assert (b.records["period_end"] == b.period_end).all()
        assert set(b.defects) <= set(DEFECT_KINDS)


def test_each_call_returns_only_its_delivery_window_in_order(noisy: NetworkSimulator) -> None:
    for t in WINDOWS[:20]:
        batches = noisy.batches(t)
        times = [b.delivered_at for b in batches]
        assert times == sorted(times)
        assert all(t < d <= t + PERIOD for d in times)
        regular = [b for b in batches if b.batch_id.endswith(":regular") and not b.defects]
        assert all(d.delivered_at - d.period_end < PERIOD / 2 for d in regular)


def test_every_source_delivers_once_per_period_on_time_or_labelled_late(
    delivered: list,
) -> None:
    regular = [b for b in delivered if b.batch_id.endswith(":regular")]
    per_source_period = Counter((b.source, b.period_end) for b in regular)
    assert set(per_source_period.values()) == {1}
    for b in regular:
        lag = b.delivered_at - b.period_end
        if "late" in b.defects:
            assert lag > 2 * PERIOD
        elif "out_of_order" in b.defects:
            assert PERIOD < lag < 2 * PERIOD
        else:
            assert lag < PERIOD


def test_out_of_order_batch_arrives_after_the_next_periods_batch(delivered: list) -> None:
    regular = {(b.source, b.period_end): b for b in delivered if b.batch_id.endswith(":regular")}
    swapped = [b for b in regular.values() if "out_of_order" in b.defects]
    assert swapped
    for b in swapped:
        following = regular.get((b.source, b.period_end + PERIOD))
        if following is not None and not ({"late", "out_of_order"} & set(following.defects)):
            assert following.delivered_at < b.delivered_at


# -- defects -----------------------------------------------------------------------------


def test_every_defect_kind_is_delivered_and_labelled(delivered: list) -> None:
    seen = Counter(label for b in delivered for label in b.defects)
    assert set(seen) == set(DEFECT_KINDS)


def test_labels_agree_with_ground_truth(delivered: list, ground_truth: pd.DataFrame) -> None:
    labelled = {
        (b.source, b.period_end, label)
        for b in delivered
        for label in b.defects
        if DATA_FIRST <= b.period_end <= DATA_LAST and label != "scale_shift"
    }
    batch_level = ground_truth[ground_truth["kind"] != "scale_shift"]
    expected = set(
        zip(batch_level["source"], batch_level["period_end"], batch_level["kind"], strict=True)
    )
    assert labelled == expected
    by_id = {b.batch_id: b for b in delivered}
    for _, row in batch_level.iterrows():
        stamp = f"{row['period_end']:%Y%m%dT%H%MZ}"
        if row["kind"] == "correction":
            batch = by_id[f"{row['source']}:{stamp}:correction"]
            assert batch.delivered_at == row["delivered_at"]
            assert len(batch.records) == row["n_records"]
        elif row["kind"] == "duplicate" and row["defect_id"].endswith("-batch"):
            assert by_id[f"{row['source']}:{stamp}:duplicate"].delivered_at == row["delivered_at"]


def test_malformed_records_take_every_documented_form(delivered: list) -> None:
    records = _records([b for b in delivered if "malformed" in b.defects])
    values = records["value"]
    is_text = values.map(lambda v: isinstance(v, str))
    numeric = pd.to_numeric(values.where(~is_text), errors="coerce")
    assert is_text.any()
    assert values.map(lambda v: isinstance(v, float) and np.isnan(v)).any()
    assert (numeric < 0).any()
    assert (~records["kpi"].isin(KNOWN_KPIS)).any()
    assert (records["dn"] == "").any()
    clean = _records([b for b in delivered if not b.defects])
    assert not clean["value"].map(lambda v: isinstance(v, str)).any()
    assert (pd.to_numeric(clean["value"]) >= 0).all()
    assert clean["kpi"].isin(KNOWN_KPIS).all()


def test_delivery_conserves_every_true_record(
    noisy: NetworkSimulator, delivered: list, ground_truth: pd.DataFrame
) -> None:
    truth = noisy.truth(pd.date_range(DATA_FIRST, DATA_LAST, freq=PERIOD))
    truth_keys = _keys(truth)
    records = _records(delivered)
    counts = Counter(_keys(records))
    gap = _gt_keys(ground_truth[ground_truth["kind"] == "gap"])
    corrected = _gt_keys(ground_truth[ground_truth["kind"] == "correction"])
    dup_records = _gt_keys(ground_truth[ground_truth["defect_id"].str.endswith("-records")])
    dup_batches = set(
        ground_truth.loc[ground_truth["defect_id"].str.endswith("-batch"), ["source", "period_end"]]
        .astype(str)
        .agg("|".join, axis=1)
    )
    series = noisy.topology.series
    source_of = dict(zip(series["dn"], series["source"], strict=False))
    assert gap, "the range should contain gaps"
    mismatches = []
    for key in truth_keys:
        dn, _, period_end = key.split("|")
        if key in gap:
            expected = 0
        else:
            copies = 2 if f"{source_of[dn]}|{period_end}" in dup_batches else 1
            expected = copies * (1 + dup_records[key]) + corrected[key]
        if counts[key] != expected:
            mismatches.append((key, counts[key], expected))
    assert not mismatches[:5]
    unknown = set(counts) - set(truth_keys)
    assert all(k.startswith("|") or k.split("|")[1] not in KNOWN_KPIS for k in unknown)


def test_delivered_values_match_truth_except_labelled_damage(
    noisy: NetworkSimulator, delivered: list, ground_truth: pd.DataFrame
) -> None:
    truth = noisy.truth(pd.date_range(DATA_FIRST, DATA_LAST, freq=PERIOD))
    true_value = dict(zip(_keys(truth), truth["value"], strict=True))
    malformed = _gt_keys(ground_truth[ground_truth["kind"] == "malformed"])
    corrected = _gt_keys(ground_truth[ground_truth["kind"] == "correction"])
    records = _records(delivered)
    records = records.assign(key=_keys(records))
    records = records[records["key"].isin(true_value.keys())]
    shifted = (records["sw_version"] == SHIFT.sw_version) & (records["kpi"] == SHIFT.kpi)
    after = records["period_end"] > START + SHIFT.after
    factor = np.where(shifted & after, SHIFT.factor, 1.0)
    expected = records["key"].map(true_value) * factor
    damaged = records["key"].isin(malformed.keys())
    preliminary = records["key"].isin(corrected.keys()) & (records["delivery"] != "correction")
    intact = records[~damaged & ~preliminary]
    got = pd.to_numeric(intact["value"])
    np.testing.assert_allclose(got, expected[intact.index], rtol=1e-12)
    first = pd.to_numeric(records.loc[preliminary, "value"])
    assert (np.abs(first - expected[first.index]) > 1e-9).all()
    fixes = records[records["delivery"] == "correction"]
    assert len(fixes) == sum(corrected.values())


def test_scale_shift_hits_only_its_vendor_version_after_its_date() -> None:
    sim = NetworkSimulator(SimConfig(start=START, defect_rates=NONE, scale_shift=SHIFT))
    moment = START + SHIFT.after
    windows = pd.date_range(moment - 4 * PERIOD, moment + 4 * PERIOD, freq=PERIOD)
    records = pd.concat([b.records for t in windows for b in sim.batches(t)], ignore_index=True)
    truth = sim.truth(pd.DatetimeIndex(sorted(records["period_end"].unique())))
    merged = records.merge(truth, on=["dn", "kpi", "period_end"], suffixes=("", "_true"))
    assert len(merged) == len(records)
    ratio = pd.to_numeric(merged["value"]) / merged["value_true"].where(merged["value_true"] > 0)
    hit = (
        (merged["vendor"] == SHIFT.vendor)
        & (merged["sw_version"] == SHIFT.sw_version)
        & (merged["kpi"] == SHIFT.kpi)
        & (merged["period_end"] > moment)
    )
    assert hit.any()
    assert (~hit).any()
    np.testing.assert_allclose(ratio[hit].dropna(), SHIFT.factor)
    np.testing.assert_allclose(ratio[~hit].dropna(), 1.0)
    labelled = [b for t in windows for b in sim.batches(t) if "scale_shift" in b.defects]
    assert labelled
    assert all(b.source == "sim-pm-nokia" and b.period_end > moment for b in labelled)
    gt = sim.defects_between(moment, moment + PERIOD)
    assert gt["kind"].tolist() == ["scale_shift"]


# -- determinism and backfill -------------------------------------------------------------


def _same(a: list, b: list) -> None:
    assert [x.batch_id for x in a] == [y.batch_id for y in b]
    for x, y in zip(a, b, strict=True):
        assert x.delivered_at == y.delivered_at
        assert x.defects == y.defects
        pd.testing.assert_frame_equal(x.records, y.records)


def test_backfill_agrees_with_live_batches(noisy: NetworkSimulator, delivered: list) -> None:
    backfilled = list(noisy.backfill(WINDOWS[0], WINDOWS[-1]))
    _same(backfilled, delivered)


def test_request_order_does_not_change_batches(noisy: NetworkSimulator, delivered: list) -> None:
    fresh = NetworkSimulator(SimConfig(start=START, defect_rates=NOISY, scale_shift=SHIFT))
    reverse = [fresh.batches(t) for t in reversed(WINDOWS)]
    _same([b for call in reversed(reverse) for b in call], delivered)


def test_different_seed_changes_defects() -> None:
    config = {"start": START, "defect_rates": NOISY}
    a = NetworkSimulator(SimConfig(seed=1, **config)).defects_between(DATA_FIRST, DATA_LAST)
    b = NetworkSimulator(SimConfig(seed=2, **config)).defects_between(DATA_FIRST, DATA_LAST)
    assert set(a["defect_id"]) != set(b["defect_id"])


def test_default_defect_rates_are_lively_but_sane() -> None:
    sim = NetworkSimulator(SimConfig(start=START))
    days = 14
    table = sim.defects_between(START, START + pd.Timedelta(days=days))
    per_day = table[table["kind"] != "scale_shift"].groupby("kind").size() / days
    assert set(per_day.index) == set(DEFECT_KINDS) - {"scale_shift"}
    assert per_day.between(0.3, 12).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), offset=st.integers(0, 10_000))
def test_any_seed_delivers_inside_the_window(seed: int, offset: int) -> None:
    sim = NetworkSimulator(
        SimConfig(start=START, seed=seed, sites_per_region=1, defect_rates=NOISY)
    )
    t = START + offset * PERIOD
    batches = sim.batches(t)
    assert all(t < b.delivered_at <= t + PERIOD for b in batches)
    assert all(b.period_end <= t for b in batches)
    assert all(t - b.period_end <= MAX_LAG_PERIODS * PERIOD for b in batches)
