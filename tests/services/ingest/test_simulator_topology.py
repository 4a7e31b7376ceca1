"""Topology, catalogue and configuration of the network simulator."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.simulator import (
    KPI_CATALOGUE,
    SOURCES,
    SimConfig,
    build_topology,
    live_start,
)
from services.ingest.simulator.catalogue import kpi_names

START = pd.Timestamp("2026-01-05", tz="UTC")
SITE_RE = re.compile(r"^SubNetwork=[A-Za-z0-9_-]+,ManagedElement=SITE-\d{4,}$")
CELL_RE = re.compile(
    r"^SubNetwork=[A-Za-z0-9_-]+,ManagedElement=SITE-\d{4,},(EUtranCellFDD=C|NRCellDU=N)\d+$"
)
ROUTER_RE = re.compile(r"^SubNetwork=Transport,ManagedElement=AGG-[A-Z0-9_-]+-\d+$")
LINK_RE = re.compile(r"^SubNetwork=Transport,ManagedElement=AGG-[A-Z0-9_-]+-\d+,Link=SITE-\d{4,}$")
CORE_RE = re.compile(r"^SubNetwork=Core,ManagedElement=(AMF|SMF|UPF)-\d{2}$")


@pytest.fixture(scope="module")
def topology():
    return build_topology(SimConfig(start=START))


def _check_invariants(topo, config: SimConfig) -> None:
    """Structural rules every generated topology must satisfy."""
    el = topo.elements
    n_sites = len(config.regions) * config.sites_per_region
    n_cells = n_sites * config.cells_per_site
    assert el["dn"].is_unique
    assert topo.count("site") == n_sites
    assert topo.count("cell") == n_cells
    assert topo.count("link") == n_sites
    assert 2 <= topo.count("core") <= 4
    assert topo.count("router") >= len(config.regions)
    patterns = {
        "site": SITE_RE,
        "cell": CELL_RE,
        "router": ROUTER_RE,
        "link": LINK_RE,
        "core": CORE_RE,
    }
    for element_type, pattern in patterns.items():
        dns = el.loc[el["element_type"] == element_type, "dn"]
        assert dns.map(lambda dn, p=pattern: bool(p.match(dn))).all(), element_type
    by_dn = el.set_index("dn")
    cells = el[el["element_type"] == "cell"]
    assert (by_dn.loc[cells["parent_dn"], "element_type"] == "site").all()
    assert (cells["vendor"].to_numpy() == by_dn.loc[cells["parent_dn"], "vendor"].to_numpy()).all()
    links = el[el["element_type"] == "link"]
    assert (by_dn.loc[links["parent_dn"], "element_type"] == "router").all()
    assert (by_dn.loc[links["peer_dn"], "element_type"] == "site").all()
    assert links["peer_dn"].is_unique
    assert set(cells["technology"]) <= {"LTE", "NR"}
    nr = cells["dn"].str.contains("NRCellDU=")
    assert ((cells["technology"] == "NR") == nr).all()
    numeric = ["peak_load_pct", "users_at_full_prb", "capacity_mbps", "growth_per_year"]
    assert np.isfinite(cells[numeric].to_numpy(dtype=float)).all()
    assert (cells["peak_load_pct"] < 80).all()
    assert cells["growth_per_year"].between(0, 1.5).all()
    assert (links["capacity_mbps"] > 0).all()
    expected_series = n_cells * 6 + n_sites * 3 + topo.count("core") * 2
    assert len(topo.series) == expected_series
    assert not topo.series.duplicated(["dn", "kpi"]).any()
    assert set(topo.series["source"]) <= set(SOURCES)


def test_kpi_catalogue_names_and_thresholds() -> None:
    names = {k.name: k for k in KPI_CATALOGUE}
    assert set(kpi_names("cell")) == {
        "prb_util_dl",
        "prb_util_ul",
        "active_users",
        "dl_throughput_mbps",
        "rrc_setup_sr",
        "erab_drop_rate",
    }
    assert kpi_names("link") == ("link_util", "latency_ms", "packet_loss_pct")
    assert kpi_names("core") == ("cpu_util", "sessions")
    assert len(names) == len(KPI_CATALOGUE) == 11
    assert names["prb_util_dl"].capacity_threshold == 80
    assert names["link_util"].capacity_threshold == 70
    assert names["cpu_util"].capacity_threshold == 85
    assert not names["dl_throughput_mbps"].higher_is_worse
    assert not names["rrc_setup_sr"].higher_is_worse
    assert names["sessions"].valid_max == 5e6


def test_default_network_counts(topology) -> None:
    counts = topology.elements["element_type"].value_counts().to_dict()
    assert counts == {"site": 24, "cell": 72, "router": 8, "link": 24, "core": 4}
    assert len(topology.series) == 72 * 6 + 24 * 3 + 4 * 2
    assert set(topology.series["source"]) == set(SOURCES)
    assert len(topology.kpis) == len(KPI_CATALOGUE)


def test_default_network_invariants(topology) -> None:
    _check_invariants(topology, topology.config)


def test_dn_examples_follow_3gpp_style(topology) -> None:
    dns = set(topology.elements["dn"])
    assert "SubNetwork=North,ManagedElement=SITE-0001" in dns
    assert "SubNetwork=Transport,ManagedElement=AGG-NORTH-1" in dns
    assert "SubNetwork=Core,ManagedElement=UPF-01" in dns
    assert "SubNetwork=Core,ManagedElement=AMF-01" in dns
    links = topology.elements[topology.elements["element_type"] == "link"]
    assert links["dn"].str.startswith("SubNetwork=Transport,ManagedElement=AGG-").all()


def test_vendors_split_sites_with_two_versions_each(topology) -> None:
    sites = topology.elements[topology.elements["element_type"] == "site"]
    by_vendor = sites.groupby("vendor")["sw_version"].agg(["size", "nunique"])
    assert set(by_vendor.index) == {"Ericsson", "Nokia"}
    assert by_vendor["size"].tolist() == [12, 12]
    assert by_vendor["nunique"].tolist() == [2, 2]
    versions = set(zip(sites["vendor"], sites["sw_version"], strict=True))
    assert versions == {
        ("Ericsson", "23.Q4"),
        ("Ericsson", "24.Q2"),
        ("Nokia", "SRAN23B"),
        ("Nokia", "SRAN24A"),
    }


def test_sources_split_by_vendor_and_domain(topology) -> None:
    series = topology.series
    ran = series[series["element_type"] == "cell"]
    assert (ran.loc[ran["vendor"] == "Ericsson", "source"] == "sim-pm-ericsson").all()
    assert (ran.loc[ran["vendor"] == "Nokia", "source"] == "sim-pm-nokia").all()
    assert (series.loc[series["element_type"] == "link", "source"] == "sim-transport").all()
    assert (series.loc[series["element_type"] == "core", "source"] == "sim-core").all()


def test_fast_growers_breach_capacity_within_four_months(topology) -> None:
    cells = topology.elements[topology.elements["element_type"] == "cell"]
    fast = cells[cells["fast_grower"]]
    assert len(fast) >= 1
    days = (fast["breach_at"] - START) / pd.Timedelta(days=1)
    assert days.between(29.9, 120.1).all()
    slow = cells[~cells["fast_grower"]]
    assert (slow["growth_per_year"] <= 0.4).all()


def test_large_network_scales_to_twenty_thousand_cells() -> None:
    topo = build_topology(SimConfig(start=START, sites_per_region=1700))
    assert topo.count("cell") == 20_400
    assert topo.count("link") == 6_800
    assert topo.elements["dn"].is_unique


def test_same_seed_same_topology_and_different_seed_differs() -> None:
    a = build_topology(SimConfig(start=START, seed=3))
    b = build_topology(SimConfig(start=START, seed=3))
    c = build_topology(SimConfig(start=START, seed=4))
    pd.testing.assert_frame_equal(a.elements, b.elements)
    assert not a.elements["peak_load_pct"].equals(c.elements["peak_load_pct"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": pd.Timestamp("2026-01-05")},
        {"start": START, "period": pd.Timedelta("7min")},
        {"start": START, "regions": ("North", "North")},
        {"start": START, "regions": ("North,East",)},
        {"start": START, "sites_per_region": 0},
        {"start": START, "seed": -1},
        {"start": START, "country": "XX"},
    ],
)
def test_invalid_config_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"."):
        SimConfig(**kwargs)


def test_start_is_normalised_to_utc_and_live_start_is_midnight() -> None:
    config = SimConfig(start=pd.Timestamp("2026-01-05 01:00", tz="Europe/Berlin"))
    assert config.start == START
    assert str(config.start.tz) == "UTC"
    now = pd.Timestamp("2026-03-10 14:37", tz="UTC")
    assert live_start(now) == pd.Timestamp("2026-02-10", tz="UTC")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    regions=st.lists(
        st.sampled_from(["North", "South", "East", "West", "Metro", "Rural_1"]),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    sites_per_region=st.integers(1, 12),
    cells_per_site=st.integers(1, 6),
    nr_share=st.floats(0, 1),
    fast_grower_share=st.floats(0, 1),
    sites_per_router=st.integers(1, 8),
)
def test_random_configs_always_give_valid_topology(
    seed: int,
    regions: list[str],
    sites_per_region: int,
    cells_per_site: int,
    nr_share: float,
    fast_grower_share: float,
    sites_per_router: int,
) -> None:
    config = SimConfig(
        start=START,
        seed=seed,
        regions=tuple(regions),
        sites_per_region=sites_per_region,
        cells_per_site=cells_per_site,
        nr_share=nr_share,
        fast_grower_share=fast_grower_share,
        sites_per_router=sites_per_router,
    )
    _check_invariants(build_topology(config), config)
