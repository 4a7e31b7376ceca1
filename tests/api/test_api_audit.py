"""Audit trail search and chain verification over the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from security.audit_chain_plugin import mark_tampered
from sqlalchemy import func, select, update

from services import audit
from services.audit import Actor
from services.db.models import AuditEvent, utcnow


@pytest.fixture
def reader(as_role) -> dict[str, str]:
    """An engineer's token, created before `events` so the known events are the newest."""
    return as_role("engineer")


@pytest.fixture
def events(db, reader) -> None:
    """A few known events after the bootstrap's own."""
    alice = Actor(name="alice", role="engineer")
    bob = Actor(name="bob", role="operator")
    with db.session(write=True) as session:
        audit.record(session, actor=alice, action="threshold.set", object_type="kpi", object_id=7)
        audit.record(session, actor=bob, action="anomaly.ack", object_type="anomaly", object_id=1)
        audit.record(session, actor=bob, action="anomaly.label", object_type="anomaly", object_id=1)
        audit.record(
            session, actor=alice, action="threshold.reset", object_type="kpi", after={"x": 1}
        )


def _items(client, headers, query: str = "") -> dict:
    response = client.get(f"/api/v1/audit{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_audit_is_newest_first_with_the_chain(client, db, events, reader) -> None:
    body = _items(client, reader)
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(AuditEvent))
    assert body["total"] == total
    seqs = [item["seq"] for item in body["items"]]
    assert seqs == sorted(seqs, reverse=True)
    newest = body["items"][0]
    assert newest["action"] == "threshold.reset"
    assert newest["actor"] == "alice"
    assert newest["actor_role"] == "engineer"
    assert newest["after"] == {"x": 1}
    assert newest["at"].endswith("Z")
    assert newest["prev_hash"] == body["items"][1]["hash"]


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ("?actor=bob", ["anomaly.label", "anomaly.ack"]),
        ("?action=threshold.", ["threshold.reset", "threshold.set"]),
        ("?action=anomaly.ack", ["anomaly.ack"]),
        ("?object_type=kpi&actor=alice", ["threshold.reset", "threshold.set"]),
        ("?actor=nobody", []),
    ],
)
def test_audit_filters(client, events, as_role, query, actions) -> None:
    body = _items(client, as_role("admin"), query)
    assert [item["action"] for item in body["items"]] == actions
    assert body["total"] == len(actions)


def test_audit_time_window(client, db, events, as_role, tmp_path) -> None:
    mark_tampered(tmp_path)  # moving an event's time breaks the chain on purpose
    headers = as_role("engineer")
    with db.session(write=True) as session:
        # Move one event two hours back: the window must select by event time.
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == "threshold.set")
            .values(at=utcnow() - timedelta(hours=2))
        )
    cutoff = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = _items(client, headers, f"?actor=alice&since={cutoff}Z")
    assert [item["action"] for item in recent["items"]] == ["threshold.reset"]
    older = _items(client, headers, f"?actor=alice&until={cutoff}")  # no zone: UTC
    assert [item["action"] for item in older["items"]] == ["threshold.set"]
    offset = _items(client, headers, f"?actor=alice&since={cutoff}%2B02:00")
    assert [item["action"] for item in offset["items"]] == ["threshold.reset", "threshold.set"]


def test_audit_pagination(client, events, as_role) -> None:
    headers = as_role("engineer")
    everything = _items(client, headers, "?limit=1000")["items"]
    first = _items(client, headers, "?limit=2")
    second = _items(client, headers, "?limit=2&offset=2")
    assert first["items"] + second["items"] == everything[:4]
    assert first["total"] == second["total"] == len(everything)


def test_verify_reports_an_intact_chain(client, db, events, as_role) -> None:
    body = client.get("/api/v1/audit/verify", headers=as_role("engineer")).get_json()
    with db.session() as session:
        head_seq, head_hash = audit.head(session)
    assert body == {
        "ok": True,
        "checked": head_seq,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "broken_seq": None,
        "problem": None,
    }


def test_verify_names_the_altered_event(client, db, events, as_role, tmp_path) -> None:
    mark_tampered(tmp_path)  # the chain is broken on purpose
    with db.session(write=True) as session:
        target = session.scalar(select(AuditEvent.seq).where(AuditEvent.action == "anomaly.ack"))
        session.execute(update(AuditEvent).where(AuditEvent.seq == target).values(actor="mallory"))
    body = client.get("/api/v1/audit/verify", headers=as_role("admin")).get_json()
    assert body["ok"] is False
    assert body["broken_seq"] == target
    assert body["problem"] == "content altered"
    assert body["checked"] == target - 1


def test_reading_the_audit_changes_nothing(client, db, events, as_role) -> None:
    headers = as_role("engineer")
    with db.session() as session:
        before = audit.head(session)
    client.get("/api/v1/audit", headers=headers)
    client.get("/api/v1/audit/verify", headers=headers)
    with db.session() as session:
        assert audit.head(session) == before
