"""A source that goes silent: stale banner on every page, a heartbeat incident paged to its owner.

Driven through the scheduler's own jobs (freshness, heartbeats, escalation, delivery) as
they run in production, for a source that first delivered after the on-call ownership map
was drawn up, so nobody owns it by name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import pytest
from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import select
from testkit import well_formed_request

from components.shell import SHELL_FRESHNESS
from services.config import Settings
from services.db import Database
from services.db.models import Incident, Notification, Source, Team, utcnow
from services.ingest.pipeline import ingest_records
from services.jobs import standard_jobs
from services.oncall import resolve
from services.oncall.demo import seed_demo_oncall
from services.scheduler import run_recorded

pytestmark = pytest.mark.xdist_group("faults")

SOURCE = "collector-east"


def run_job(db: Database, settings: Settings, job_id: str) -> dict:
    """One run of a scheduled job, recorded exactly as the scheduler records it."""
    (job,) = [j for j in standard_jobs(db, settings) if j.id == job_id]
    run = run_recorded(db, job.id, job.func)
    assert run is not None
    assert run.status == "ok", run.error
    return run.detail


def deliver(db: Database, at: object) -> None:
    frame = pd.DataFrame(
        {
            "dn": ["SubNetwork=East,ManagedElement=E1,EUtranCellFDD=C1"],
            "kpi": ["prb_util_dl"],
            "period_end": [pd.Timestamp(at).floor("15min")],
            "value": ["42"],
        }
    )
    ingest_records(db, source=SOURCE, records=frame, received_at=at)  # type: ignore[arg-type]


def shell_refresh(app: Dash, client: FlaskClient) -> dict:
    output = next(o for o in app.callback_map if SHELL_FRESHNESS in o)
    response = client.post(
        "/_dash-update-component", json=well_formed_request(output, app.callback_map[output])
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()["response"]


def test_silent_source_raises_the_banner_and_pages_the_platform_owner(
    app: Dash, db: Database, settings: Settings, client_as: Callable[[str], FlaskClient]
) -> None:
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())
    # A new collector starts delivering, then goes silent for two hours.
    deliver(db, utcnow() - timedelta(hours=2))
    viewer = client_as("viewer")
    assert run_job(db, settings, "health.freshness")["changes"]
    with db.session() as session:
        assert session.scalar(select(Source.status).where(Source.name == SOURCE)) == "stale"

    shell = shell_refresh(app, viewer)
    banner = shell["shell-stale-banner"]
    assert "hidden" not in banner["className"]
    assert f"{SOURCE} silent for 2 h" in banner["children"]
    assert shell["shell-freshness"]["children"] == f"Stale: {SOURCE}"

    opened = run_job(db, settings, "heartbeats.check")["opened"]
    assert len(opened) == 1
    with db.session() as session:
        incident = session.get(Incident, opened[0])
        assert incident is not None
        assert SOURCE in incident.title
        assert incident.origin == "heartbeat"
        assert incident.dedup_key == f"heartbeat:stale:{SOURCE}"
        # Nobody owns the new source by name: its silence goes to whoever runs the scheduler.
        with pytest.raises(Exception, match="no team owns"):
            resolve.find_ownership(session, component=f"ingest:{SOURCE}")
        platform = resolve.find_ownership(session, component="scheduler")
        assert incident.team_id == platform.team_id
        assert session.get(Team, platform.team_id) is not None
        on_call = resolve.oncall_for(session, component="scheduler", now=utcnow())

    paged = run_job(db, settings, "incidents.escalate")
    assert paged["paged"] >= 1
    run_job(db, settings, "notify.deliver")
    with db.session() as session:
        pages = session.scalars(
            select(Notification).where(Notification.incident_id == incident.id)
        ).all()
    assert pages, "nobody was paged"
    assert all(p.status == "delivered" for p in pages)
    person = on_call.as_dict()["person"]
    assert person is not None
    assert any(str(person["name"]) in str(p.payload) for p in pages), [p.payload for p in pages]

    # The source delivers again: the banner goes, the incident notes the recovery.
    deliver(db, utcnow())
    run_job(db, settings, "health.freshness")
    assert "hidden" in shell_refresh(app, viewer)["shell-stale-banner"]["className"]
    assert run_job(db, settings, "heartbeats.check")["recovered"] == [incident.id]
