"""Scheduled jobs that keep humans in charge: paging, delivery, heartbeats, automation, reviews."""

from __future__ import annotations

from dataclasses import asdict

from services.anomaly import service as anomaly_service
from services.automation import execution, maturity, verification
from services.config import Settings
from services.db import Database
from services.db.models import utcnow
from services.decisions import decide, demo, recommend
from services.decisions.escalation import escalate_overdue
from services.forecast import rollup
from services.forecast import service as forecast_service
from services.heartbeats import JOB_EVERY_S as HEARTBEAT_EVERY_S
from services.heartbeats import JOB_ID as HEARTBEAT_JOB
from services.heartbeats import check_heartbeats
from services.incidents import escalation
from services.notify import deliver
from services.notify.config import NotifyConfig, notify_config
from services.scheduler import JobResult, JobSpec

RECOMMEND_JOB = "decisions.recommend"
RECOMMEND_EVERY_S = 300
EXPIRE_JOB = "decisions.expire"
EXPIRE_EVERY_S = 300
REVIEW_SLA_JOB = "disagreements.escalate"
REVIEW_SLA_EVERY_S = 900
VERIFY_JOB = "automation.verify"
VERIFY_EVERY_S = 60
# Every refused automatic attempt is audited, so automatic execution runs at a calm pace.
AUTO_EXECUTE_JOB = "automation.auto_execute"
AUTO_EXECUTE_EVERY_S = 900
PROMOTIONS_JOB = "automation.promotions"
PROMOTIONS_EVERY_S = 86_400


def trust_jobs(db: Database, settings: Settings) -> list[JobSpec]:
    """Incident paging, notification delivery, AI heartbeats, recommendations and automation."""
    config = notify_config(settings)
    expected = {
        anomaly_service.JOB_ID: anomaly_service.JOB_EVERY_S,
        forecast_service.JOB_ID: settings.forecast_every_s,
        rollup.JOB_ID: rollup.JOB_EVERY_S,
    }
    return [
        JobSpec(
            escalation.JOB_ID,
            lambda: page_due(db, config),
            escalation.JOB_EVERY_S,
            "Escalation: page the next step of unacknowledged incidents, remind after ack",
        ),
        JobSpec(
            deliver.JOB_ID,
            lambda: deliver_notifications(db, config),
            deliver.JOB_EVERY_S,
            "Deliver queued notifications (webhook, e-mail, log) with retries",
        ),
        JobSpec(
            HEARTBEAT_JOB,
            lambda: heartbeats(db, config, expected),
            HEARTBEAT_EVERY_S,
            "Heartbeats of the AI itself: stale sources, failing or missed jobs open incidents",
        ),
        JobSpec(
            RECOMMEND_JOB,
            lambda: raise_recommendations(db, simulated=settings.simulator),
            RECOMMEND_EVERY_S,
            "Raise recommendations from new anomaly episodes and capacity risks",
            run_at_start=True,
        ),
        JobSpec(
            EXPIRE_JOB,
            lambda: _ids(decide.expire_job(db, now=utcnow())),
            EXPIRE_EVERY_S,
            "Expire recommendations nobody decided in time",
        ),
        JobSpec(
            REVIEW_SLA_JOB,
            lambda: review_sla(db),
            REVIEW_SLA_EVERY_S,
            "Escalate disagreement cases past their review SLA",
        ),
        JobSpec(
            VERIFY_JOB,
            lambda: _ids(verification.verify_due(db, now=utcnow())),
            VERIFY_EVERY_S,
            "Verify executed actions against later KPIs; roll back or recommend rollback",
        ),
        JobSpec(
            AUTO_EXECUTE_JOB,
            lambda: _ids(execution.run_automatic(db, now=utcnow())),
            AUTO_EXECUTE_EVERY_S,
            "Run open recommendations of L3+ use cases whose guardrails allow it",
        ),
        JobSpec(
            PROMOTIONS_JOB,
            lambda: propose_promotions(db),
            PROMOTIONS_EVERY_S,
            "Propose maturity promotions whose criteria hold (an admin approves)",
        ),
    ]


def page_due(db: Database, config: NotifyConfig) -> JobResult:
    report = escalation.run_escalations(db, config=config)
    return JobResult(rows=report.paged + report.reminded, detail=asdict(report))


def deliver_notifications(db: Database, config: NotifyConfig) -> JobResult:
    report = deliver.deliver_due(db, config=config)
    return JobResult(rows=report.delivered, detail=asdict(report))


def heartbeats(db: Database, config: NotifyConfig, expected: dict[str, int]) -> JobResult:
    report = check_heartbeats(db, expected=expected, config=config)
    return JobResult(rows=len(report.opened), detail=asdict(report))


def raise_recommendations(db: Database, *, simulated: bool) -> JobResult:
    now = utcnow()
    if simulated:
        # The demo keeps a few recommendations open so there is always something to decide.
        with db.session(write=True) as session:
            raised = [r.id for r in demo.raise_live(session, now=now)]
    else:
        raised = recommend.raise_job(db, now=now)
    return _ids(raised)


def review_sla(db: Database) -> JobResult:
    run = escalate_overdue(db, now=utcnow())
    return JobResult(rows=len(run.escalated), detail=asdict(run))


def propose_promotions(db: Database) -> JobResult:
    with db.session(write=True) as session:
        changes = maturity.propose_promotions(session, now=utcnow())
        return _ids([c.id for c in changes])


def _ids(ids: list[int]) -> JobResult:
    return JobResult(rows=len(ids), detail={"ids": ids[:50]})
