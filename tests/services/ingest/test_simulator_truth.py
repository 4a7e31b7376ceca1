"""True values of the network simulator: determinism, ranges, seasonality, incidents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.ingest.simulator import IncidentRates, NetworkSimulator, SimConfig
from services.ingest.simulator.catalogue import kpi_spec
from services.ingest.simulator.seasonality import easter_sunday, public_holidays

START = pd.Timestamp("2026-01-05", tz="UTC")
NOC_TZ = "Europe/Berlin"
QUIET = IncidentRates(congestion=0.0, sleeping_cell=0.0, link_flap=0.0)
BUSY = IncidentRates(congestion=0.2, sleeping_cell=0.08, link_flap=0.3)


def _periods(start: pd.Timestamp, days: float) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=int(days * 96), freq="15min")


def _wide(truth: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """One KPI as a (period_end x dn) table."""
    return truth[truth["kpi"] == kpi].pivot(index="period_end", columns="dn", values="value")


@pytest.fixture(scope="module")
def quiet() -> NetworkSimulator:
    return NetworkSimulator(SimConfig(start=START, incident_rates=QUIET))


@pytest.fixture(scope="module")
def quiet_month(quiet: NetworkSimulator) -> pd.DataFrame:
    return quiet.truth(_periods(START, 28))


@pytest.fixture(scope="module")
def cells(quiet: NetworkSimulator) -> pd.DataFrame:
    el = quiet.topology.elements
    return el[el["element_type"] == "cell"].set_index("dn")


# -- determinism ----------------------------------------------------------------------


def test_same_seed_gives_identical_truth() -> None:
    periods = _periods(START + pd.Timedelta(days=3), 1)
    a = NetworkSimulator(SimConfig(start=START)).truth(periods)
    b = NetworkSimulator(SimConfig(start=START)).truth(periods)
    pd.testing.assert_frame_equal(a, b)


def test_different_seed_gives_different_truth() -> None:
    periods = _periods(START, 1)
    a = NetworkSimulator(SimConfig(start=START, seed=1)).truth(periods)
    b = NetworkSimulator(SimConfig(start=START, seed=2)).truth(periods)
    assert not np.allclose(a["value"], b["value"])


def test_request_order_and_grouping_do_not_change_values() -> None:
    sim = NetworkSimulator(SimConfig(start=START, incident_rates=BUSY))
    periods = _periods(START + pd.Timedelta(days=1), 1)
    together = sim.truth(periods)
    one_by_one = pd.concat([sim.truth(periods[[i]]) for i in reversed(range(len(periods)))])
    one_by_one = one_by_one.sort_values(["period_end"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
    shuffled = sim.truth(periods[np.random.default_rng(0).permutation(len(periods))])
    pd.testing.assert_frame_equal(together, shuffled)


def test_truth_has_expected_shape_and_types(quiet: NetworkSimulator) -> None:
    periods = _periods(START, 0.5)
    truth = quiet.truth(periods)
    assert list(truth.columns) == ["dn", "kpi", "period_end", "value"]
    assert len(truth) == len(periods) * len(quiet.topology.series)
    assert str(truth["period_end"].dt.tz) == "UTC"
    assert truth["value"].dtype == np.float64


def test_off_grid_period_end_is_refused(quiet: NetworkSimulator) -> None:
    with pytest.raises(ValueError, match="grid"):
        quiet.truth(pd.DatetimeIndex([START + pd.Timedelta(minutes=7)]))
    assert quiet.align(START + pd.Timedelta(minutes=7)) == START


# -- ranges and realism ----------------------------------------------------------------


def test_values_stay_inside_valid_ranges_even_with_incidents() -> None:
    sim = NetworkSimulator(SimConfig(start=START, incident_rates=BUSY))
    truth = sim.truth(_periods(START, 7))
    assert np.isfinite(truth["value"]).all()
    bounds = truth["kpi"].map(lambda k: (kpi_spec(k).valid_min, kpi_spec(k).valid_max))
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    assert ((truth["value"] >= lo) & (truth["value"] <= hi)).all()


def test_baseline_levels_are_plausible(quiet_month: pd.DataFrame) -> None:
    med = quiet_month.groupby("kpi")["value"].median()
    assert 99.0 < med["rrc_setup_sr"] < 100.0
    assert med["erab_drop_rate"] < 1.0
    assert 5 < med["prb_util_dl"] < 50
    assert med["packet_loss_pct"] < 0.1
    assert 1 < med["latency_ms"] < 20
    assert 10 < med["cpu_util"] < 85


def test_daily_profile_has_evening_peak_and_night_trough(
    quiet_month: pd.DataFrame, cells: pd.DataFrame
) -> None:
    users = _wide(quiet_month, "active_users")
    hour = users.index.tz_convert(NOC_TZ).hour
    residential = users.columns[cells.loc[users.columns, "profile"] == "residential"]
    evening = users.loc[(hour >= 20) & (hour < 22), residential].mean().mean()
    night = users.loc[(hour >= 3) & (hour < 5), residential].mean().mean()
    assert evening > 4 * night
    by_hour = users[residential].mean(axis=1).groupby(hour).mean()
    assert by_hour.idxmax() in (19, 20, 21, 22)
    assert by_hour.idxmin() in (2, 3, 4, 5)


def test_business_cells_peak_in_office_hours(
    quiet_month: pd.DataFrame, cells: pd.DataFrame
) -> None:
    users = _wide(quiet_month, "active_users")
    local = users.index.tz_convert(NOC_TZ)
    weekday = local.day_of_week < 5
    business = users.columns[cells.loc[users.columns, "profile"] == "business"]
    by_hour = users.loc[weekday, business].mean(axis=1).groupby(local.hour[weekday]).mean()
    assert 9 <= by_hour.idxmax() <= 16
    assert by_hour.loc[10:15].mean() > 1.5 * by_hour.loc[20:22].mean()


def test_weekly_pattern_differs_by_cell_profile(
    quiet_month: pd.DataFrame, cells: pd.DataFrame
) -> None:
    users = _wide(quiet_month, "active_users")
    weekend = users.index.tz_convert(NOC_TZ).day_of_week >= 5
    profile = cells.loc[users.columns, "profile"].to_numpy()
    business = users.loc[:, profile == "business"]
    residential = users.loc[:, profile == "residential"]
    assert business[~weekend].mean().mean() > 2 * business[weekend].mean().mean()
    assert residential[weekend].mean().mean() > 1.1 * residential[~weekend].mean().mean()


def test_public_holiday_looks_like_a_sunday() -> None:
    assert easter_sunday(2026) == pd.Timestamp("2026-04-05").date()
    holidays = public_holidays("DE", 2026)
    easter_monday = pd.Timestamp("2026-04-06").date()
    assert easter_monday in holidays
    start = pd.Timestamp("2026-03-30", tz="UTC")
    sim = NetworkSimulator(SimConfig(start=start, incident_rates=QUIET))
    truth = sim.truth(_periods(start, 15))
    el = sim.topology.elements.set_index("dn")
    users = _wide(truth, "active_users")
    business = users.columns[el.loc[users.columns, "profile"] == "business"]
    day = users.index.tz_convert(NOC_TZ).date
    holiday = users.loc[day == easter_monday, business].mean().mean()
    normal_monday = users.loc[day == pd.Timestamp("2026-04-13").date(), business].mean().mean()
    assert holiday < 0.6 * normal_monday


def test_growth_follows_each_cells_yearly_rate(quiet: NetworkSimulator, cells) -> None:
    week_now = quiet.truth(_periods(START, 7))
    week_later = quiet.truth(_periods(START + pd.Timedelta(days=364), 7))
    now = week_now[week_now["kpi"] == "active_users"].groupby("dn")["value"].mean()
    later = week_later[week_later["kpi"] == "active_users"].groupby("dn")["value"].mean()
    observed = np.log(later / now)
    expected = np.log1p(cells.loc[observed.index, "growth_per_year"]) * 364 / 365.25
    assert np.corrcoef(observed, expected)[0, 1] > 0.95
    assert (observed - expected).abs().median() < 0.03


def test_fast_growers_cross_the_prb_threshold_after_start(quiet: NetworkSimulator, cells) -> None:
    fast = cells[cells["fast_grower"]]
    for dn, row in fast.iterrows():
        first_week = _periods(START, 7)
        after = _periods(row["breach_at"].floor("D") + pd.Timedelta(days=14), 7)
        busy_hour = []
        for periods in (first_week, after):
            truth = quiet.truth(periods)
            prb = truth[(truth["dn"] == dn) & (truth["kpi"] == "prb_util_dl")]
            hourly = prb.set_index("period_end")["value"].resample("1h").mean()
            busy_hour.append(hourly.resample("1D").max().max())
        assert busy_hour[1] > busy_hour[0]
        assert busy_hour[1] >= 80.0


def test_kpis_are_correlated_like_a_real_network(quiet_month: pd.DataFrame, quiet) -> None:
    users = _wide(quiet_month, "active_users")
    prb = _wide(quiet_month, "prb_util_dl")[users.columns]
    per_cell = [np.corrcoef(users[c], prb[c])[0, 1] for c in users.columns]
    assert np.median(per_cell) > 0.95
    el = quiet.topology.elements
    links = el[el["element_type"] == "link"].set_index("peer_dn")
    tput = _wide(quiet_month, "dl_throughput_mbps")
    site_of = el.set_index("dn").loc[tput.columns, "parent_dn"]
    site_tput = tput.T.groupby(site_of.to_numpy()).sum().T
    link_util = _wide(quiet_month, "link_util")
    link_of_site = links.loc[site_tput.columns, "dn"]
    corr = [np.corrcoef(site_tput[s], link_util[link_of_site[s]])[0, 1] for s in site_tput.columns]
    assert min(corr) > 0.95
    latency = _wide(quiet_month, "latency_ms")
    # Rank correlation: latency grows non-linearly with utilisation.
    lat_corr = [latency[c].rank().corr(link_util[c].rank()) for c in latency.columns]
    assert np.median(lat_corr) > 0.2
    sessions = _wide(quiet_month, "sessions")
    total_users = users.sum(axis=1)
    assert all(np.corrcoef(total_users, sessions[c])[0, 1] > 0.95 for c in sessions.columns)


# -- incidents --------------------------------------------------------------------------


class Wide(dict):
    """Truth as {kpi: (period_end x dn) table}."""

    @classmethod
    def of(cls, truth: pd.DataFrame) -> Wide:
        return cls({kpi: _wide(truth, kpi) for kpi in truth["kpi"].unique()})


@pytest.fixture(scope="module")
def busy_pair() -> tuple[NetworkSimulator, pd.DataFrame, Wide, Wide]:
    """A network with many incidents, its truth, and the same network without incidents."""
    sim = NetworkSimulator(SimConfig(start=START, incident_rates=BUSY))
    clean = NetworkSimulator(SimConfig(start=START, incident_rates=QUIET))
    periods = _periods(START, 4)
    incidents = sim.incidents_between(periods[0], periods[-1])
    return sim, incidents, Wide.of(sim.truth(periods)), Wide.of(clean.truth(periods))


def _during(truth: Wide, incident: pd.Series, kpi: str, dn: str | None = None) -> pd.Series:
    """Values of one KPI on the incident's element for the periods it affects."""
    table = truth[kpi]
    inside = (table.index > incident["start"]) & (table.index <= incident["end"])
    return table.loc[inside, dn or incident["dn"]]


def _inside(incidents: pd.DataFrame, kind: str, truth: Wide) -> pd.DataFrame:
    """Incidents of one kind lying fully inside the generated truth range."""
    first, last = truth["active_users"].index.min(), truth["active_users"].index.max()
    sel = incidents[
        (incidents["kind"] == kind) & (incidents["start"] >= first) & (incidents["end"] <= last)
    ]
    assert len(sel) >= 3, f"too few {kind} incidents to test"
    return sel


def test_incident_table_is_well_formed(busy_pair) -> None:
    _, incidents, _, _ = busy_pair
    assert set(incidents["kind"]) == {"congestion", "sleeping_cell", "link_flap"}
    assert incidents["incident_id"].is_unique
    assert (incidents["end"] > incidents["start"]).all()
    minutes = (incidents["end"] - incidents["start"]) / pd.Timedelta(minutes=1)
    limits = {"congestion": (60, 240), "sleeping_cell": (120, 600), "link_flap": (30, 90)}
    for kind, (lo, hi) in limits.items():
        assert minutes[incidents["kind"] == kind].between(lo, hi).all(), kind
    sleeping = incidents[incidents["kind"] == "sleeping_cell"]
    assert (sleeping["related_dns"].map(len) == 2).all()


def test_congestion_pins_prb_and_hurts_quality(busy_pair) -> None:
    _, incidents, truth, clean = busy_pair
    for _, inc in _inside(incidents, "congestion", truth).iterrows():
        assert (_during(truth, inc, "prb_util_dl") >= 95).all()
        rrc = _during(truth, inc, "rrc_setup_sr")
        assert (rrc < _during(clean, inc, "rrc_setup_sr")).all()
        drop = _during(truth, inc, "erab_drop_rate")
        assert (drop > _during(clean, inc, "erab_drop_rate")).all()
        per_user = _during(truth, inc, "dl_throughput_mbps") / _during(truth, inc, "active_users")
        clean_per_user = _during(clean, inc, "dl_throughput_mbps") / _during(
            clean, inc, "active_users"
        )
        assert per_user.mean() < 0.8 * clean_per_user.mean()


def test_sleeping_cell_goes_silent_and_siblings_pick_up(busy_pair) -> None:
    _, incidents, truth, clean = busy_pair
    gained = []
    for _, inc in _inside(incidents, "sleeping_cell", truth).iterrows():
        assert (_during(truth, inc, "active_users") < 0.5).all()
        assert (_during(truth, inc, "dl_throughput_mbps") < 0.1).all()
        assert (_during(truth, inc, "prb_util_dl") < 1.0).all()
        for sibling in inc["related_dns"]:
            gained.append(
                _during(truth, inc, "active_users", sibling).sum()
                / max(_during(clean, inc, "active_users", sibling).sum(), 1e-9)
            )
    assert np.median(gained) > 1.1


def test_link_flap_spikes_loss_and_latency(busy_pair) -> None:
    _, incidents, truth, clean = busy_pair
    for _, inc in _inside(incidents, "link_flap", truth).iterrows():
        assert (_during(truth, inc, "packet_loss_pct") > 2.5).all()
        assert (_during(truth, inc, "latency_ms") > 3 * _during(clean, inc, "latency_ms")).all()
        util = _during(truth, inc, "link_util")
        assert not np.allclose(util, _during(clean, inc, "link_util"))


def test_truth_outside_incidents_is_untouched(busy_pair) -> None:
    _, incidents, truth, clean = busy_pair
    touched = set(incidents["dn"]) | {d for r in incidents["related_dns"] for d in r}
    for kpi in ("active_users", "prb_util_dl", "dl_throughput_mbps", "rrc_setup_sr"):
        untouched = [dn for dn in truth[kpi].columns if dn not in touched]
        assert untouched
        pd.testing.assert_frame_equal(truth[kpi][untouched], clean[kpi][untouched])


def test_incidents_are_consistent_across_query_ranges(busy_pair) -> None:
    sim, _, _, _ = busy_pair
    a, b, c = START, START + pd.Timedelta(days=2, hours=7), START + pd.Timedelta(days=5)
    whole = sim.incidents_between(a, c)
    parts = pd.concat([sim.incidents_between(b, c), sim.incidents_between(a, b)])
    parts = parts.drop_duplicates("incident_id").sort_values(["start", "incident_id"])
    pd.testing.assert_frame_equal(whole, parts.reset_index(drop=True))


def test_incidents_never_overlap_on_one_element(busy_pair) -> None:
    sim, _, _, _ = busy_pair
    incidents = sim.incidents_between(START, START + pd.Timedelta(days=14))
    for _, group in incidents.groupby("dn"):
        ordered = group.sort_values("start")
        assert (ordered["start"].iloc[1:].to_numpy() >= ordered["end"].iloc[:-1].to_numpy()).all()


def test_default_incident_rate_is_lively_but_sane() -> None:
    sim = NetworkSimulator(SimConfig(start=START))
    incidents = sim.incidents_between(START, START + pd.Timedelta(days=28))
    per_day = len(incidents) / 28
    assert 1.0 <= per_day <= 8.0
    assert set(incidents["kind"]) == {"congestion", "sleeping_cell", "link_flap"}
