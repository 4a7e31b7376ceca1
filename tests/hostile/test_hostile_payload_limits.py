"""Oversized bodies are refused with 413 on every endpoint that accepts a body.

The server-wide limit (BEACON_MAX_UPLOAD_MB) is set to 1 MiB here so the bodies stay small;
endpoints with their own, lower limit (VES 10 MiB, change-window CSV 2 MiB) are checked
at that limit under the default server limit.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import dash
import pytest
from dash import Dash
from flask.testing import FlaskClient
from flask_login import login_user
from sqlalchemy import func, select
from testkit import add_user, callback_request, settings_for, sign_in
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app import create_app
from services import audit, auth
from services.api.views.change_windows import MAX_BODY as CHANGE_WINDOW_MAX_BODY
from services.db import Database
from services.db.models import ChangeWindow, QuarantinedRecord
from services.ingest.sources.ves import MAX_BODY_BYTES as VES_MAX_BODY
from services.web.principal import user_principal

MIB = 1024 * 1024
OVER_SMALL_LIMIT = MIB + 1


@pytest.fixture
def small_app(tmp_path: Path, template_db: Path) -> Iterator[Dash]:
    """An app whose server-wide body limit is 1 MiB."""
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    app = create_app(settings_for(tmp_path, BEACON_MAX_UPLOAD_MB="1"))
    yield app
    app.server.extensions["beacon"].db.dispose()


def _ingest_headers(db: Database, content_type: str) -> dict[str, str]:
    with db.session(write=True) as session:
        issued = auth.create_api_token(
            session, name="limits", role="admin", scopes=None, actor=audit.SYSTEM
        )
    return {"Authorization": f"Bearer {issued.plaintext}", "Content-Type": content_type}


def _json_blob(size: int) -> bytes:
    """A syntactically valid JSON document of at least `size` bytes."""
    return json.dumps({"title": "x" * size, "severity": "sev3"}).encode()


def _assert_413(response, code: str = "payload_too_large") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/api/v1/incidents", "application/json", _json_blob(OVER_SMALL_LIMIT)),
        ("/api/v1/telemetry", "text/csv", b"dn,kpi,period_end,value\n" + b"x" * OVER_SMALL_LIMIT),
        ("/api/v1/telemetry", "application/json", _json_blob(OVER_SMALL_LIMIT)),
        ("/api/v1/alarms/alertmanager", "application/json", _json_blob(OVER_SMALL_LIMIT)),
        ("/api/v1/alarms/tmf642", "application/json", _json_blob(OVER_SMALL_LIMIT)),
        ("/api/v1/change-windows", "text/csv", b"title,kind\n" + b"x" * OVER_SMALL_LIMIT),
        ("/api/v1/tokens/api", "application/json", _json_blob(OVER_SMALL_LIMIT)),
    ],
)
def test_api_bodies_over_the_server_limit_are_413(
    small_app: Dash, path: str, content_type: str, body: bytes
) -> None:
    db = small_app.server.extensions["beacon"].db
    client = small_app.server.test_client()
    response = client.post(path, data=body, headers=_ingest_headers(db, content_type))
    _assert_413(response)
    assert "Traceback" not in response.get_data(as_text=True)


def test_api_body_at_the_limit_is_still_read(small_app: Dash) -> None:
    """The limit refuses only what is over it: a body just under it reaches the view."""
    db = small_app.server.extensions["beacon"].db
    client = small_app.server.test_client()
    headers = _ingest_headers(db, "application/json")
    body = json.dumps({"title": "t", "severity": "sev3", "summary": "s" * 4001}).encode()
    response = client.post("/api/v1/incidents", data=body, headers=headers)
    # Too long a summary for the model, so the body was read and validated: not a 413.
    assert response.status_code == 422, response.get_data(as_text=True)[:300]


def _unsized(app: Dash, path: str, body: bytes, content_type: str) -> tuple[str, bytes]:
    """POST `body` without Content-Length (chunked transfer, as gunicorn passes it on)."""
    db = app.server.extensions["beacon"].db
    builder = EnvironBuilder(
        path=path, method="POST", data=body, headers=_ingest_headers(db, content_type)
    )
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input_terminated"] = True
    answer, status, _headers = run_wsgi_app(app.server, environ, buffered=True)
    return status, b"".join(answer)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/alarms/tmf642", "application/json"),
        ("/api/v1/incidents", "application/json"),
        ("/api/v1/telemetry", "text/csv"),
    ],
)
def test_chunked_body_over_the_limit_is_413_not_truncated(
    small_app: Dash, path: str, content_type: str
) -> None:
    """The server stops reading an unsized body at the limit; the API must not take the
    truncated part (half a CSV) as the whole body."""
    status, body = _unsized(small_app, path, _json_blob(OVER_SMALL_LIMIT), content_type)
    assert status.startswith("413"), (status, body[:300])
    assert json.loads(body)["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/login", "application/x-www-form-urlencoded"),
        ("/_dash-update-component", "application/json"),
    ],
)
def test_chunked_console_body_over_the_limit_is_413(
    small_app: Dash, path: str, content_type: str
) -> None:
    """The console's own bodies (sign-in form, callbacks) get the same check as the API."""
    status, body = _unsized(small_app, path, _json_blob(OVER_SMALL_LIMIT), content_type)
    assert status.startswith("413"), (status, body[:300])


def test_chunked_body_under_the_limit_is_read_whole(small_app: Dash) -> None:
    period = "2026-11-20T10:00:00Z"
    csv_body = f"dn,kpi,period_end,value\nManagedElement=S1,prb_util_dl,{period},1\n"
    status, body = _unsized(small_app, "/api/v1/telemetry", csv_body.encode(), "text/csv")
    assert status.startswith("202"), (status, body[:300])
    assert json.loads(body)["received"] == 1


def test_ves_event_over_its_limit_is_413_and_recorded(app: Dash, db: Database) -> None:
    client = app.server.test_client()
    headers = _ingest_headers(db, "application/json")
    body = b'{"event": {"commonEventHeader": {}, "x": "' + b"y" * VES_MAX_BODY + b'"}}'
    response = client.post("/eventListener/v7", data=body, headers=headers)
    assert response.status_code == 413
    assert "requestError" in response.get_json()
    with db.session() as session:
        refused = session.scalars(select(QuarantinedRecord)).all()
    assert [r.reason_code for r in refused] == ["payload_too_large"]


def test_change_window_csv_over_its_own_limit_is_413(app: Dash, db: Database) -> None:
    client = app.server.test_client()
    headers = _ingest_headers(db, "text/csv")
    row = "big-{n},Window,maintenance,2026-11-26T22:00:00Z,2026-11-26T23:00:00Z,,,\n"
    text = "external_id,title,kind,starts_at,ends_at,domains,regions,elements\n"
    lines = [row.format(n=n) for n in range(CHANGE_WINDOW_MAX_BODY // len(row) + 10)]
    body = (text + "".join(lines)).encode()
    assert len(body) > CHANGE_WINDOW_MAX_BODY
    response = client.post("/api/v1/change-windows", data=body, headers=headers)
    _assert_413(response)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ChangeWindow)) == 0


def test_login_form_over_the_limit_is_413(small_app: Dash) -> None:
    client = small_app.server.test_client()
    response = client.post(
        "/login",
        data={"username": "admin", "password": "p" * OVER_SMALL_LIMIT},
        headers={"Origin": "http://localhost"},
    )
    assert response.status_code == 413
    assert "p" * 100 not in response.get_data(as_text=True)
    # A person at a form gets a page that leads back to it, not a JSON document.
    assert response.mimetype == "text/html"
    assert 'href="/login"' in response.get_data(as_text=True)


def _signed_in(app: Dash, role: str) -> FlaskClient:
    db = app.server.extensions["beacon"].db
    add_user(db, f"limits-{role}", role)
    client = app.server.test_client()
    sign_in(client, f"limits-{role}")
    return client


def test_dash_callback_over_the_limit_is_413(small_app: Dash) -> None:
    client = _signed_in(small_app, "engineer")
    request = callback_request("use-cases-calendar-message.children")
    request["inputs"] = [{"id": "x", "property": "value", "value": "v" * OVER_SMALL_LIMIT}]
    response = client.post(
        "/_dash-update-component",
        data=json.dumps(request),
        headers={"Content-Type": "application/json", "Origin": "http://localhost"},
    )
    _assert_413(response)


def test_calendar_upload_over_its_limit_is_refused_in_the_page(app: Dash, db: Database) -> None:
    """The page's own CSV limit (below the server's) answers with a notice, imports nothing."""
    from pages import use_cases  # pages register themselves once the app exists

    raw = b"title,kind,starts_at,ends_at\n" + b"x" * use_cases.MAX_UPLOAD
    contents = "data:text/csv;base64," + base64.b64encode(raw).decode()
    add_user(db, "uploader", "engineer")
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        with db.session() as session:
            user = auth.get_user(session, username="uploader")
            login_user(
                user_principal(
                    user_id=user.id,
                    epoch=user.session_epoch,
                    username=user.username,
                    role=user.role,
                    display=user.display_name,
                )
            )
        notice, refreshed = use_cases.upload_calendar(contents, "big.csv")
    assert "larger than" in str(notice)
    assert refreshed is dash.no_update
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ChangeWindow)) == 0
