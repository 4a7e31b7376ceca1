"""The audit chain holds across a broad run of real state changes, and tampering is named.

One database takes sign-ins, user administration, tokens, decisions, incidents, change
windows, maturity levels and refused attempts, all through HTTP; the chain then verifies
through the service, the API and `beacon audit verify`. Editing, re-hashing or removing one
row is then caught at exactly that row.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from audit_chain_plugin import broken_chains, mark_tampered
from click.testing import CliRunner
from dash import Dash
from flask.testing import FlaskClient
from security_support import (
    callback_body,
    database,
    kiosk_client,
    seed_recommendations,
    user_client,
)
from sqlalchemy import select, text
from testkit import (
    ADMIN_PASSWORD,
    drop_postgres_database,
    fresh_postgres_database,
    settings_for,
    skip_or_fail_without_postgres,
    well_formed_request,
)

from app import create_app
from services import audit
from services.cli import cli
from services.db.models import AuditEvent, UseCase, utcnow

# Families of actions the run must have recorded: the trail covers every kind of change.
EXPECTED_ACTIONS = {
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "auth.kiosk_open",
    "user.create",
    "user.role",
    "user.password",
    "user.disable",
    "token.api.create",
    "token.kiosk.create",
    "token.api.revoke",
    "access.denied",
    "incident.create",
    "incident.acknowledge",
    "incident.note",
    "incident.resolve",
    "recommendation.accepted",
    "recommendation.rejected",
    "disagreement.open",
    "change_window.created",
    "automation.maturity.set",
}


def _admin_change_users(app: Dash, admin: FlaskClient, values: dict, trigger: str) -> None:
    body = callback_body(app, "admin-user-message.children", values, trigger=trigger)
    response = admin.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:300]


def drive_state_changes(app: Dash) -> set[str]:
    """Many kinds of audited changes through the console, the API and the kiosk entry."""
    db = database(app)
    recommendations = seed_recommendations(db)
    admin = app.server.test_client()
    assert (
        admin.post("/login", data={"username": "admin", "password": "wrong-pass-1"}).status_code
        == 401
    )
    assert (
        admin.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD}).status_code
        == 303
    )
    _admin_change_users(
        app,
        admin,
        {
            "admin-create-user.n_clicks": 1,
            "admin-new-username.value": "chain-op",
            "admin-new-role.value": "operator",
            "admin-new-password.value": "chain-op-pass-1",
        },
        "admin-create-user.n_clicks",
    )
    selected = {"admin-users.selectedRows": [{"username": "chain-op"}]}
    _admin_change_users(
        app,
        admin,
        {**selected, "admin-apply-role.n_clicks": 1, "admin-user-role.value": "engineer"},
        "admin-apply-role.n_clicks",
    )
    _admin_change_users(
        app,
        admin,
        {
            **selected,
            "admin-apply-password.n_clicks": 1,
            "admin-reset-password.value": "chain-op-pass-2",
        },
        "admin-apply-password.n_clicks",
    )
    engineer = app.server.test_client()
    assert (
        engineer.post(
            "/login", data={"username": "chain-op", "password": "chain-op-pass-2"}
        ).status_code
        == 303
    )

    api = admin.post("/api/v1/tokens/api", json={"name": "chain-ops", "role": "operator"})
    assert api.status_code == 201
    bearer = {"Authorization": f"Bearer {api.get_json()['token']}"}
    kiosk = kiosk_client(app, "chain-wall")

    incident = app.server.test_client().post(
        "/api/v1/incidents", json={"title": "Chain outage", "severity": "sev2"}, headers=bearer
    )
    assert incident.status_code == 201, incident.data[:300]
    number = incident.get_json()["id"]
    for step, body in (
        ("acknowledge", None),
        ("notes", {"text": "Fibre crew on site."}),
        ("resolve", {"note": "Spliced; traffic restored."}),
    ):
        response = engineer.post(f"/api/v1/incidents/{number}/{step}", json=body or {})
        assert response.status_code in (200, 201), (step, response.data[:300])

    decided = engineer.post(
        f"/api/v1/recommendations/{recommendations[0]}/decision",
        json={"verdict": "reject", "reason_code": "data_issue", "note": "PM gap last night."},
    )
    assert decided.status_code == 201, decided.data[:300]
    accepted = engineer.post(
        f"/api/v1/recommendations/{recommendations[1]}/decision",
        json={"verdict": "accept", "reason_code": "other", "note": "Plan it."},
    )
    assert accepted.status_code == 201, accepted.data[:300]
    start = utcnow() + timedelta(days=1)
    window = engineer.post(
        "/api/v1/change-windows",
        json={
            "title": "Core upgrade",
            "kind": "maintenance",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=4)).isoformat(),
        },
    )
    assert window.status_code == 201, window.data[:300]
    with db.session() as session:
        case_id = session.scalars(select(UseCase.id).order_by(UseCase.id)).first()
    level = admin.post(
        f"/api/v1/use-cases/{case_id}/level", json={"level": "L1", "reason": "After review."}
    )
    assert level.status_code == 200, level.data[:300]

    # Refused attempts are part of the trail too.
    viewer = user_client(app, "chain-viewer", "viewer")
    output = next(o for o, p in app.server.extensions["beacon"].callbacks.items() if p.mutates)
    crafted = well_formed_request(output, app.callback_map[output])
    assert viewer.post("/_dash-update-component", json=crafted).status_code == 403
    assert kiosk.post("/_dash-update-component", json=crafted).status_code == 403
    assert (
        kiosk.post("/api/v1/incidents", json={"title": "x", "severity": "sev3"}).status_code == 403
    )

    assert admin.delete(f"/api/v1/tokens/api/{api.get_json()['id']}").status_code == 200
    _admin_change_users(
        app, admin, {**selected, "admin-toggle-active.n_clicks": 1}, "admin-toggle-active.n_clicks"
    )
    assert engineer.post("/logout").status_code == 303  # disabled: the session is already gone
    assert admin.post("/logout").status_code == 303
    with db.session() as session:
        return {e.action for e in audit.search(session, limit=10_000)}


def _assert_chain_verifies(app: Dash, data_dir: Path, database_url: str | None = None) -> int:
    db = database(app)
    with db.session() as session:
        result = audit.verify(session)
        count = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert result.ok, (result.broken_seq, result.problem)
    assert result.checked == result.head_seq == count
    auditor = user_client(app, "chain-auditor", "engineer")
    body = auditor.get("/api/v1/audit/verify").get_json()
    assert body["ok"] is True, body
    env = {"BEACON_DATA_DIR": str(data_dir), "BEACON_SIMULATOR": "0"}
    if database_url:
        env["BEACON_DATABASE_URL"] = database_url
    cli_result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert cli_result.exit_code == 0, cli_result.output
    assert "audit chain intact" in cli_result.output
    return result.checked


@pytest.fixture
def chain_app(tmp_path: Path) -> Iterator[Dash]:
    """A fresh database (not the template): every event from the first migration is here."""
    dash_app = create_app(settings_for(tmp_path))
    yield dash_app
    database(dash_app).dispose()


def test_chain_verifies_after_a_broad_run_of_changes(chain_app: Dash, tmp_path: Path) -> None:
    actions = drive_state_changes(chain_app)
    missing = EXPECTED_ACTIONS - actions
    assert not missing, f"these changes were not audited: {sorted(missing)}"
    checked = _assert_chain_verifies(chain_app, tmp_path)
    assert checked >= 30


@pytest.mark.postgres
def test_chain_verifies_after_a_broad_run_on_postgres(tmp_path: Path, worker_id: str) -> None:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_chain_{worker_id}")
    dash_app = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=url))
    try:
        actions = drive_state_changes(dash_app)
        assert not EXPECTED_ACTIONS - actions
        assert _assert_chain_verifies(dash_app, tmp_path, url) >= 30
    finally:
        database(dash_app).dispose()
        drop_postgres_database(url)


# --- tampering ------------------------------------------------------------------------------


def _verify(app: Dash) -> audit.VerifyResult:
    with database(app).session() as session:
        return audit.verify(session)


def _cli_verify(data_dir: Path) -> tuple[int, str]:
    env = {"BEACON_DATA_DIR": str(data_dir), "BEACON_SIMULATOR": "0"}
    result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def driven_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir after the broad run, built once; each tampering test edits its own copy."""
    data_dir = tmp_path_factory.mktemp("driven")
    dash_app = create_app(settings_for(data_dir))
    drive_state_changes(dash_app)
    db = database(dash_app)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return data_dir


@pytest.fixture
def run_app(driven_dir: Path, tmp_path: Path) -> Iterator[Dash]:
    for name in ("beacon.db", "secret_key"):
        shutil.copy(driven_dir / name, tmp_path / name)
    mark_tampered(tmp_path)  # the run-wide chain check knows these are broken on purpose
    dash_app = create_app(settings_for(tmp_path))
    assert _verify(dash_app).ok
    yield dash_app
    database(dash_app).dispose()


def _middle_seq(app: Dash) -> int:
    with database(app).session() as session:
        return audit.head(session)[0] // 2


def test_editing_one_row_is_named(run_app: Dash, tmp_path: Path) -> None:
    target = _middle_seq(run_app)
    with database(run_app).session(write=True) as session:
        session.execute(
            text("UPDATE audit_events SET actor = 'someone-else' WHERE seq = :seq"), {"seq": target}
        )
    result = _verify(run_app)
    assert not result.ok
    assert (result.broken_seq, result.problem) == (target, "content altered")
    assert result.checked == target - 1
    code, output = _cli_verify(tmp_path)
    assert code == 1
    assert f"audit chain broken at event #{target}: content altered" in output
    auditor = user_client(run_app, "tamper-auditor", "engineer")
    body = auditor.get("/api/v1/audit/verify").get_json()
    assert body["ok"] is False
    assert body["broken_seq"] == target


def test_rehashing_an_edited_row_breaks_the_next_link(run_app: Dash) -> None:
    """An editor who recomputes the edited row's own hash is caught by its successor."""
    target = _middle_seq(run_app)
    with database(run_app).session(write=True) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.seq == target)).one()
        event.after = {"forged": True}
        event.hash = audit.event_hash(event)
    result = _verify(run_app)
    assert (result.ok, result.broken_seq, result.problem) == (
        False,
        target + 1,
        "chain link broken",
    )


def test_removing_one_row_is_named(run_app: Dash) -> None:
    target = _middle_seq(run_app)
    with database(run_app).session(write=True) as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": target})
    result = _verify(run_app)
    assert (result.ok, result.broken_seq, result.problem) == (False, target, "missing event")


def test_removing_the_newest_rows_is_caught_with_an_anchor(run_app: Dash) -> None:
    with database(run_app).session() as session:
        anchor = audit.head(session)
    with database(run_app).session(write=True) as session:
        session.execute(text("DELETE FROM audit_events WHERE seq >= :seq"), {"seq": anchor[0] - 2})
    assert _verify(run_app).ok  # the chain alone cannot see a cut at the end …
    with database(run_app).session() as session:
        result = audit.verify(session, anchor=anchor)
    assert (result.ok, result.problem) == (False, "events after head removed")  # … an anchor can


def test_run_wide_check_names_unmarked_broken_chains(driven_dir: Path, tmp_path: Path) -> None:
    """What the run-wide plugin reports: broken chains, except where a test declared them."""
    import sqlite3

    mark_tampered(tmp_path)  # for the run-wide check; the scan below starts one level down
    scan = tmp_path / "scan"
    for name in ("clean", "broken", "declared"):
        (scan / name).mkdir(parents=True)
        shutil.copy(driven_dir / "beacon.db", scan / name / "beacon.db")
    (scan / "notes.db").write_text("not a database")
    for name in ("broken", "declared"):
        with sqlite3.connect(scan / name / "beacon.db") as conn:
            conn.execute("UPDATE audit_events SET actor = 'x' WHERE seq = 5")
    mark_tampered(scan / "declared")
    assert broken_chains(scan) == ["broken/beacon.db: event #5: content altered"]
