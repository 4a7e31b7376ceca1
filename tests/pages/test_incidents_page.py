"""Incidents list page: filters run in the database; operators and up open incidents."""

from __future__ import annotations

import importlib

import pytest
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select

from services import audit
from services.db import Database
from services.db.models import Incident, utcnow
from services.errors import Forbidden
from services.incidents import lifecycle
from services.oncall.demo import seed_demo_oncall


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.incidents")


@pytest.fixture
def incidents(db: Database) -> dict[str, int]:
    """Three incidents: an open RAN one the AI detected, an open transport one, a resolved one."""
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())
        ran = lifecycle.create_manual(
            session, title="Cell outage North", severity="sev1", actor=audit.SYSTEM, domain="RAN"
        )
        ran.ai_detected = True
        transport = lifecycle.create_manual(
            session,
            title="Backhaul flaps",
            severity="sev3",
            actor=audit.SYSTEM,
            domain="Transport",
            external_ticket="NOC-881",
        )
        core = lifecycle.create_manual(
            session, title="Core latency", severity="sev2", actor=audit.SYSTEM, domain="Core"
        )
        lifecycle.resolve(session, incident_id=core.id, actor=audit.SYSTEM, note="tuned")
        return {"ran": ran.id, "transport": transport.id, "core": core.id}


def listed(page, **state):  # type: ignore[no-untyped-def]
    values = {
        page.STATUS: None,
        page.SEVERITY: None,
        page.ORIGIN: None,
        page.DOMAIN: None,
        page.TEAM: None,
        page.AI: "any",
        page.OPEN_ONLY: [],
        page.TEXT: None,
    }
    values.update({getattr(page, k.upper()): v for k, v in state.items()})
    rows, shown, empty = run_callback(page.load_list, *values.values(), None, 0)
    return [int(r["id"]) for r in rows], shown, empty


def test_list_filters(page, signed_in, incidents) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        ids, shown, empty = listed(page)
        assert ids == [incidents["core"], incidents["transport"], incidents["ran"]]
        assert shown == "3 incident(s)"
        assert empty is None
        assert listed(page, open_only=["open"])[0] == [incidents["transport"], incidents["ran"]]
        assert listed(page, status=["resolved"])[0] == [incidents["core"]]
        assert listed(page, severity=["sev1", "sev2"])[0] == [incidents["core"], incidents["ran"]]
        assert listed(page, origin=["heartbeat"])[0] == []
        assert listed(page, domain="transport")[0] == [incidents["transport"]]
        assert listed(page, ai="yes")[0] == [incidents["ran"]]
        assert listed(page, ai="no")[0] == [incidents["core"], incidents["transport"]]
        assert listed(page, text="noc-881")[0] == [incidents["transport"]]
        domains, teams = run_callback(page.load_options, None)
        team = next(t["value"] for t in teams if t["label"] == "Core")
        assert listed(page, team=team)[0] == [incidents["core"]]
        assert {"label": "Transport", "value": "Transport"} in domains
        none, _, empty = listed(page, open_only=["open"], severity=["sev4"])
        assert none == []
        assert "Untick “open only”" in text_of(empty)
        # Crafted values are ignored or refused with a message, never a crash.
        _, _, crafted = listed(page, status=["closed"])
        assert "Unknown filter value" in text_of(crafted)
        assert listed(page, team="1; drop table", ai=7)[0]
        rows, *_ = run_callback(page.load_list, *[None] * 8, None, 0)
        row = next(r for r in rows if r["id"] == str(incidents["ran"]))
    assert row["link"] == f"[#{incidents['ran']}](/incidents/{incidents['ran']})"
    assert row["team"] == "RAN North operations"
    assert row["ai"] == "detected · not judged"


def test_operator_opens_an_incident_routed_to_the_domain(
    page, signed_in, db: Database, incidents
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        layout = page.layout()
        assert "New incident" in text_of(layout)
        message, done, title = run_callback(
            page.open_incident, 1, "Packet loss Core", "sev2", "Core", "lossy", "CHG-7",
        )  # fmt: skip
        assert "opened" in text_of(message)
        assert done
        assert title == ""
        refused, *_ = run_callback(page.open_incident, 1, "  ", "sev2", None, None, None)
        assert "title" in text_of(refused).lower()
        bad, *_ = run_callback(page.open_incident, 1, "x", "sev9", None, None, None)
        assert "Choose a severity" in text_of(bad)
    with db.session() as session:
        incident = session.scalars(
            select(Incident).where(Incident.title == "Packet loss Core")
        ).one()
        assert incident.created_by == "page-operator"
        assert incident.origin == "manual"
        assert incident.team_id is not None
        assert incident.external_ticket == "CHG-7"


@pytest.mark.parametrize("role", ["viewer", "executive"])
def test_read_only_roles_cannot_open_incidents(page, signed_in, db: Database, role) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role):
        assert "New incident" not in text_of(page.layout())
        with pytest.raises(Forbidden):
            run_callback(page.open_incident, 1, "crafted", "sev1", None, None, None)
    with db.session() as session:
        assert session.scalar(select(Incident.id)) is None
