"""The forecast endpoints on PostgreSQL: ranking, filters, one series by DN, and a 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from api_support import assert_error, beacon_settings, bearer
from flask import Flask
from sqlalchemy import select
from testkit import drop_postgres_database, fresh_postgres_database, skip_or_fail_without_postgres

from app import create_app
from services import audit, auth
from services.db.models import Element, Kpi
from services.forecast import store
from services.forecast.breach import breach_risk
from services.forecast.model import MODEL_VERSION, ForecastResult

pytestmark = pytest.mark.postgres

LAST_DAY = date(2026, 11, 20)


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Flask]:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_forecast_api")
    server = create_app(beacon_settings(tmp_path, BEACON_DATABASE_URL=url)).server
    assert server.extensions["beacon"].db.dialect == "postgresql"
    yield server
    server.extensions["beacon"].db.dispose()
    drop_postgres_database(url)


def _result(level: float, seed: int) -> ForecastResult:
    ds = pd.date_range(pd.Timestamp(LAST_DAY) + pd.Timedelta(days=1), periods=90, freq="D")
    yhat = level + 0.2 * np.arange(1, 91)
    samples = yhat[:, None] + np.random.default_rng(seed).normal(0, 2.0, (90, 200))
    frame = pd.DataFrame({"ds": ds, "yhat": yhat, "trend": yhat})
    frame["lower_80"], frame["upper_80"] = yhat - 2.5, yhat + 2.5
    frame["lower_95"], frame["upper_95"] = yhat - 4.0, yhat + 4.0
    return ForecastResult(
        status="ok",
        status_detail="",
        model="prophet",
        model_version=MODEL_VERSION,
        frame=frame,
        samples=samples.astype(np.float32),
        backtest={"prophet": {"mape": 0.05}, "seasonal_naive": {"mape": 0.06}},
    )


def test_forecasts_on_postgresql(pg_server: Flask) -> None:
    db = pg_server.extensions["beacon"].db
    client = pg_server.test_client()
    with db.session(write=True) as session:
        reader = auth.create_api_token(session, name="pg-reader", role="viewer", actor=audit.SYSTEM)
        prb = session.scalars(select(Kpi).where(Kpi.name == "prb_util_dl")).one()
        for i, (region, level) in enumerate((("North", 60.0), ("South", 82.0))):
            element = Element(
                dn=f"SubNetwork={region},ManagedElement=S{i},EUtranCellFDD=C1",
                name=f"S{i} C1",
                element_type="cell",
                domain="RAN",
                region=region,
            )
            session.add(element)
            session.flush()
            result = _result(level, i)
            assert result.samples is not None
            store.save_forecast(
                session,
                element_id=element.id,
                kpi_id=prb.id,
                granularity=store.DAILY,
                result=result,
                risk=breach_risk(
                    result.samples, pd.DatetimeIndex(result.frame["ds"]), threshold=80
                ),
                threshold=80.0,
                horizon_days=90,
                training_start=None,
                training_end=pd.Timestamp(LAST_DAY),
            )
    viewer = bearer(reader.plaintext)
    page = client.get("/api/v1/forecasts", headers=viewer).get_json()
    assert [i["element"]["region"] for i in page["items"]] == ["South", "North"]
    assert page["items"][0]["risk"]["p_breach_30"] == 1.0
    assert client.get("/api/v1/forecasts?region=North", headers=viewer).get_json()["total"] == 1
    dn = quote("SubNetwork=North,ManagedElement=S0,EUtranCellFDD=C1", safe="")
    detail = client.get(f"/api/v1/forecasts/{dn}/prb_util_dl", headers=viewer)
    assert detail.status_code == 200, detail.get_data(as_text=True)
    assert len(detail.get_json()["points"]) == 90
    error = assert_error(
        client.get(f"/api/v1/forecasts/{dn}/cpu_util", headers=viewer), 404, "not_found"
    )
    assert "no forecast yet" in error["message"]
