"""KPI catalogue, element inventory and source freshness over the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.db.models import Element, IngestBatch, Kpi, Source, utcnow

ELEMENTS = [
    # dn, name, type, domain, region, vendor, new
    (
        "SubNetwork=North,ManagedElement=SITE-0001",
        "SITE-0001",
        "site",
        "RAN",
        "North",
        "Ericsson",
        False,
    ),
    (
        "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1",
        "SITE-0001 C1",
        "cell",
        "RAN",
        "North",
        "Ericsson",
        False,
    ),
    (
        "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C2",
        "SITE-0001 C2",
        "cell",
        "RAN",
        "North",
        "Ericsson",
        True,
    ),
    (
        "SubNetwork=South,ManagedElement=SITE-0107,NRCellDU=N1",
        "SITE-0107 N1",
        "cell",
        "RAN",
        "South",
        "Nokia",
        False,
    ),
    (
        "Transport=Backhaul,Link=L-100_A",
        "Backhaul 100%",
        "link",
        "Transport",
        "South",
        "Cisco",
        True,
    ),
    ("Core=Main,Router=CR-1", "CR-1", "router", "Core", None, "Juniper", False),
]


@pytest.fixture
def inventory(db) -> None:
    with db.session(write=True) as session:
        for dn, name, kind, domain, region, vendor, new in ELEMENTS:
            session.add(
                Element(
                    dn=dn,
                    name=name,
                    element_type=kind,
                    domain=domain,
                    region=region,
                    vendor=vendor,
                    is_new=new,
                    attributes={"rack": 3} if kind == "router" else {},
                )
            )


def _dns(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["dn"] for item in response.get_json()["items"]]


def test_kpi_catalogue_lists_every_kpi_with_its_contract(client, db, as_role) -> None:
    body = client.get("/api/v1/kpis", headers=as_role("viewer")).get_json()
    with db.session() as session:
        stored = {kpi.name: kpi for kpi in session.scalars(select(Kpi))}
        assert len(body["items"]) == len(stored) > 0
        names = [item["name"] for item in body["items"]]
        assert names == sorted(names)
        for item in body["items"]:
            kpi = stored[item["name"]]
            assert item["unit"] == kpi.unit
            assert item["element_type"] == kpi.element_type
            assert (item["valid_min"], item["valid_max"]) == (kpi.valid_min, kpi.valid_max)
            expected = "higher_is_worse" if kpi.higher_is_worse else "higher_is_better"
            assert item["direction"] == expected
            assert item["capacity_threshold"] == kpi.capacity_threshold
            assert item["criticality"] == kpi.criticality
            assert item["description"] == kpi.description


def test_elements_default_page(client, inventory, as_role) -> None:
    body = client.get("/api/v1/elements", headers=as_role("viewer")).get_json()
    assert body["total"] == len(ELEMENTS)
    assert (body["limit"], body["offset"]) == (100, 0)
    assert [item["dn"] for item in body["items"]] == sorted(e[0] for e in ELEMENTS)
    router = next(item for item in body["items"] if item["element_type"] == "router")
    assert router["attributes"] == {"rack": 3}
    assert router["region"] is None
    assert router["first_seen"].endswith("Z")
    assert router["new"] is False


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("element_type=cell", {1, 2, 3}),
        ("domain=RAN", {0, 1, 2, 3}),
        ("region=South", {3, 4}),
        ("vendor=Ericsson", {0, 1, 2}),
        ("new=true", {2, 4}),
        ("new=false", {0, 1, 3, 5}),
        ("element_type=cell&region=North&new=false", {1}),
        ("q=site-0001", {0, 1, 2}),
        ("q=c2", {2}),
        ("q=nrcelldu", {3}),
        ("q=100%25", {4}),
        ("q=l-100_", {4}),
        ("q=%25", {4}),
        ("q=_", {4}),
        ("domain=ran", set()),
    ],
)
def test_element_filters(client, inventory, as_role, params, expected) -> None:
    response = client.get(f"/api/v1/elements?{params}", headers=as_role("viewer"))
    assert set(_dns(response)) == {ELEMENTS[i][0] for i in expected}
    assert response.get_json()["total"] == len(expected)


def test_element_pagination_walks_the_whole_inventory(client, inventory, as_role) -> None:
    headers = as_role("viewer")
    seen: list[str] = []
    for offset in range(0, len(ELEMENTS) + 2, 4):
        response = client.get(f"/api/v1/elements?limit=4&offset={offset}", headers=headers)
        body = response.get_json()
        assert body["total"] == len(ELEMENTS)
        assert (body["limit"], body["offset"]) == (4, offset)
        seen += _dns(response)
    assert seen == sorted(e[0] for e in ELEMENTS)


def test_element_page_past_the_end_is_empty(client, inventory, as_role) -> None:
    body = client.get("/api/v1/elements?offset=50", headers=as_role("viewer")).get_json()
    assert body["items"] == []
    assert body["total"] == len(ELEMENTS)


def test_sources_report_freshness(client, db, as_role) -> None:
    now = utcnow()
    with db.session(write=True) as session:
        fresh = Source(name="pm-north", kind="pm_xml", last_received_at=now - timedelta(minutes=5))
        stale = Source(name="ves-core", kind="ves", last_received_at=now - timedelta(hours=2))
        quiet = Source(name="alerts", kind="alertmanager")
        off = Source(name="old-csv", kind="csv", enabled=False, last_received_at=now)
        session.add_all([fresh, stale, quiet, off])
        session.flush()
        fresh.watermark = now - timedelta(minutes=15)
        for received in (120, 80):
            session.add(
                IngestBatch(
                    source_id=fresh.id,
                    received_at=now - timedelta(minutes=10),
                    raw_format="pm_xml",
                    checksum=f"c{received}",
                    received=received,
                )
            )
    body = client.get("/api/v1/sources", headers=as_role("viewer")).get_json()
    by_name = {item["name"]: item for item in body["items"]}
    assert [item["name"] for item in body["items"]] == ["alerts", "old-csv", "pm-north", "ves-core"]
    assert by_name["pm-north"]["status"] == "fresh"
    assert by_name["ves-core"]["status"] == "stale"
    assert by_name["alerts"]["status"] == "unknown"
    assert by_name["old-csv"]["status"] == "disabled"
    north = by_name["pm-north"]
    assert (north["batches_24h"], north["records_24h"], north["quarantined_24h"]) == (2, 200, 0)
    assert 290 <= north["age_seconds"] <= 400
    assert north["newest_period"].endswith("Z")
    assert north["stale_after_s"] == 2700
    assert by_name["alerts"]["last_received_at"] is None
    assert by_name["alerts"]["age_seconds"] is None


def test_inventory_is_readable_with_only_the_read_scope(client, inventory, as_role) -> None:
    headers = as_role("operator", scopes=["read"])
    for path in ("/api/v1/kpis", "/api/v1/elements", "/api/v1/sources"):
        assert client.get(path, headers=headers).status_code == 200


def test_ingest_only_token_cannot_read(client, db, as_role) -> None:
    response = client.get("/api/v1/elements", headers=as_role("operator", scopes=["ingest"]))
    assert response.status_code == 403
    assert response.get_json()["error"]["details"]["missing"] == "scope"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Element)) == 0
