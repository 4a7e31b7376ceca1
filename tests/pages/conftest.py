"""Run page callbacks directly, as a signed-in principal, inside a request context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dash import Dash
from flask_login import login_user
from testkit import add_user

from services import auth
from services.db import Database
from services.web.principal import user_principal

SignedIn = Callable[[str], Any]


@pytest.fixture
def signed_in(app: Dash, db: Database) -> Callable[[str], Any]:
    """`with signed_in("engineer"):` runs code as a fresh user of that role."""

    @contextmanager
    def as_role(role: str) -> Iterator[None]:
        username = f"page-{role}"
        with db.session() as session:
            exists = any(u.username == username for u in auth.list_users(session))
        if not exists:
            add_user(db, username, role)
        with db.session() as session:
            user = auth.get_user(session, username=username)
            principal = user_principal(
                user_id=user.id,
                epoch=user.session_epoch,
                username=user.username,
                role=user.role,
                display=user.display_name,
            )
        with app.server.test_request_context("/_dash-update-component", method="POST"):
            login_user(principal)
            yield

    return as_role
