"""Stored forecasts on both databases: saving, superseding, the portfolio and one series."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, func, select, update
from testkit import (
    drop_postgres_database,
    fresh_postgres_database,
    seeded_database,
    skip_or_fail_without_postgres,
)

from services.db import Database
from services.db.models import (
    CapacityRisk,
    DailyAggregate,
    Element,
    Forecast,
    ForecastPoint,
    ForecastSamples,
    Kpi,
    utcnow,
)
from services.forecast import store
from services.forecast.breach import BreachRisk, breach_risk
from services.forecast.model import MODEL_VERSION, ForecastResult
from services.forecast.rollup import ARCHIVE, upsert_daily

HORIZON = 90
LAST_DAY = date(2026, 11, 20)
BACKTEST = {
    "choice": "prophet",
    "prophet": {"mape": 0.05, "coverage_80": 0.7, "coverage_95": 0.9, "scale_80": 1.2},
    "seasonal_naive": {"mape": 0.08, "coverage_80": 0.8, "coverage_95": 0.95},
    "note": "Prophet beat seasonal naive in backtest.",
    "scale_80": 1.2,
    "scale_95": 1.1,
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend for the module (creating one per test costs seconds)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'beacon.db'}"
    else:
        skip_or_fail_without_postgres()
        url = fresh_postgres_database("beacon_store")
    with seeded_database(url) as database:
        yield database
    if request.param == "postgres":
        drop_postgres_database(url)


@pytest.fixture
def db(shared_db: Database) -> Iterator[Database]:
    """The module's database, emptied of what a test adds."""
    yield shared_db
    with shared_db.session(write=True) as session:
        for model in (Forecast, DailyAggregate, Element):
            session.execute(delete(model))


def _element(db: Database, name: str, *, region: str, domain: str = "RAN") -> int:
    with db.session(write=True) as session:
        element = Element(
            dn=f"SubNetwork={region},ManagedElement={name}",
            name=name,
            element_type="cell",
            domain=domain,
            region=region,
        )
        session.add(element)
        session.flush()
        return element.id


def _kpi(db: Database, name: str) -> Kpi:
    with db.session() as session:
        return session.scalars(select(Kpi).where(Kpi.name == name)).one()


def _result(level: float, slope: float, *, seed: int = 0, model: str = "prophet") -> ForecastResult:
    """A forecast rising from `level` by `slope` per day, with 400 noisy sample paths."""
    ds = pd.date_range(pd.Timestamp(LAST_DAY) + pd.Timedelta(days=1), periods=HORIZON, freq="D")
    yhat = level + slope * np.arange(1, HORIZON + 1)
    rng = np.random.default_rng(seed)
    samples = (yhat[:, None] + rng.normal(0, 2.0, (HORIZON, 400))).astype(np.float32)
    frame = pd.DataFrame(
        {
            "ds": ds,
            "yhat": yhat,
            "lower_80": yhat - 2.5,
            "upper_80": yhat + 2.5,
            "lower_95": yhat - 4.0,
            "upper_95": yhat + 4.0,
            "trend": yhat,
        }
    )
    return ForecastResult(
        status="ok",
        status_detail="Prophet on 180 observed periods.",
        model=model,
        model_version=MODEL_VERSION,
        frame=frame,
        samples=samples,
        components={"ds": [d.isoformat() for d in ds[:3]], "trend": [1.0, np.float64(2.0), 3.0]},
        changepoints=[{"ds": "2026-10-01T00:00:00", "delta": 0.3}],
        params={"k": np.float64(0.1), "delta": np.zeros(3), "warm_started": False},
        backtest=BACKTEST,
        fit_seconds=0.4,
    )


def _save(
    db: Database, element_id: int, kpi: Kpi, result: ForecastResult, risk: BreachRisk | None
) -> int:
    with db.session(write=True) as session:
        return store.save_forecast(
            session,
            element_id=element_id,
            kpi_id=kpi.id,
            granularity=store.DAILY,
            result=result,
            risk=risk,
            threshold=kpi.capacity_threshold,
            horizon_days=HORIZON,
            training_start=pd.Timestamp(LAST_DAY) - pd.Timedelta(days=179),
            training_end=pd.Timestamp(LAST_DAY),
        )


def _risk(result: ForecastResult, threshold: float) -> BreachRisk:
    assert result.samples is not None
    return breach_risk(result.samples, pd.DatetimeIndex(result.frame["ds"]), threshold=threshold)


def _history(db: Database, element_id: int, kpi: Kpi, values: list[float]) -> None:
    days = [LAST_DAY - timedelta(days=len(values) - 1 - i) for i in range(len(values))]
    frame = pd.DataFrame(
        {
            "element_id": element_id,
            "kpi_id": kpi.id,
            "day": days,
            "busy_hour_value": values,
            "busy_hour": 20,
            "daily_mean": values,
            "daily_max": values,
            "samples": 96,
        }
    )
    with db.session(write=True) as session:
        upsert_daily(session, frame, source=ARCHIVE)


def test_forecast_kpis_are_the_capacity_kpis_and_active_users(db: Database) -> None:
    with db.session() as session:
        names = [k.name for k in store.forecast_kpis(session)]
    assert names == ["active_users", "cpu_util", "link_util", "prb_util_dl", "prb_util_ul"]


def test_save_supersedes_the_previous_forecast_and_drops_its_paths(db: Database) -> None:
    cell = _element(db, "C1", region="North")
    prb = _kpi(db, "prb_util_dl")
    first_result = _result(70, 0.1)
    first = _save(db, cell, prb, first_result, _risk(first_result, 80))
    second_result = _result(75, 0.2, seed=1)
    second = _save(db, cell, prb, second_result, _risk(second_result, 80))
    assert second != first
    with db.session() as session:
        current = session.scalars(select(Forecast.id).where(Forecast.is_current.is_(True))).all()
        assert current == [second]
        samples = session.scalars(select(ForecastSamples)).all()
        assert [s.forecast_id for s in samples] == [second]
        assert (samples[0].n_paths, samples[0].horizon) == (100, HORIZON)
        # The superseded forecast's points and risk stay for the record.
        points = session.scalar(
            select(func.count())
            .select_from(ForecastPoint)
            .where(ForecastPoint.forecast_id == first)
        )
        assert points == HORIZON
        assert session.scalar(select(func.count()).select_from(CapacityRisk)) == 2
        stored = session.get_one(Forecast, second)
        assert stored.params == {"k": 0.1, "delta": [0.0, 0.0, 0.0], "warm_started": False}
        assert stored.components["trend"] == [1.0, 2.0, 3.0]


def test_series_detail_round_trips_points_paths_and_risk(db: Database) -> None:
    cell = _element(db, "C1", region="North")
    prb = _kpi(db, "prb_util_dl")
    _history(db, cell, prb, [60.0, 61.0, 63.0])
    result = _result(75, 0.15)
    risk = _risk(result, 80)
    forecast_id = _save(db, cell, prb, result, risk)
    with db.session() as session:
        detail = store.series_detail(session, element_id=cell, kpi="prb_util_dl")
    assert detail is not None
    assert detail.element["dn"] == "SubNetwork=North,ManagedElement=C1"
    assert detail.kpi == {
        "id": prb.id,
        "name": "prb_util_dl",
        "unit": "%",
        "threshold": 80.0,
        "higher_is_worse": True,
    }
    assert detail.forecast["id"] == forecast_id
    assert detail.forecast["backtest"]["note"] == BACKTEST["note"]
    assert detail.forecast["changepoints"] == [{"ds": "2026-10-01T00:00:00", "delta": 0.3}]
    assert detail.forecast["training_end"].date() == LAST_DAY
    assert detail.history["y"].tolist() == [60.0, 61.0, 63.0]
    assert detail.history["ds"].iloc[-1] == pd.Timestamp(LAST_DAY)
    pd.testing.assert_series_equal(detail.points["ds"], result.frame["ds"], check_names=False)
    np.testing.assert_allclose(detail.points["upper_95"], result.frame["upper_95"])
    assert detail.points["ds"].iloc[0] == detail.history["ds"].iloc[-1] + pd.Timedelta(days=1)
    assert detail.paths is not None
    assert detail.paths.shape == (HORIZON, 100)
    assert detail.paths.dtype == np.float32
    assert result.samples is not None
    np.testing.assert_array_equal(detail.paths[:, 0], result.samples[:, 0])
    np.testing.assert_array_equal(detail.paths[:, -1], result.samples[:, -1])
    assert detail.risk is not None
    assert detail.risk["p_breach_90"] == pytest.approx(risk.p_by_horizon[90])
    assert detail.risk["breach_date"] == risk.date
    assert detail.risk["breach_date_low"] == risk.date_low


def test_series_detail_is_none_without_a_current_forecast(db: Database) -> None:
    cell = _element(db, "C1", region="North")
    with db.session() as session:
        assert store.series_detail(session, element_id=cell, kpi="prb_util_dl") is None
        assert store.series_detail(session, element_id=cell, kpi="no_such_kpi") is None
        assert store.series_detail(session, element_id=cell + 999, kpi="prb_util_dl") is None


def test_a_forecast_without_frame_samples_or_risk_is_stored(db: Database) -> None:
    cell = _element(db, "C1", region="North")
    users = _kpi(db, "active_users")
    empty = _result(1, 0)
    empty.status, empty.status_detail = "insufficient_history", "Only 5 days of history."
    empty.frame, empty.samples, empty.backtest = empty.frame.iloc[0:0], None, {}
    _save(db, cell, users, empty, None)
    with db.session() as session:
        detail = store.series_detail(session, element_id=cell, kpi="active_users")
        frame = store.portfolio(session)
    assert detail is not None
    assert detail.points.empty
    assert (detail.paths, detail.risk) == (None, None)
    assert frame["status"].tolist() == ["insufficient_history"]
    assert np.isnan(frame["p_breach_90"].iloc[0])
    assert frame["mape"].isna().all()


def test_portfolio_ranks_by_risk_and_filters(db: Database) -> None:
    north = _element(db, "N1", region="North")
    south = _element(db, "S1", region="South")
    link = _element(db, "L1", region="South", domain="Transport")
    prb, users, link_util = _kpi(db, "prb_util_dl"), _kpi(db, "active_users"), _kpi(db, "link_util")
    certain = _result(85, 0.1)  # already above 80: breaches at once
    likely = _result(70, 0.2, seed=2)  # crosses 80 after about 50 days
    unlikely = _result(40, 0.0, seed=3)
    _save(db, north, prb, likely, _risk(likely, 80))
    _save(db, south, prb, certain, _risk(certain, 80))
    _save(db, link, link_util, unlikely, _risk(unlikely, 70))
    _save(db, north, users, _result(100, 1.0, model="seasonal_naive"), None)
    _history(db, south, prb, [79.0, 84.0])
    with db.session() as session:
        frame = store.portfolio(session)
        assert list(frame.columns) == list(store.PORTFOLIO_COLUMNS)
        assert list(zip(frame["element_name"], frame["kpi"], strict=True)) == [
            ("S1", "prb_util_dl"),
            ("N1", "prb_util_dl"),
            ("L1", "link_util"),
            ("N1", "active_users"),  # no threshold, no risk: last
        ]
        top = frame.iloc[0]
        assert top["p_breach_30"] == 1.0
        assert top["last_value"] == 84.0
        assert (top["threshold"], top["unit"], top["region"]) == (80.0, "%", "South")
        assert (top["mape"], top["baseline_mape"], top["coverage_80"]) == (0.05, 0.08, 0.7)
        assert top["breach_date"] <= frame.iloc[1]["breach_date"]
        assert frame["breach_date"].dt.tz is None
        assert str(frame["fitted_at"].dt.tz) == "UTC"
        naive = frame.iloc[3]
        assert (naive["mape"], naive["baseline_mape"]) == (0.08, 0.08)  # naive produced it
        assert np.isnan(naive["threshold"])

        def names(**filters: object) -> list[str]:
            return [
                f"{r.element_name}/{r.kpi}"
                for r in store.portfolio(session, **filters).itertuples()  # type: ignore[arg-type]
            ]

        assert names(region="North") == ["N1/prb_util_dl", "N1/active_users"]
        assert names(domain="Transport") == ["L1/link_util"]
        assert names(kpi="prb_util_dl") == ["S1/prb_util_dl", "N1/prb_util_dl"]
        assert names(element_id=north) == ["N1/prb_util_dl", "N1/active_users"]
        assert names(min_p90=0.5) == ["S1/prb_util_dl", "N1/prb_util_dl"]
        assert names(status="fallback") == []
        assert names(limit=1) == ["S1/prb_util_dl"]


def test_current_params_come_from_current_forecasts_only(db: Database) -> None:
    cell = _element(db, "C1", region="North")
    other = _element(db, "C2", region="North")
    prb = _kpi(db, "prb_util_dl")
    old = _result(70, 0.1)
    old.params = {"k": 1.0}
    _save(db, cell, prb, old, None)
    new = _result(70, 0.1)
    new.params = {"k": 2.0}
    _save(db, cell, prb, new, None)
    _save(db, other, prb, _result(70, 0.1), None)
    with db.session() as session:
        found = store.current_params(session, [(cell, prb.id), (cell + 999, prb.id)])
        assert store.current_params(session, []) == {}
    assert list(found) == [(cell, prb.id)]
    params, backtest = found[(cell, prb.id)]
    assert params == {"k": 2.0}
    assert backtest["choice"] == "prophet"


def test_prune_superseded_keeps_current_and_recent_forecasts(db: Database) -> None:
    cell = _element(db, "C1", region="North")
    prb = _kpi(db, "prb_util_dl")
    ids = [_save(db, cell, prb, _result(70, 0.1), None) for _ in range(3)]
    with db.session(write=True) as session:
        session.execute(
            update(Forecast)
            .where(Forecast.id == ids[0])
            .values(fitted_at=utcnow() - timedelta(days=60))
        )
        assert store.prune_superseded(session) == 1
    with db.session() as session:
        assert sorted(session.scalars(select(Forecast.id))) == ids[1:]
        orphans = session.scalar(
            select(func.count())
            .select_from(ForecastPoint)
            .where(ForecastPoint.forecast_id == ids[0])
        )
        assert orphans == 0


def test_paths_round_trip_shuffled_and_plain_zlib_blobs() -> None:
    paths = np.random.default_rng(2).normal(50, 5, (100, 90)).astype(np.float32)
    stored = ForecastSamples(n_paths=100, horizon=90, paths=store.encode_paths(paths))
    assert np.array_equal(store.decode_paths(stored), paths)
    assert len(stored.paths) < paths.nbytes * 0.8  # the shuffle is what makes floats compress
    # Blobs stored before the byte shuffle still read back.
    older = ForecastSamples(n_paths=100, horizon=90, paths=zlib.compress(paths.tobytes(), 6))
    assert np.array_equal(store.decode_paths(older), paths)
