"""Admin page callbacks: user and token changes, refusals, and the audit they leave."""

from __future__ import annotations

import importlib

import pytest
from dash import Dash
from pages_support import run_callback, text_of

from services import audit, auth
from services.db import Database
from services.errors import Forbidden


@pytest.fixture
def admin_page(app: Dash):  # type: ignore[no-untyped-def]
    # Dash imported the page module when the app was created; take that very module.
    return importlib.import_module("pages.admin")


def test_admin_creates_a_user_and_it_is_audited(admin_page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    with signed_in("admin"):
        message, rows, cleared, _ = run_callback(
            admin_page.change_users,
            1,
            None,
            None,
            None,
            "carol",
            "Carol C",
            "operator",
            "carol-pass-123",
            None,
            None,
            None,
            triggered="admin-create-user.n_clicks",
        )
    assert "User carol created with role operator" in text_of(message)
    assert any(r["username"] == "carol" and r["role"] == "operator" for r in rows)
    assert cleared == ""  # the password field is emptied
    with db.session() as session:
        event = audit.search(session, action="user.create")[0]
    assert event.after["username"] == "carol"
    assert event.actor == "page-admin"


def test_bad_input_shows_a_message_and_changes_nothing(admin_page, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    with signed_in("admin"):
        message, *_ = run_callback(
            admin_page.change_users,
            1,
            None,
            None,
            None,
            "dave",
            "",
            "operator",
            "short",
            None,
            None,
            None,
            triggered="admin-create-user.n_clicks",
        )
    assert "at least 10 characters" in text_of(message)
    with db.session() as session:
        assert "dave" not in [u.username for u in auth.list_users(session)]


def test_role_change_of_selected_user(admin_page, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    from testkit import add_user

    add_user(db, "eve", "viewer")
    with signed_in("admin"):
        message, rows, *_ = run_callback(
            admin_page.change_users,
            None,
            1,
            None,
            None,
            None,
            None,
            None,
            None,
            [{"username": "eve", "role": "viewer"}],
            "engineer",
            None,
            triggered="admin-apply-role.n_clicks",
        )
    assert "eve is now engineer" in text_of(message)
    assert next(r for r in rows if r["username"] == "eve")["role"] == "engineer"


def test_kiosk_link_is_shown_once_then_listed_without_secret(admin_page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("admin"):
        message, rows = run_callback(
            admin_page.change_kiosk_tokens,
            1,
            None,
            "NOC wall 2",
            None,
            triggered="admin-create-kiosk.n_clicks",
        )
    shown = text_of(message)
    assert "/kiosk/bkn_k_" in shown
    secret = shown.split("/kiosk/")[1].strip()
    listed = next(r for r in rows if r["name"] == "NOC wall 2")
    assert secret not in str(listed)
    assert listed["status"] == "active"


def test_api_token_creation_respects_role_scopes(admin_page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("admin"):
        refused, _ = run_callback(
            admin_page.change_api_tokens,
            1,
            None,
            "bi-export",
            "viewer",
            ["read", "admin"],
            30,
            None,
            triggered="admin-create-api.n_clicks",
        )
        created, rows = run_callback(
            admin_page.change_api_tokens,
            1,
            None,
            "bi-export",
            "viewer",
            ["read"],
            30,
            None,
            triggered="admin-create-api.n_clicks",
        )
    assert "cannot hold scope" in text_of(refused)
    assert "bkn_a_" in text_of(created)
    assert next(r for r in rows if r["name"] == "bi-export")["scopes"] == "read"


@pytest.mark.parametrize("role", ["viewer", "operator", "engineer", "executive"])
def test_non_admins_are_refused_inside_the_callback(admin_page, signed_in, role: str) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role), pytest.raises(Forbidden):
        run_callback(
            admin_page.change_users,
            1,
            None,
            None,
            None,
            "x",
            "",
            "admin",
            "xxxxxxxxxxxx",
            None,
            None,
            None,
            triggered="admin-create-user.n_clicks",
        )
