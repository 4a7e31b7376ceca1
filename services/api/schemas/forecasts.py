"""Models of capacity forecasts: the risk-ranked portfolio and one series in full."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field, field_validator

from services.api.schemas.common import PageInfo, PageQuery, UtcDateTime
from services.forecast.model import STATUSES

BREACH_RULE = (
    "A sample path breaches on the first day its rolling 7-day median of the daily busy-hour "
    "value is past the threshold; probabilities are shares of calibrated sample paths."
)


class ForecastQuery(PageQuery):
    """Filters of the portfolio; all given filters must match. Highest breach risk first."""

    region: str | None = Field(default=None, max_length=64)
    domain: str | None = Field(default=None, max_length=16, examples=["RAN"])
    kpi: str | None = Field(default=None, max_length=64, examples=["prb_util_dl"])
    status: str | None = Field(
        default=None, max_length=100, description=f"Comma-separated: {', '.join(STATUSES)}"
    )
    min_p90: float | None = Field(
        default=None, ge=0, le=1, description="Only series at least this likely to breach in 90 d"
    )

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        wanted = [v.strip() for v in value.split(",") if v.strip()]
        unknown = sorted(set(wanted) - set(STATUSES))
        if unknown:
            raise ValueError(f"unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
        return ",".join(wanted) or None


class ForecastPath(BaseModel):
    """A series in the URL: an element and one of its KPIs."""

    element: str = Field(
        min_length=1, max_length=512, description="The element's numeric id or its URL-encoded DN"
    )
    kpi: str = Field(min_length=1, max_length=64, description="KPI name, e.g. prb_util_dl")


class ForecastElementRef(BaseModel):
    """The element a forecast is for."""

    id: int
    name: str
    dn: str = Field(description="3GPP-style distinguished name")
    region: str | None
    domain: str


class ForecastRisk(BaseModel):
    """Breach probabilities by horizon and the likely first-breach day with a 10-90% range."""

    threshold: float | None = Field(description="The KPI's capacity threshold")
    p_breach_30: float | None = Field(description="Probability of a breach within 30 days")
    p_breach_60: float | None
    p_breach_90: float | None
    breach_date: date | None = Field(description="Median first-breach day (NOC-local calendar)")
    breach_date_low: date | None = Field(description="10th percentile of the first-breach day")
    breach_date_high: date | None = Field(
        description="90th percentile; null when beyond the horizon"
    )


class ForecastQuality(BaseModel):
    """Rolling-origin backtest of the model that produced the forecast, and of naive."""

    mape: float | None = Field(description="Backtest MAPE (fraction) of the model used")
    baseline_mape: float | None = Field(description="Backtest MAPE of seasonal naive")
    coverage_80: float | None = Field(
        description="Backtest coverage of the raw 80% interval before calibration"
    )
    coverage_95: float | None


class ForecastSummary(BaseModel):
    """One series' current forecast in the portfolio."""

    forecast_id: int
    element: ForecastElementRef
    kpi: str
    unit: str
    risk: ForecastRisk | None = Field(description="Null for KPIs without a capacity threshold")
    model: str = Field(description="prophet or seasonal_naive")
    model_version: str
    status: str = Field(description=f"One of {', '.join(STATUSES)}")
    status_detail: str = Field(description="Plain-language account of how it was produced")
    quality: ForecastQuality
    fitted_at: UtcDateTime
    last_value: float | None = Field(description="The newest daily busy-hour value")


class ForecastPage(PageInfo):
    """One page of the portfolio, highest 90-day then 30-day breach probability first."""

    breach_rule: str = Field(default=BREACH_RULE)
    items: list[ForecastSummary]


class ForecastPointOut(BaseModel):
    """One forecast day with its calibrated intervals."""

    ds: date = Field(description="NOC-local calendar day")
    yhat: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    trend: float | None


class ForecastHistoryPoint(BaseModel):
    """One observed day: the KPI's value in its busiest hour."""

    ds: date
    y: float


class ForecastKpiRef(BaseModel):
    """The KPI a forecast is for."""

    name: str
    unit: str
    threshold: float | None
    higher_is_worse: bool


class ForecastDetail(BaseModel):
    """One series: history, the forecast with its intervals, risk, backtest and components."""

    forecast_id: int
    element: ForecastElementRef
    kpi: ForecastKpiRef
    granularity: str
    model: str
    model_version: str
    status: str
    status_detail: str
    fitted_at: UtcDateTime
    fit_seconds: float | None
    training_start: UtcDateTime | None
    training_end: UtcDateTime | None
    horizon_days: int
    risk: ForecastRisk | None
    breach_rule: str = Field(default=BREACH_RULE)
    quality: ForecastQuality
    backtest: dict[str, Any] = Field(description="Cutoffs, per-model metrics, scales and a note")
    changepoints: list[Any] = Field(description="Significant trend changes: ds and delta")
    components: dict[str, Any] = Field(description="Trend and seasonal components over time")
    history: list[ForecastHistoryPoint]
    points: list[ForecastPointOut]
