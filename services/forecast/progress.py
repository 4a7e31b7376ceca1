"""Where forecasting stands: current forecasts by status, risk, stale series, the last run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.db import Database
from services.db.models import CapacityRisk, Forecast, JobRun
from services.forecast import service
from services.forecast.model import STATUSES

AT_RISK = 0.5  # breach probability from which a series counts as at risk
DAILY = service.DAILY


def status(db: Database) -> dict[str, Any]:
    """Current daily forecasts by status, series at risk, stale series and the last job run."""
    with db.session() as session:
        by_status = dict(
            session.execute(
                select(Forecast.status, func.count())
                .where(Forecast.is_current.is_(True), Forecast.granularity == DAILY)
                .group_by(Forecast.status)
            ).all()
        )
        risk = session.execute(
            select(
                func.count().filter(CapacityRisk.p_breach_30 >= AT_RISK),
                # A forecast shorter than 90 days still puts a series at risk within 90 days
                # when it breaches earlier: P(by 90) is at least P(by 60) and P(by 30).
                func.count().filter(
                    func.coalesce(
                        CapacityRisk.p_breach_90, CapacityRisk.p_breach_60, CapacityRisk.p_breach_30
                    )
                    >= AT_RISK
                ),
                func.max(Forecast.fitted_at),
            )
            .select_from(Forecast)
            .outerjoin(CapacityRisk, CapacityRisk.forecast_id == Forecast.id)
            .where(Forecast.is_current.is_(True), Forecast.granularity == DAILY)
        ).one()
        runs = session.scalars(
            select(JobRun)
            .where(JobRun.job_id == service.JOB_ID)
            .order_by(JobRun.started_at.desc())
            .limit(2)
        ).all()
    last = next((r for r in runs if r.finished_at is not None), None)
    running = next((r for r in runs if r.finished_at is None), None)
    return {
        "forecasts": {name: int(by_status.get(name, 0)) for name in STATUSES},
        "at_risk_30": int(risk[0] or 0),
        "at_risk_90": int(risk[1] or 0),
        "newest_fit": risk[2],
        "stale": service.stale_series(db),
        "last_run": _run_summary(last),
        "running": _run_summary(running),
    }


def _run_summary(run: JobRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "progress": run.progress,
        "detail": run.detail or {},
        "error": run.error,
    }
