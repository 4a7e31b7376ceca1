"""Heartbeats of the AI itself: stale sources, failing jobs, missed runs, calibration drift.

Each finding opens one incident for the AI component's owning team (deduplicated while it
is open) so the on-call owner of the AI is paged like any network owner. Recovery and
relapse are written on the open incident's timeline; closing it stays a human decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit, calibration_drift
from services.db import Database
from services.db.models import Incident, JobRun, Source, utcnow
from services.errors import NotFound
from services.incidents import lifecycle, states, timeline
from services.incidents.openers import Opened
from services.notify.config import NotifyConfig
from services.oncall import resolve as oncall

log = logging.getLogger(__name__)

JOB_ID = "heartbeats.check"
JOB_EVERY_S = 60
KEY_PREFIX = "heartbeat:"
JOB_KEY = f"{KEY_PREFIX}job:"
MISSED_KEY = f"{KEY_PREFIX}missed:"
DRIFT_KEY = f"{KEY_PREFIX}drift:"
FAILURE_THRESHOLD = 3  # consecutive failed runs; one failure is retried by the scheduler
MISSED_FACTOR = 3  # a job is missing after three of its intervals without a run …
MISSED_MIN = timedelta(minutes=10)  # … and never sooner than this
# Which AI component a job belongs to (the ownership map's component keys).
JOB_COMPONENTS = {
    "anomaly.detect": "detector",
    "forecast.nightly": "forecaster",
    "forecast.rollup": "forecaster",
}
DEFAULT_COMPONENT = "scheduler"


@dataclass(frozen=True)
class Finding:
    """One unhealthy AI component: what, for whom, how bad."""

    key: str  # dedup key, "heartbeat:<check>:<subject>"
    component: str
    title: str
    summary: str
    severity: str


@dataclass
class HeartbeatReport:
    """What one check did: incidents opened, still open, recovered; checks that failed."""

    opened: list[int] = field(default_factory=list)
    ongoing: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def component_for_job(job_id: str) -> str:
    """The AI component a scheduler job belongs to."""
    return JOB_COMPONENTS.get(job_id, DEFAULT_COMPONENT)


def stale_sources(session: Session, *, now: datetime) -> list[Finding]:
    """Enabled sources silent past their threshold (never-seen sources are not judged)."""
    found = []
    for source in session.scalars(select(Source).where(Source.enabled.is_(True))):
        if source.last_received_at is None:
            continue
        silent = (now - source.last_received_at).total_seconds()
        if silent <= source.stale_after_s:
            continue
        found.append(
            Finding(
                key=f"{KEY_PREFIX}stale:{source.name}",
                component=f"ingest:{source.name}",
                title=f"Source {source.name} is stale: no data for {int(silent // 60)} min",
                summary=(
                    f"Last data at {source.last_received_at.isoformat()}; the threshold is "
                    f"{source.stale_after_s // 60} min. Detectors on its elements report "
                    "insufficient data until it delivers again."
                ),
                severity="sev3",
            )
        )
    return found


def failing_jobs(session: Session, *, threshold: int = FAILURE_THRESHOLD) -> list[Finding]:
    """Jobs whose last `threshold` finished runs all failed."""
    found = []
    for job_id in session.scalars(select(JobRun.job_id).distinct().order_by(JobRun.job_id)):
        recent = session.execute(
            select(JobRun.status, JobRun.error)
            .where(JobRun.job_id == job_id, JobRun.finished_at.is_not(None))
            .order_by(JobRun.started_at.desc(), JobRun.id.desc())
            .limit(threshold)
        ).all()
        if len(recent) < threshold or any(r.status != "failed" for r in recent):
            continue
        component = component_for_job(job_id)
        found.append(
            Finding(
                key=f"{JOB_KEY}{job_id}",
                component=component,
                title=f"Job {job_id} failed {threshold} times in a row",
                summary=f"Last error: {recent[0].error or 'unknown'}"[:2000],
                severity="sev2" if component == "detector" else "sev3",
            )
        )
    return found


def missed_jobs(session: Session, *, now: datetime, expected: Mapping[str, int]) -> list[Finding]:
    """Jobs (id -> interval in seconds) that have not started within their allowance."""
    found = []
    for job_id, every_s in sorted(expected.items()):
        allowance = max(timedelta(seconds=every_s * MISSED_FACTOR), MISSED_MIN)
        last = session.scalar(select(func.max(JobRun.started_at)).where(JobRun.job_id == job_id))
        if last is None or now - last <= allowance:
            # A job that never ran is a fresh install, not a silent failure.
            continue
        component = component_for_job(job_id)
        found.append(
            Finding(
                key=f"{MISSED_KEY}{job_id}",
                component=component,
                title=f"The {component} did not run: {job_id} silent for {_ago(now - last)}",
                summary=(
                    f"Expected every {every_s} s; last start {last.isoformat()}. "
                    "Is the scheduler running and holding its lease?"
                ),
                severity="sev2" if component == "detector" else "sev3",
            )
        )
    return found


def calibration_drifts(session: Session, *, now: datetime) -> list[Finding]:
    """The detector's confidence or the forecaster's intervals no longer match reality."""
    found = []
    detector = calibration_drift.detector_drift(session, now=now)
    if detector.drifted:
        found.append(
            Finding(
                key=f"{DRIFT_KEY}detector",
                component="detector",
                title=(
                    f"Detector calibration drift: confidence off by {detector.ece:.0%} on average"
                ),
                summary=(
                    f"Over the last 30 days {detector.verdicts} episodes were judged: the "
                    f"detector said {detector.mean_confidence:.0%} on average, operators "
                    f"confirmed {detector.confirmed_rate:.0%} (calibration error "
                    f"{detector.ece:.2f}, limit {calibration_drift.DETECTOR_MAX_ECE:.2f}). "
                    "Confidence shown on episodes overstates or understates how often they "
                    "are real; review the detector page's reliability view and refit the "
                    "calibration table."
                ),
                severity="sev3",
            )
        )
    forecaster = calibration_drift.forecast_drift(session, now=now)
    nominal, tolerance = calibration_drift.FORECAST_NOMINAL, calibration_drift.FORECAST_TOLERANCE
    low, high = nominal - tolerance, nominal + tolerance
    if forecaster.drifted:
        found.append(
            Finding(
                key=f"{DRIFT_KEY}forecaster",
                component="forecaster",
                title=(
                    f"Forecaster calibration drift: 80 % intervals held "
                    f"{forecaster.coverage:.0%} of actual values"
                ),
                summary=(
                    f"First-week forecasts of {forecaster.series} series fitted in the last "
                    f"30 days were checked against {forecaster.points} actual busy-hour values; "
                    f"{forecaster.coverage:.0%} fell inside the 80 % interval (honest: "
                    f"{low:.0%}–{high:.0%}). "
                    "Breach probabilities are off by as much; check for a traffic change the "
                    "history does not show and force a refit with fresh backtests."
                ),
                severity="sev3",
            )
        )
    return found


def raise_heartbeat(
    session: Session,
    *,
    finding: Finding,
    now: datetime,
    config: NotifyConfig | None = None,
) -> Opened:
    """Open an incident for a finding unless one is open; a relapse is noted on it."""
    existing = lifecycle.find_open(session, dedup_key=finding.key)
    if existing is not None:
        if _state(session, existing.id) == "recovered":
            _mark(session, existing.id, "failing", f"Failing again: {finding.title}", now)
        return Opened(existing, False)
    incident = lifecycle.open_incident(
        session,
        title=finding.title,
        severity=finding.severity,
        origin="heartbeat",
        actor=audit.SYSTEM,
        now=now,
        summary=finding.summary,
        component=finding.component,
        team_id=_fallback_team(session, finding.component),
        dedup_key=finding.key,
        ai_detected=False,
        config=config,
    )
    _mark(session, incident.id, "failing", finding.title, now)
    return Opened(incident, True)


def _fallback_team(session: Session, component: str) -> int | None:
    """Who to page when nobody owns the component itself, else None (normal routing).

    A source that first delivered after the ownership map was drawn up (a new collector,
    a new drop-folder subfolder) has no owner yet; its silence must still page someone:
    the team that runs the scheduler, Beacon's own platform.
    """
    if component == DEFAULT_COMPONENT:
        return None
    try:
        oncall.find_ownership(session, component=component)
    except NotFound:
        try:
            return oncall.find_ownership(session, component=DEFAULT_COMPONENT).team_id
        except NotFound:
            return None  # no owner anywhere: opened and listed, nobody to page
    return None


def check_heartbeats(
    db: Database,
    *,
    now: datetime | None = None,
    expected: Mapping[str, int] | None = None,
    failure_threshold: int = FAILURE_THRESHOLD,
    config: NotifyConfig | None = None,
) -> HeartbeatReport:
    """Run every check, open or note incidents; each finding in its own transaction."""
    now = now or utcnow()
    report = HeartbeatReport()
    findings: list[Finding] = []
    checks = (
        ("stale sources", lambda s: stale_sources(s, now=now)),
        ("failing jobs", lambda s: failing_jobs(s, threshold=failure_threshold)),
        ("missed jobs", lambda s: missed_jobs(s, now=now, expected=expected or {})),
        ("calibration drift", lambda s: calibration_drifts(s, now=now)),
    )
    checks_failed = 0
    for name, check in checks:
        try:
            with db.session() as session:
                findings.extend(check(session))
        except Exception as exc:  # one broken check must not hide the others
            log.exception("heartbeat check %s failed", name)
            checks_failed += 1
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    failing_ids = {f.key.removeprefix(JOB_KEY) for f in findings if f.key.startswith(JOB_KEY)}
    # A failing job is also late (the scheduler backs off): one incident, not two.
    findings = [
        f
        for f in findings
        if not (f.key.startswith(MISSED_KEY) and f.key.removeprefix(MISSED_KEY) in failing_ids)
    ]
    for finding in findings:
        try:
            with db.session(write=True) as session:
                opened = raise_heartbeat(session, finding=finding, now=now, config=config)
                (report.opened if opened.created else report.ongoing).append(opened.incident.id)
        except Exception as exc:
            log.exception("heartbeat incident for %s failed", finding.key)
            report.errors.append(f"{finding.key}: {type(exc).__name__}: {exc}"[:300])
    if checks_failed == 0:
        # Only when every check ran is a missing finding evidence of recovery.
        covered = _covered_by(expected or {})
        report.recovered = _note_recoveries(db, {f.key for f in findings}, covered, now)
    return report


def _covered_by(expected: Mapping[str, int]) -> Callable[[str], bool]:
    # Keys these checks judge: others (raised by other checks) recover only by their own.
    def covered(key: str) -> bool:
        check, _, subject = key.removeprefix(KEY_PREFIX).partition(":")
        return check in ("stale", "job", "drift") or (check == "missed" and subject in expected)

    return covered


def _note_recoveries(
    db: Database, failing: set[str], covered: Callable[[str], bool], now: datetime
) -> list[int]:
    recovered = []
    with db.session() as session:
        open_rows = session.execute(
            select(Incident.id, Incident.dedup_key).where(
                Incident.origin == "heartbeat",
                Incident.status.in_(states.OPEN_STATES),
                Incident.dedup_key.like(f"{KEY_PREFIX}%"),
            )
        ).all()
    for incident_id, key in open_rows:
        if key in failing or not covered(key):
            continue
        try:
            with db.session(write=True) as session:
                if _state(session, incident_id) != "recovered":
                    _mark(session, incident_id, "recovered", "Heartbeat healthy again", now)
                    recovered.append(incident_id)
        except Exception:
            log.exception("noting recovery on incident %s failed", incident_id)
    return recovered


def _state(session: Session, incident_id: int) -> str | None:
    event = timeline.latest(session, incident_id=incident_id, kind="heartbeat")
    return None if event is None else (event.data or {}).get("state")


def _mark(session: Session, incident_id: int, state: str, text: str, now: datetime) -> None:
    timeline.add_event(
        session,
        incident_id=incident_id,
        kind="heartbeat",
        actor=audit.SYSTEM.name,
        text=text,
        data={"state": state},
        at=now,
    )
    audit.record(
        session,
        actor=audit.SYSTEM,
        action=f"incident.heartbeat.{state}",
        object_type="incident",
        object_id=incident_id,
        after={"state": state, "text": text},
    )


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
