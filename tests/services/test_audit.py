"""The audit trail: append, verify, and detect every kind of tampering, on both databases."""

from __future__ import annotations

import itertools

import pytest
from security.audit_chain_plugin import mark_tampered
from sqlalchemy import delete, text, update

from services import audit
from services.audit import Actor
from services.db import Database, connect, upgrade_to_head
from services.db.models import AuditEvent

ALICE = Actor(name="alice", role="engineer", ip="10.0.0.7")


@pytest.fixture
def tampered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The test breaks its chain on purpose: the whole-run chain check leaves it out."""
    mark_tampered(tmp_path)


@pytest.fixture
def trail_db(database_url: str) -> Database:
    db = connect(database_url)
    upgrade_to_head(db)
    with db.session(write=True) as session:
        for i in range(5):
            audit.record(
                session,
                actor=ALICE,
                action="threshold.change",
                object_type="kpi",
                object_id=f"prb_util_dl-{i}",
                before={"threshold": 80.0, "nested": {"b": 1, "a": [1, 2.5]}},
                after={"threshold": 85.0 + i, "note": "ünïcode ✓"},
            )
    yield db
    db.dispose()


def test_fresh_chain_verifies(trail_db: Database) -> None:
    with trail_db.session() as session:
        result = audit.verify(session)
        head = audit.head(session)
    assert result.ok
    assert result.checked == 5
    assert (result.head_seq, result.head_hash) == head


def test_events_are_chained_in_order(trail_db: Database) -> None:
    with trail_db.session() as session:
        events = session.query(AuditEvent).order_by(AuditEvent.seq).all()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS_HASH
    for earlier, later in itertools.pairwise(events):
        assert later.prev_hash == earlier.hash
    assert events[0].actor == "alice"
    assert events[0].ip == "10.0.0.7"


@pytest.mark.usefixtures("tampered")
def test_altered_content_names_the_event(trail_db: Database) -> None:
    with trail_db.session(write=True) as session:
        session.execute(
            update(AuditEvent).where(AuditEvent.seq == 3).values(after={"threshold": 99.0})
        )
    with trail_db.session() as session:
        result = audit.verify(session)
    assert not result.ok
    assert result.broken_seq == 3
    assert result.problem == "content altered"
    assert result.checked == 2


@pytest.mark.usefixtures("tampered")
def test_rehashed_forgery_breaks_the_next_link(trail_db: Database) -> None:
    """Recomputing the altered row's own hash is not enough: the next row still points back."""
    with trail_db.session(write=True) as session:
        event = session.query(AuditEvent).filter(AuditEvent.seq == 2).one()
        event.actor = "mallory"
        event.hash = audit.event_hash(event)
    with trail_db.session() as session:
        result = audit.verify(session)
    assert result.broken_seq == 3
    assert result.problem == "chain link broken"


@pytest.mark.usefixtures("tampered")
def test_removed_middle_event_is_detected(trail_db: Database) -> None:
    with trail_db.session(write=True) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 4))
    with trail_db.session() as session:
        result = audit.verify(session)
    assert not result.ok
    assert result.broken_seq == 4
    assert result.problem == "missing event"


@pytest.mark.usefixtures("tampered")
def test_truncated_tail_is_caught_by_an_anchor(trail_db: Database) -> None:
    with trail_db.session() as session:
        anchor = audit.head(session)
    with trail_db.session(write=True) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq >= 4))
    with trail_db.session() as session:
        assert audit.verify(session).ok  # a chain cannot see its own missing tail...
        result = audit.verify(session, anchor=anchor)  # ...an anchor kept elsewhere can
    assert not result.ok
    assert result.problem == "events after head removed"


def test_search_filters(trail_db: Database) -> None:
    with trail_db.session(write=True) as session:
        audit.record(session, actor=audit.SYSTEM, action="seed.kpis", after={"added": 3})
    with trail_db.session() as session:
        assert len(audit.search(session, actor="alice")) == 5
        assert len(audit.search(session, action="seed")) == 1
        assert len(audit.search(session, text_filter="PRB_UTIL_DL-3")) == 1
        values = audit.distinct_values(session)
    assert values["actors"] == ["alice", "system"]
    assert "kpi" in values["object_types"]


def test_concurrent_appends_never_fork(database_url: str) -> None:
    """Writers in parallel threads still produce one dense, verifiable chain."""
    from concurrent.futures import ThreadPoolExecutor

    db = connect(database_url)
    upgrade_to_head(db)

    def append(i: int) -> None:
        with db.session(write=True) as session:
            audit.record(session, actor=ALICE, action="parallel", object_id=i)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(append, range(40)))
    with db.session() as session:
        result = audit.verify(session)
        count = session.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    db.dispose()
    assert result.ok
    assert result.checked == count == 40
