"""Capacity forecasts: the risk-ranked portfolio and one series in full."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api.blueprint import api, endpoint
from services.api.schemas.forecasts import (
    ForecastDetail,
    ForecastElementRef,
    ForecastHistoryPoint,
    ForecastKpiRef,
    ForecastPage,
    ForecastPath,
    ForecastPointOut,
    ForecastQuality,
    ForecastQuery,
    ForecastRisk,
    ForecastSummary,
)
from services.auth import Scope
from services.db.models import Element, Kpi
from services.errors import NotFound
from services.forecast import store
from services.web.context import beacon


@api.get("/forecasts")
@endpoint(scope=Scope.READ, resp=ForecastPage, tags=["forecasts"])
def list_forecasts(query: ForecastQuery) -> ForecastPage:
    """Current forecasts ranked by breach risk (90-day, then 30-day probability, then date)."""
    with beacon().db.session() as session:
        frame = store.portfolio(
            session,
            region=query.region,
            domain=query.domain,
            kpi=query.kpi,
            status=query.status,
            min_p90=query.min_p90,
        )
    page = frame.iloc[query.offset : query.offset + query.limit]
    return ForecastPage(
        items=[_summary(_clean(row)) for row in page.to_dict("records")],
        total=len(frame),
        limit=query.limit,
        offset=query.offset,
    )


@api.get("/forecasts/<path:element>/<kpi>")
@endpoint(scope=Scope.READ, resp=ForecastDetail, errors=(404,), tags=["forecasts"])
def get_forecast(path: ForecastPath) -> ForecastDetail:
    """One series: daily busy-hour history, the forecast with 80/95% intervals, risk, quality."""
    with beacon().db.session() as session:
        element = _element(session, path.element)
        _forecast_kpi(session, path.kpi)
        detail = store.series_detail(session, element_id=element.id, kpi=path.kpi)
    if detail is None:
        raise NotFound(
            f"There is no forecast yet for {path.kpi} on {element.dn}: forecasts are fitted by "
            "the nightly job once the series has enough daily history.",
            details={"element_id": element.id, "kpi": path.kpi},
        )
    meta = detail.forecast
    risk = detail.risk
    return ForecastDetail(
        forecast_id=meta["id"],
        element=ForecastElementRef(
            **{k: detail.element[k] for k in ("id", "name", "dn", "region", "domain")}
        ),
        kpi=ForecastKpiRef(
            name=detail.kpi["name"],
            unit=detail.kpi["unit"],
            threshold=detail.kpi["threshold"],
            higher_is_worse=detail.kpi["higher_is_worse"],
        ),
        granularity=meta["granularity"],
        model=meta["model"],
        model_version=meta["model_version"],
        status=meta["status"],
        status_detail=meta["status_detail"],
        fitted_at=meta["fitted_at"],
        fit_seconds=meta["fit_seconds"],
        training_start=meta["training_start"],
        training_end=meta["training_end"],
        horizon_days=meta["horizon_days"],
        risk=_risk(_clean(risk)) if risk is not None else None,
        quality=ForecastQuality(**store.backtest_quality(meta["backtest"], meta["model"])),
        backtest=meta["backtest"],
        changepoints=meta["changepoints"],
        components=meta["components"],
        history=[
            ForecastHistoryPoint(ds=row["ds"].date(), y=row["y"])
            for row in detail.history.dropna(subset=["y"]).to_dict("records")
        ],
        points=[
            ForecastPointOut(**{**row, "ds": row["ds"].date()})
            for row in (_clean(r) for r in detail.points.to_dict("records"))
        ],
    )


def _element(session: Session, ref: str) -> Element:
    """An element by numeric id or by DN; NotFound saying which was looked for."""
    if ref.isdigit():
        element = session.get(Element, int(ref))
        if element is None:
            raise NotFound(f"There is no element with id {ref}.")
        return element
    element = session.scalar(select(Element).where(Element.dn == ref))
    if element is None:
        raise NotFound(
            f"There is no element with DN {ref!r}; give its numeric id or its exact DN "
            "(URL-encoded)."
        )
    return element


def _forecast_kpi(session: Session, name: str) -> None:
    """NotFound unless `name` is a KPI that is forecast, listing the ones that are."""
    names = [k.name for k in store.forecast_kpis(session)]
    if name in names:
        return
    known = session.scalar(select(Kpi.id).where(Kpi.name == name)) is not None
    reason = "is not forecast" if known else "is not a known KPI"
    raise NotFound(
        f"{name!r} {reason}; forecasts exist for {', '.join(names)}.",
        details={"forecast_kpis": names},
    )


def _summary(row: dict[str, Any]) -> ForecastSummary:
    return ForecastSummary(
        forecast_id=row["forecast_id"],
        element=ForecastElementRef(
            id=row["element_id"],
            name=row["element_name"],
            dn=row["dn"],
            region=row["region"],
            domain=row["domain"],
        ),
        kpi=row["kpi"],
        unit=row["unit"],
        risk=_risk(row) if row["threshold"] is not None and _has_risk(row) else None,
        model=row["model"],
        model_version=row["model_version"],
        status=row["status"],
        status_detail=row["status_detail"],
        quality=ForecastQuality(
            **{k: row[k] for k in ("mape", "baseline_mape", "coverage_80", "coverage_95")}
        ),
        fitted_at=row["fitted_at"],
        last_value=row["last_value"],
    )


def _has_risk(row: dict[str, Any]) -> bool:
    return any(row[f"p_breach_{h}"] is not None for h in (30, 60, 90))


def _risk(row: dict[str, Any]) -> ForecastRisk:
    return ForecastRisk(
        threshold=row["threshold"],
        p_breach_30=row["p_breach_30"],
        p_breach_60=row["p_breach_60"],
        p_breach_90=row["p_breach_90"],
        breach_date=_day(row["breach_date"]),
        breach_date_low=_day(row["breach_date_low"]),
        breach_date_high=_day(row["breach_date_high"]),
    )


def _day(value: Any) -> Any:
    return None if value is None else pd.Timestamp(value).date()


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """None for NaN and NaT, plain datetimes for timestamps (JSON has no NaN)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
            out[key] = None
        elif isinstance(value, pd.Timestamp):
            out[key] = value.to_pydatetime() if value.tzinfo is not None else value
        else:
            out[key] = value
    return out
