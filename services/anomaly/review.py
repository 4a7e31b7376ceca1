"""Detector review for the AI system owner: which model runs, how it matches verdicts, its health.

Reads only stored data: episodes and their verdicts, the scheduler's job history, the
detection cursor and the shipped calibration table. A verdict of "true_anomaly" counts as
confirmed; "not_anomaly", "expected" and "new_normal" count as not confirmed (the episode
was real data but not something an operator wanted to be told about).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import kv
from services.anomaly.calibration import (
    expected_calibration_error,
    load_episode_table,
    load_table,
    reliability_table,
)
from services.anomaly.detect import DETECTOR, MODEL_VERSION
from services.anomaly.service import CURSOR_KEY, JOB_ID
from services.anomaly.severity import SEVERITIES
from services.anomaly.thresholds import effective_thresholds
from services.db.models import Anomaly, AnomalyFeedback, JobRun, Kpi

CONFIRMED = "true_anomaly"
NOT_CONFIRMED = ("not_anomaly", "expected", "new_normal")
LABELS = (CONFIRMED, *NOT_CONFIRMED)
MIN_VERDICTS = 20  # below this a reliability curve is noise, not evidence
BINS = 10


@dataclass(frozen=True)
class ModelSummary:
    """The detector in production: name, version, thresholds and calibration provenance."""

    detector: str
    model_version: str
    default_threshold: float
    kpi_overrides: int
    use_case_overrides: int
    calibration_version: str
    calibration_target: str
    calibration_fitted_on: str
    episode_calibration_version: str = ""
    episode_calibration_target: str = ""
    episode_calibration_fitted_on: str = ""


@dataclass(frozen=True)
class KpiPrecision:
    """Verdicts on one KPI's episodes: how many were judged and how many confirmed."""

    kpi: str
    judged: int
    confirmed: int

    @property
    def precision(self) -> float:
        """Share of judged episodes that operators confirmed."""
        return self.confirmed / self.judged if self.judged else float("nan")


@dataclass(frozen=True)
class CalibrationReview:
    """Stored confidence against the latest operator verdict of each judged episode."""

    n: int
    current_version: int  # verdicts on episodes of the running model version
    reliability: pd.DataFrame  # bin_low, bin_high, count, mean_confidence, observed_rate
    ece: float
    by_label: dict[str, int]
    by_kpi: list[KpiPrecision]

    @property
    def enough(self) -> bool:
        """True when there are enough verdicts for the curve and the ECE to mean something."""
        return self.n >= MIN_VERDICTS


@dataclass(frozen=True)
class RunSummary:
    """One run of the detection job, from its JobRun row."""

    started_at: datetime
    finished_at: datetime | None
    status: str
    periods: int | None
    reevaluated: int | None
    opened: int | None
    failures: int
    seconds: float | None
    error: str | None


@dataclass(frozen=True)
class Lag:
    """How far detection is behind the clock."""

    cursor: datetime | None
    behind: timedelta | None


def model_summary(session: Session) -> ModelSummary:
    """The running detector, its version, thresholds and the shipped calibration's provenance."""
    thresholds = effective_thresholds(session)
    table = load_table()
    episodes = load_episode_table()
    return ModelSummary(
        detector=DETECTOR,
        model_version=MODEL_VERSION,
        default_threshold=thresholds.default,
        kpi_overrides=len(thresholds.kpi),
        use_case_overrides=len(thresholds.use_case),
        calibration_version=table.version,
        calibration_target=table.target,
        calibration_fitted_on=table.fitted_on,
        episode_calibration_version=episodes.version,
        episode_calibration_target=episodes.target,
        episode_calibration_fitted_on=episodes.fitted_on,
    )


def latest_verdicts(session: Session, *, since: datetime | None = None) -> pd.DataFrame:
    """One row per judged episode with its latest verdict: anomaly_id, kpi, confidence, label.

    With `since`, only episodes whose latest verdict was given at or after it.
    """
    ranked_query = select(
        AnomalyFeedback.anomaly_id,
        AnomalyFeedback.label,
        AnomalyFeedback.created_at,
        func.row_number()
        .over(
            partition_by=AnomalyFeedback.anomaly_id,
            order_by=(AnomalyFeedback.created_at.desc(), AnomalyFeedback.id.desc()),
        )
        .label("rank"),
    )
    ranked = ranked_query.subquery()
    query = (
        select(
            ranked.c.anomaly_id,
            Kpi.name.label("kpi"),
            Anomaly.confidence,
            Anomaly.model_version,
            ranked.c.label,
        )
        .join(Anomaly, Anomaly.id == ranked.c.anomaly_id)
        .join(Kpi, Kpi.id == Anomaly.kpi_id)
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.anomaly_id)
    )
    if since is not None:
        query = query.where(ranked.c.created_at >= since)
    rows = session.execute(query).all()
    frame = pd.DataFrame(
        rows, columns=["anomaly_id", "kpi", "confidence", "model_version", "label"]
    )
    # Labels outside the four known verdicts are not evidence either way.
    frame = frame[frame["label"].isin(LABELS)].reset_index(drop=True)
    frame["confirmed"] = frame["label"] == CONFIRMED
    return frame


def calibration_review(session: Session, *, bins: int = BINS) -> CalibrationReview:
    """Reliability bins, ECE, and verdict counts by label and KPI from the latest verdicts."""
    verdicts = latest_verdicts(session)
    confidence = verdicts["confidence"].to_numpy(dtype=np.float64)
    outcome = verdicts["confirmed"].to_numpy(dtype=np.float64)
    by_kpi = [
        KpiPrecision(kpi=str(kpi), judged=len(part), confirmed=int(part["confirmed"].sum()))
        for kpi, part in verdicts.groupby("kpi", sort=True)
    ]
    by_kpi.sort(key=lambda p: (-p.judged, p.kpi))
    return CalibrationReview(
        n=len(verdicts),
        current_version=int((verdicts["model_version"] == MODEL_VERSION).sum()),
        reliability=reliability_table(confidence, outcome, bins),
        ece=expected_calibration_error(confidence, outcome, bins),
        by_label={label: int((verdicts["label"] == label).sum()) for label in LABELS},
        by_kpi=by_kpi,
    )


def detection_runs(session: Session, *, limit: int = 20) -> list[RunSummary]:
    """The newest runs of the detection job, newest first."""
    runs = session.scalars(
        select(JobRun)
        .where(JobRun.job_id == JOB_ID)
        .order_by(JobRun.started_at.desc(), JobRun.id.desc())
        .limit(limit)
    ).all()
    return [_run_summary(run) for run in runs]


def _run_summary(run: JobRun) -> RunSummary:
    detail: dict[str, Any] = run.detail or {}
    failures = detail.get("failures")
    return RunSummary(
        started_at=_utc(run.started_at),
        finished_at=_utc(run.finished_at) if run.finished_at else None,
        status=run.status,
        periods=_int(detail.get("periods")),
        reevaluated=_int(detail.get("reevaluated")),
        opened=_int(detail.get("opened")),
        failures=len(failures) if isinstance(failures, list) else 0,
        seconds=_float(detail.get("seconds")),
        error=run.error,
    )


def detection_lag(session: Session, *, now: datetime) -> Lag:
    """The newest evaluated period (the service's cursor) and how far it is behind `now`."""
    value = kv.get_value(session, CURSOR_KEY)
    if not isinstance(value, str):
        return Lag(cursor=None, behind=None)
    try:
        cursor = _utc(datetime.fromisoformat(value))
    except ValueError:
        return Lag(cursor=None, behind=None)
    return Lag(cursor=cursor, behind=max(now - cursor, timedelta(0)))


def daily_volume(session: Session, *, now: datetime, days: int = 30) -> pd.DataFrame:
    """Episodes opened per UTC day and severity over the last `days` days (zero days kept)."""
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    if session.get_bind().dialect.name == "sqlite":
        day = func.date(Anomaly.started_at)
    else:
        day = func.date(func.timezone("UTC", Anomaly.started_at))
    rows = session.execute(
        select(day.label("day"), Anomaly.severity, func.count().label("episodes"))
        .where(Anomaly.started_at >= since)
        .group_by(day, Anomaly.severity)
    ).all()
    counts = {(_day(d), s): int(n) for d, s, n in rows}
    severities = [*SEVERITIES, *sorted({s for _, s in counts} - set(SEVERITIES))]
    grid = [first + timedelta(days=i) for i in range(days)]
    return pd.DataFrame(
        [
            {"day": d, "severity": s, "episodes": counts.get((d, s), 0)}
            for s in severities
            for d in grid
        ],
        columns=["day", "severity", "episodes"],
    )


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
