"""The forecast endpoints: authentication, scopes, ranking, filters, one series and 404s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from api_support import assert_error
from flask.testing import FlaskClient
from sqlalchemy import select

from services import audit, auth
from services.db import Database
from services.db.models import Element, Kpi
from services.forecast import store
from services.forecast.breach import breach_risk
from services.forecast.model import MODEL_VERSION, ForecastResult
from services.forecast.rollup import MEASURED, upsert_daily

Headers = dict[str, str]
LAST_DAY = date(2026, 11, 20)
HORIZON = 90
NORTH_DN = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"


@dataclass(frozen=True)
class Portfolio:
    north: int  # cell, prb_util_dl likely to breach, plus active_users
    south: int  # cell, prb_util_dl already breaching
    link: int  # transport link, link_util safe
    bare: int  # an element with no forecast


def _result(level: float, slope: float, seed: int) -> ForecastResult:
    ds = pd.date_range(pd.Timestamp(LAST_DAY) + pd.Timedelta(days=1), periods=HORIZON, freq="D")
    yhat = level + slope * np.arange(1, HORIZON + 1)
    samples = yhat[:, None] + np.random.default_rng(seed).normal(0, 2.0, (HORIZON, 300))
    frame = pd.DataFrame({"ds": ds, "yhat": yhat, "trend": yhat})
    for level_pct, width in (("80", 2.5), ("95", 4.0)):
        frame[f"lower_{level_pct}"], frame[f"upper_{level_pct}"] = yhat - width, yhat + width
    return ForecastResult(
        status="ok",
        status_detail="Prophet on 180 observed periods.",
        model="prophet",
        model_version=MODEL_VERSION,
        frame=frame,
        samples=samples.astype(np.float32),
        components={"ds": [LAST_DAY.isoformat()], "trend": [level]},
        changepoints=[],
        params={"k": 0.1},
        backtest={
            "choice": "prophet",
            "prophet": {"mape": 0.04, "coverage_80": 0.78, "coverage_95": 0.93},
            "seasonal_naive": {"mape": 0.07, "coverage_80": 0.8, "coverage_95": 0.95},
            "note": "Prophet beat seasonal naive in backtest.",
        },
        fit_seconds=0.3,
    )


def _add(db: Database, dn: str, region: str, domain: str = "RAN") -> int:
    with db.session(write=True) as session:
        element = Element(
            dn=dn, name=dn.rsplit("=", 1)[-1], element_type="cell", domain=domain, region=region
        )
        session.add(element)
        session.flush()
        return element.id


def _save(db: Database, element_id: int, kpi_name: str, result: ForecastResult) -> None:
    with db.session(write=True) as session:
        kpi = session.scalars(select(Kpi).where(Kpi.name == kpi_name)).one()
        risk = None
        if kpi.capacity_threshold is not None:
            assert result.samples is not None
            risk = breach_risk(
                result.samples,
                pd.DatetimeIndex(result.frame["ds"]),
                threshold=kpi.capacity_threshold,
            )
        store.save_forecast(
            session,
            element_id=element_id,
            kpi_id=kpi.id,
            granularity=store.DAILY,
            result=result,
            risk=risk,
            threshold=kpi.capacity_threshold,
            horizon_days=HORIZON,
            training_start=pd.Timestamp(LAST_DAY) - pd.Timedelta(days=29),
            training_end=pd.Timestamp(LAST_DAY),
        )
        days = [LAST_DAY - timedelta(days=i) for i in range(30)][::-1]
        values = np.linspace(result.frame["yhat"].iloc[0] - 5, result.frame["yhat"].iloc[0], 30)
        history = pd.DataFrame(
            {
                "element_id": element_id,
                "kpi_id": kpi.id,
                "day": days,
                "busy_hour_value": values,
                "busy_hour": 20,
                "daily_mean": values / 2,
                "daily_max": values + 1,
                "samples": 96,
            }
        )
        upsert_daily(session, history, source=MEASURED)


@pytest.fixture
def portfolio(db: Database) -> Portfolio:
    north = _add(db, NORTH_DN, "North")
    south = _add(db, "SubNetwork=South,ManagedElement=SITE-0002,EUtranCellFDD=C1", "South")
    link = _add(
        db, "SubNetwork=Transport,ManagedElement=AGG-1,Link=SITE-0002", "South", "Transport"
    )
    bare = _add(db, "SubNetwork=North,ManagedElement=SITE-0003,EUtranCellFDD=C1", "North")
    _save(db, north, "prb_util_dl", _result(70, 0.2, 1))
    _save(db, south, "prb_util_dl", _result(85, 0.1, 2))
    _save(db, link, "link_util", _result(40, 0.0, 3))
    _save(db, north, "active_users", _result(120, 0.5, 4))
    return Portfolio(north=north, south=south, link=link, bare=bare)


def test_no_credentials_is_401(client: FlaskClient, portfolio: Portfolio) -> None:
    assert_error(client.get("/api/v1/forecasts"), 401, "unauthorized")
    assert_error(
        client.get(f"/api/v1/forecasts/{portfolio.north}/prb_util_dl"), 401, "unauthorized"
    )


def test_a_token_without_the_read_scope_is_403(
    client: FlaskClient, as_role: Callable[..., Headers], portfolio: Portfolio
) -> None:
    ingest_only = as_role("admin", scopes=["ingest"])
    for path in ("/api/v1/forecasts", f"/api/v1/forecasts/{portfolio.north}/prb_util_dl"):
        error = assert_error(client.get(path, headers=ingest_only), 403, "forbidden")
        assert error["details"]["missing"] == "scope"
        assert error["details"]["required_scope"] == "read"


def test_every_role_may_read_with_a_token_or_a_session(
    client: FlaskClient, db: Database, as_role: Callable[..., Headers], portfolio: Portfolio
) -> None:
    for role in auth.ALL_ROLES:
        assert client.get("/api/v1/forecasts", headers=as_role(role)).status_code == 200, role
    with db.session(write=True) as session:
        auth.create_user(
            session, username="vera", role="viewer", password="viewer-pass-1", actor=audit.SYSTEM
        )
    assert (
        client.post("/login", data={"username": "vera", "password": "viewer-pass-1"}).status_code
        == 303
    )
    assert client.get(f"/api/v1/forecasts/{portfolio.north}/prb_util_dl").status_code == 200


def test_list_is_risk_ranked_filtered_and_paged(
    client: FlaskClient, as_role: Callable[..., Headers], portfolio: Portfolio
) -> None:
    viewer = as_role("viewer")

    def series(query: str = "") -> list[tuple[int, str]]:
        response = client.get(f"/api/v1/forecasts{query}", headers=viewer)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [(i["element"]["id"], i["kpi"]) for i in response.get_json()["items"]]

    ranked = [
        (portfolio.south, "prb_util_dl"),
        (portfolio.north, "prb_util_dl"),
        (portfolio.link, "link_util"),
        (portfolio.north, "active_users"),
    ]
    assert series() == ranked
    assert series("?region=North") == [ranked[1], ranked[3]]
    assert series("?domain=Transport") == [ranked[2]]
    assert series("?kpi=prb_util_dl") == ranked[:2]
    assert series("?min_p90=0.5") == ranked[:2]
    assert series("?status=ok,fallback") == ranked
    assert series("?status=fallback") == []
    page = client.get("/api/v1/forecasts?limit=2&offset=1", headers=viewer).get_json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [(i["element"]["id"], i["kpi"]) for i in page["items"]] == ranked[1:3]
    assert "rolling 7-day median" in page["breach_rule"]
    top = client.get("/api/v1/forecasts?limit=1", headers=viewer).get_json()["items"][0]
    assert top["risk"]["p_breach_30"] == 1.0
    assert top["risk"]["threshold"] == 80.0
    assert date.fromisoformat(top["risk"]["breach_date"]) > LAST_DAY
    assert top["quality"] == {
        "mape": 0.04,
        "baseline_mape": 0.07,
        "coverage_80": 0.78,
        "coverage_95": 0.93,
    }
    assert top["last_value"] == pytest.approx(85.1)
    users = client.get("/api/v1/forecasts?kpi=active_users", headers=viewer).get_json()["items"][0]
    assert users["risk"] is None  # no capacity threshold: forecast only


def test_bad_filters_are_422_with_a_message(
    client: FlaskClient, as_role: Callable[..., Headers]
) -> None:
    viewer = as_role("viewer")
    for query, needle in (
        ("status=broken", "unknown status broken"),
        ("min_p90=2", "min_p90"),
        ("colour=red", "colour"),
    ):
        error = assert_error(
            client.get(f"/api/v1/forecasts?{query}", headers=viewer), 422, "invalid_input"
        )
        assert needle in error["message"], error


def test_detail_by_id_and_by_dn(
    client: FlaskClient, as_role: Callable[..., Headers], portfolio: Portfolio
) -> None:
    viewer = as_role("viewer")
    by_id = client.get(f"/api/v1/forecasts/{portfolio.north}/prb_util_dl", headers=viewer)
    assert by_id.status_code == 200, by_id.get_data(as_text=True)
    body = by_id.get_json()
    by_dn = client.get(f"/api/v1/forecasts/{quote(NORTH_DN, safe='')}/prb_util_dl", headers=viewer)
    assert by_dn.get_json() == body
    assert body["element"]["dn"] == NORTH_DN
    assert body["kpi"] == {
        "name": "prb_util_dl",
        "unit": "%",
        "threshold": 80.0,
        "higher_is_worse": True,
    }
    assert (body["model"], body["status"], body["granularity"]) == (
        "prophet",
        "ok",
        "daily_busy_hour",
    )
    assert len(body["history"]) == 30
    assert body["history"][-1]["ds"] == LAST_DAY.isoformat()
    assert len(body["points"]) == HORIZON
    first = body["points"][0]
    assert first["ds"] == (LAST_DAY + timedelta(days=1)).isoformat()
    assert (
        first["lower_95"]
        < first["lower_80"]
        < first["yhat"]
        < first["upper_80"]
        < first["upper_95"]
    )
    assert 0 < body["risk"]["p_breach_90"] <= 1
    assert body["backtest"]["note"] == "Prophet beat seasonal naive in backtest."
    assert body["quality"]["baseline_mape"] == 0.07
    assert body["components"]["trend"] == [70]
    assert body["fitted_at"].endswith("Z") or body["fitted_at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/api/v1/forecasts/999999/prb_util_dl", "no element with id 999999"),
        (
            f"/api/v1/forecasts/{quote('SubNetwork=Nowhere', safe='')}/prb_util_dl",
            "DN 'SubNetwork=Nowhere'",
        ),
        ("/api/v1/forecasts/{north}/no_such_kpi", "'no_such_kpi' is not a known KPI"),
        ("/api/v1/forecasts/{north}/erab_drop_rate", "'erab_drop_rate' is not forecast"),
        ("/api/v1/forecasts/{bare}/prb_util_dl", "no forecast yet for prb_util_dl"),
        ("/api/v1/forecasts/{north}/cpu_util", "no forecast yet for cpu_util"),
    ],
)
def test_unknown_series_are_404_with_a_useful_message(
    client: FlaskClient,
    as_role: Callable[..., Headers],
    portfolio: Portfolio,
    path: str,
    needle: str,
) -> None:
    url = path.format(north=portfolio.north, bare=portfolio.bare)
    error = assert_error(client.get(url, headers=as_role("viewer")), 404, "not_found")
    assert needle in error["message"], error


def test_endpoints_are_in_the_openapi_document(
    client: FlaskClient, as_role: Callable[..., Headers]
) -> None:
    document = client.get("/api/v1/openapi.json", headers=as_role("viewer")).get_json()
    listing = document["paths"]["/api/v1/forecasts"]["get"]
    detail = document["paths"]["/api/v1/forecasts/{element}/{kpi}"]["get"]
    for operation in (listing, detail):
        assert operation["x-beacon-scope"] == "read"
        assert "viewer" in operation["x-beacon-roles"]
    assert "404" in detail["responses"]
    assert {p["name"] for p in detail["parameters"]} >= {"element", "kpi"}
