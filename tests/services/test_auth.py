"""Users, roles, passwords and tokens: the rules and their audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services import audit, auth
from services.audit import SYSTEM
from services.db import Database
from services.db.models import ApiToken, AuditEvent, KioskToken, utcnow
from services.errors import Conflict, Forbidden, InvalidInput, NotFound


def _user(db: Database, name: str = "nina", role: str = "operator") -> None:
    with db.session(write=True) as session:
        auth.create_user(session, username=name, role=role, password="long-enough-1", actor=SYSTEM)


def test_password_is_stored_as_argon2_and_verifies(db: Database) -> None:
    _user(db)
    with db.session(write=True) as session:
        user = auth.get_user(session, username="nina")
        assert user.password_hash.startswith("$argon2id$")
        assert "long-enough-1" not in user.password_hash
        assert auth.authenticate(session, username="NINA ", password="long-enough-1", ip=None)
        assert auth.authenticate(session, username="nina", password="wrong-one-1", ip=None) is None


@pytest.mark.parametrize(
    ("username", "password", "role"),
    [
        ("x", "long-enough-1", "viewer"),
        ("Bad Name!", "long-enough-1", "viewer"),
        ("okname", "short", "viewer"),
        ("okname", " padded-password ", "viewer"),
        ("okname", "long-enough-1", "superuser"),
    ],
)
def test_create_user_rejects_bad_input(
    db: Database, username: str, password: str, role: str
) -> None:
    with db.session(write=True) as session, pytest.raises(InvalidInput):
        auth.create_user(session, username=username, role=role, password=password, actor=SYSTEM)


def test_duplicate_user_is_a_conflict(db: Database) -> None:
    _user(db)
    with db.session(write=True) as session, pytest.raises(Conflict):
        auth.create_user(
            session, username="nina", role="viewer", password="long-enough-2", actor=SYSTEM
        )


def test_last_admin_cannot_be_demoted_or_disabled(db: Database) -> None:
    with db.session(write=True) as session:
        with pytest.raises(Conflict):
            auth.set_role(session, username="admin", role="viewer", actor=SYSTEM)
        with pytest.raises(Conflict):
            auth.set_active(session, username="admin", active=False, actor=SYSTEM)
    _user(db, "second", "admin")
    with db.session(write=True) as session:
        auth.set_role(session, username="admin", role="engineer", actor=SYSTEM)


def test_user_cannot_disable_themself(db: Database) -> None:
    _user(db, "ops", "operator")
    with db.session(write=True) as session, pytest.raises(Forbidden):
        auth.set_active(session, username="ops", active=False, actor=audit.Actor("ops", "operator"))


def test_changes_bump_the_session_epoch_and_are_audited(db: Database) -> None:
    _user(db)
    with db.session(write=True) as session:
        before = auth.get_user(session, username="nina").session_epoch
        auth.set_role(session, username="nina", role="engineer", actor=SYSTEM)
        auth.set_password(session, username="nina", password="another-pass-1", actor=SYSTEM)
        auth.set_active(session, username="nina", active=False, actor=SYSTEM)
        assert auth.get_user(session, username="nina").session_epoch == before + 3
    with db.session() as session:
        actions = [e.action for e in audit.search(session, object_type="user")]
    assert actions[:4] == ["user.disable", "user.password", "user.role", "user.create"]


def test_unknown_user_is_not_found(db: Database) -> None:
    with db.session() as session, pytest.raises(NotFound):
        auth.get_user(session, username="ghost")


def test_api_token_is_hashed_scoped_and_revocable(db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_api_token(
            session, name="collector", role="operator", scopes=["ingest"], actor=SYSTEM
        )
    with db.session(write=True) as session:
        stored = session.get(ApiToken, issued.id)
        assert stored.token_hash == auth.token_digest(issued.plaintext)
        assert issued.plaintext not in (stored.token_hash, stored.token_prefix)
        assert stored.scopes == ["ingest"]
        assert auth.resolve_api_token(session, plaintext=issued.plaintext).id == issued.id
        auth.revoke_token(session, kind="api", token_id=issued.id, actor=SYSTEM)
        assert auth.resolve_api_token(session, plaintext=issued.plaintext) is None
        with pytest.raises(Conflict):
            auth.revoke_token(session, kind="api", token_id=issued.id, actor=SYSTEM)


def test_api_token_scopes_cannot_exceed_the_role(db: Database) -> None:
    with db.session(write=True) as session:
        with pytest.raises(InvalidInput):
            auth.create_api_token(session, name="x", role="viewer", scopes=["admin"], actor=SYSTEM)
        with pytest.raises(InvalidInput):
            auth.create_api_token(session, name="x", role="viewer", scopes=["bogus"], actor=SYSTEM)
        default = auth.create_api_token(session, name="x", role="engineer", actor=SYSTEM)
        assert set(session.get(ApiToken, default.id).scopes) == {"read", "ingest", "act"}


def test_expired_api_token_is_refused(db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_api_token(
            session,
            name="old",
            role="viewer",
            actor=SYSTEM,
            expires_at=utcnow() - timedelta(seconds=1),
        )
        assert auth.resolve_api_token(session, plaintext=issued.plaintext) is None


def test_kiosk_token_lifecycle(db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="wall", actor=SYSTEM)
        assert issued.plaintext.startswith("bkn_k_")
        assert auth.resolve_kiosk_token(session, plaintext=issued.plaintext).name == "wall"
        # An API-looking or garbled secret never resolves as a kiosk token.
        assert auth.resolve_kiosk_token(session, plaintext="bkn_a_" + issued.plaintext) is None
        found = auth.find_token_by_name(session, kind="kiosk", name="wall")
        auth.revoke_token(session, kind="kiosk", token_id=found.id, actor=SYSTEM)
        assert session.get(KioskToken, issued.id).revoked_at is not None
    with db.session() as session:
        logged = session.scalars(
            select(AuditEvent.action).where(AuditEvent.object_type == "kiosk_token")
        ).all()
    assert logged == ["token.kiosk.create", "token.kiosk.revoke"]
