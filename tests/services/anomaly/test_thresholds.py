"""Detection thresholds: effective values, overrides by engineers only, audited, panel rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services import audit
from services.anomaly import thresholds
from services.audit import Actor
from services.db import Database, connect, upgrade_to_head
from services.db.models import UseCase
from services.errors import Forbidden, InvalidInput
from services.seed import ensure_kpis

ENGINEER = Actor(name="erik", role="engineer")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
        session.add(
            UseCase(key="congestion_lb", name="Congestion load balancing", trigger="x", action="y")
        )
    yield database
    database.dispose()


def test_default_then_override_then_clear(db: Database) -> None:
    with db.session() as session:
        current = thresholds.effective_thresholds(session)
    assert current.for_kpi("prb_util_dl") == thresholds.DEFAULT_MIN_CONFIDENCE
    with db.session(write=True) as session:
        current = thresholds.set_threshold(
            session, scope="kpi", name="prb_util_dl", min_confidence=0.8, actor=ENGINEER
        )
        thresholds.set_threshold(
            session, scope="use_case", name="congestion_lb", min_confidence=0.9, actor=ENGINEER
        )
    assert current.for_kpi("prb_util_dl") == 0.8
    assert current.for_kpi("latency_ms") == thresholds.DEFAULT_MIN_CONFIDENCE
    with db.session() as session:
        rows = {(r.scope, r.name): r for r in thresholds.threshold_rows(session)}
        assert rows[("kpi", "prb_util_dl")].override == 0.8
        assert rows[("kpi", "latency_ms")].override is None
        assert rows[("kpi", "latency_ms")].effective == thresholds.DEFAULT_MIN_CONFIDENCE
        assert rows[("use_case", "congestion_lb")].effective == 0.9
        assert rows[("use_case", "congestion_lb")].label == "Congestion load balancing"
    with db.session(write=True) as session:
        cleared = thresholds.set_threshold(
            session, scope="kpi", name="prb_util_dl", min_confidence=None, actor=ENGINEER
        )
    assert cleared.for_kpi("prb_util_dl") == thresholds.DEFAULT_MIN_CONFIDENCE
    with db.session() as session:
        logged = audit.search(session, action="anomaly.threshold.set")
    assert [(e.object_id, e.before, e.after) for e in logged][::-1] == [
        ("prb_util_dl", {"min_confidence": None}, {"min_confidence": 0.8}),
        ("congestion_lb", {"min_confidence": None}, {"min_confidence": 0.9}),
        ("prb_util_dl", {"min_confidence": 0.8}, {"min_confidence": None}),
    ]


@pytest.mark.parametrize("role", ["viewer", "operator", "executive"])
def test_only_engineers_and_admins_change_thresholds(db: Database, role: str) -> None:
    with db.session(write=True) as session, pytest.raises(Forbidden):
        thresholds.set_threshold(
            session, scope="kpi", name="prb_util_dl", min_confidence=0.9, actor=Actor("x", role)
        )
    with db.session() as session:
        assert thresholds.effective_thresholds(session).kpi == {}
        assert not audit.search(session, action="anomaly.threshold.set")


def test_invalid_thresholds_are_refused(db: Database) -> None:
    admin = Actor(name="ada", role="admin")
    with db.session(write=True) as session:
        for scope, name, value in (("site", "x", 0.5), ("kpi", " ", 0.5), ("kpi", "x", 1.2)):
            with pytest.raises(InvalidInput):
                thresholds.set_threshold(
                    session, scope=scope, name=name, min_confidence=value, actor=admin
                )


def test_override_for_a_removed_kpi_still_shows(db: Database) -> None:
    with db.session(write=True) as session:
        thresholds.set_threshold(
            session, scope="kpi", name="retired_kpi", min_confidence=0.6, actor=ENGINEER
        )
    with db.session() as session:
        rows = {(r.scope, r.name): r for r in thresholds.threshold_rows(session)}
    assert rows[("kpi", "retired_kpi")].label == "(not in the catalogue)"
