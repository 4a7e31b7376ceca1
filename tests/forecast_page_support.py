"""Stored capacity forecasts, saved the way the forecast service saves them, for page tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import DailyAggregate, Element, Kpi, utcnow
from services.forecast import store
from services.forecast.breach import breach_risk
from services.forecast.result import ForecastConfig, ForecastResult, insufficient

HORIZON = 90
HISTORY_DAYS = 120
PATHS = 100
SITE = "SubNetwork=Harbour,ManagedElement=SITE-0777"


@dataclass(frozen=True)
class ForecastSample:
    """Ids of what `add_forecasts` stored."""

    hot: int  # element: PRB heading through capacity (Prophet, high risk)
    calm: int  # element: PRB far below capacity (seasonal naive won the backtest)
    link: int  # element: link on a fallback forecast
    fresh: int  # element: too little history
    hot_forecast: int


def add_forecasts(session: Session, *, today: date | None = None) -> ForecastSample:
    """Four elements with current forecasts in every status, with history and sample paths."""
    today = today or utcnow().date()
    kpis = {k.name: k for k in session.scalars(select(Kpi))}
    hot = _element(session, f"{SITE},EUtranCellFDD=C1", "SITE-0777 C1", "RAN", "Harbour")
    calm = _element(session, f"{SITE},EUtranCellFDD=C2", "SITE-0777 C2", "RAN", "Harbour")
    link = _element(
        session, "Transport=Backhaul,Link=L-0777", "Backhaul L-0777", "Transport", "Inland"
    )
    fresh = _element(session, f"{SITE},EUtranCellFDD=C3", "SITE-0777 C3", "RAN", "Harbour")
    rng = np.random.default_rng(7)
    hot_id = _series(
        session, hot, kpis["prb_util_dl"], today=today, rng=rng, base=50.0, slope=0.2,
        model="prophet", status="ok", backtest=_backtest("prophet", 0.041, 0.063),
    )  # fmt: skip
    _series(
        session, calm, kpis["prb_util_dl"], today=today, rng=rng, base=30.0, slope=0.0,
        model="seasonal_naive", status="ok", backtest=_backtest("seasonal_naive", 0.071, 0.052),
    )  # fmt: skip
    _series(
        session, link, kpis["link_util"], today=today, rng=rng, base=45.0, slope=0.1,
        model="seasonal_naive", status="fallback", backtest={},
        detail="Prophet timed out after 60 s; seasonal naive produced this forecast.",
    )  # fmt: skip
    _series(
        session, hot, kpis["active_users"], today=today, rng=rng, base=400.0, slope=0.5,
        model="prophet", status="ok", backtest=_backtest("prophet", 0.08, 0.11),
    )  # fmt: skip
    _short(session, fresh, kpis["prb_util_dl"], today=today)
    session.flush()
    return ForecastSample(
        hot=hot.id, calm=calm.id, link=link.id, fresh=fresh.id, hot_forecast=hot_id
    )


def _element(session: Session, dn: str, name: str, domain: str, region: str) -> Element:
    kind = "link" if domain == "Transport" else "cell"
    element = Element(dn=dn, name=name, element_type=kind, domain=domain, region=region)
    session.add(element)
    session.flush()
    return element


def _backtest(choice: str, prophet: float, naive: float) -> dict:
    chosen = "Prophet (additive seasonality) beat" if choice == "prophet" else "Seasonal naive beat"
    other = (prophet, naive) if choice == "prophet" else (naive, prophet)
    return {
        "at": utcnow().isoformat(timespec="seconds"),
        "cutoffs": 3,
        "horizon": 30,
        "choice": choice,
        "prophet_mode": "additive",
        "prophet": {"mape": prophet, "coverage_80": 0.66, "coverage_95": 0.86},
        "seasonal_naive": {"mape": naive, "coverage_80": 0.79, "coverage_95": 0.93},
        "modes": {
            "additive": {"mape": prophet, "coverage_80": 0.66, "coverage_95": 0.86},
            "multiplicative": {"mape": prophet + 0.01, "coverage_80": 0.6, "coverage_95": 0.8},
        },
        "scale_80": 1.31,
        "scale_95": 1.18,
        "note": f"{chosen} {'seasonal naive' if choice == 'prophet' else 'Prophet'} in backtest "
        f"(MAPE {100 * other[0]:.1f}% vs {100 * other[1]:.1f}%, 3 cutoffs, 30 periods ahead).",
    }


def _series(
    session: Session,
    element: Element,
    kpi: Kpi,
    *,
    today: date,
    rng: np.random.Generator,
    base: float,
    slope: float,
    model: str,
    status: str,
    backtest: dict,
    detail: str = "",
) -> int:
    days = pd.date_range(end=pd.Timestamp(today) - pd.Timedelta(days=1), periods=HISTORY_DAYS)
    t = np.arange(HISTORY_DAYS + HORIZON, dtype=float)
    weekly = 4.0 * np.sin(2 * np.pi * t / 7)
    level = base + slope * t + weekly
    observed = level[:HISTORY_DAYS] + rng.normal(0, 1.5, HISTORY_DAYS)
    _history(session, element, kpi, days, observed)
    future = pd.date_range(days[-1] + pd.Timedelta(days=1), periods=HORIZON)
    yhat = level[HISTORY_DAYS:]
    spread = np.linspace(2.0, 7.0, HORIZON)[:, None]
    paths = (yhat[:, None] + spread * rng.standard_normal((HORIZON, PATHS))).astype(np.float32)
    bands = np.quantile(paths, [0.1, 0.9, 0.025, 0.975], axis=1)
    frame = pd.DataFrame(
        {
            "ds": future,
            "yhat": yhat,
            "lower_80": bands[0],
            "upper_80": bands[1],
            "lower_95": bands[2],
            "upper_95": bands[3],
            "trend": base + slope * t[HISTORY_DAYS:],
        }
    )
    prophet = model == "prophet"
    result = ForecastResult(
        status=status,
        status_detail=detail,
        model=model,
        model_version="prophet-1.5.0+conf-1" if prophet else "seasonal-naive-1",
        frame=frame,
        samples=paths,
        components={
            "ds": [d.isoformat() for d in [*days, *future]],
            "trend": list(base + slope * t),
            "weekly": list(weekly),
        }
        if prophet
        else {},
        changepoints=[{"ds": days[60].isoformat(), "delta": 0.12}] if prophet else [],
        backtest=backtest,
        fit_seconds=1.4,
    )
    threshold = kpi.capacity_threshold
    risk = None if threshold is None else breach_risk(paths, future, threshold=threshold)
    return store.save_forecast(
        session,
        element_id=element.id,
        kpi_id=kpi.id,
        granularity=store.DAILY,
        result=result,
        risk=risk,
        threshold=threshold,
        horizon_days=HORIZON,
        training_start=days[0],
        training_end=days[-1],
        keep_paths=PATHS,
    )


def _short(session: Session, element: Element, kpi: Kpi, *, today: date) -> None:
    days = pd.date_range(end=pd.Timestamp(today) - pd.Timedelta(days=1), periods=9)
    _history(session, element, kpi, days, np.full(9, 40.0))
    result = insufficient(pd.DataFrame({"ds": days, "y": 40.0}), ForecastConfig(), 9)
    store.save_forecast(
        session,
        element_id=element.id,
        kpi_id=kpi.id,
        granularity=store.DAILY,
        result=result,
        risk=None,
        threshold=kpi.capacity_threshold,
        horizon_days=HORIZON,
        training_start=days[0],
        training_end=days[-1],
    )


def _history(
    session: Session, element: Element, kpi: Kpi, days: pd.DatetimeIndex, values: np.ndarray
) -> None:
    session.add_all(
        DailyAggregate(
            element_id=element.id,
            kpi_id=kpi.id,
            day=d.date(),
            busy_hour_value=float(v),
            busy_hour=19,
            daily_mean=float(v) * 0.7,
            daily_max=float(v) * 1.05,
            samples=96,
            source="measurements",
        )
        for d, v in zip(days, values, strict=True)
    )
