"""Secrets never reach the logs: passwords, tokens, webhook and SMTP secrets, database passwords.

Everything is captured at DEBUG (SQLAlchemy then logs every statement with its parameters)
and formatted the way Beacon's handlers format it, tracebacks included.
"""

from __future__ import annotations

import logging
import secrets
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from dash import Dash
from security_support import callback_body, database, seed_recommendations
from testkit import (
    drop_postgres_database,
    fresh_postgres_database,
    settings_for,
    skip_or_fail_without_postgres,
)

from app import create_app
from services.logs import FORMAT, REQUEST_LOGGERS, RedactSecrets, configure_logging, redact


class RefusingSmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to make the client send its password, then refuse it."""

    def handle(self) -> None:
        self.wfile.write(b"220 refusing-smtp\r\n")
        for line in self.rfile:
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-refusing-smtp\r\n250 AUTH PLAIN LOGIN\r\n")
            elif verb == b"AUTH":
                self.wfile.write(b"535 5.7.8 authentication failed\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture
def smtp_port() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), RefusingSmtp) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1]
        server.shutdown()


def _secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(12)}"


@pytest.fixture
def secret_values() -> dict[str, str]:
    return {
        "admin_password": _secret("admin-pw"),
        "wrong_password": _secret("guess-pw"),
        "new_user_password": _secret("new-user-pw"),
        "reset_password": _secret("reset-pw"),
        "secret_key": _secret("flask-key"),
        "webhook_secret": _secret("webhook-secret"),
        "automation_secret": _secret("automation-secret"),
        "smtp_password": _secret("smtp-pw"),
        "url_password": _secret("url-pw"),
    }


def _env(values: dict[str, str], smtp_port: int) -> dict[str, str]:
    return {
        "BEACON_ADMIN_PASSWORD": values["admin_password"],
        "BEACON_SECRET_KEY": values["secret_key"],
        # Loopback only: the webhook port is closed and the SMTP relay refuses the password,
        # so deliveries fail at once, through the real error paths.
        "BEACON_WEBHOOK_URLS": "http://127.0.0.1:9/hook",
        "BEACON_WEBHOOK_SECRET": values["webhook_secret"],
        "BEACON_AUTOMATION_WEBHOOK_URL": "http://127.0.0.1:9/act",
        "BEACON_AUTOMATION_WEBHOOK_SECRET": values["automation_secret"],
        "BEACON_SMTP_HOST": "127.0.0.1",
        "BEACON_SMTP_PORT": str(smtp_port),
        "BEACON_SMTP_USER": "beacon",
        "BEACON_SMTP_PASSWORD": values["smtp_password"],
    }


def _capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy holds its own loggers at WARNING unless told otherwise.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")


def _everything_logged(caplog: pytest.LogCaptureFixture) -> tuple[str, str]:
    """(what the code logged, what Beacon's handlers write out after RedactSecrets)."""
    formatter = logging.Formatter(FORMAT)
    raw, emitted = [], []
    for record in caplog.records:
        raw += [formatter.format(record), repr(record.args)]
        copy = logging.makeLogRecord(dict(record.__dict__))
        RedactSecrets().filter(copy)
        emitted.append(formatter.format(copy))
    return "\n".join(raw), "\n".join(emitted)


def _exercise(app: Dash, values: dict[str, str]) -> list[str]:
    """Sign in (wrong and right password), manage users and tokens, use the tokens, and
    deliver notifications through the webhook and SMTP channels; returns issued tokens."""
    from services.notify.config import notify_config
    from services.notify.deliver import deliver_due
    from services.notify.mail import send_email

    server = app.server
    db = database(app)
    seed_recommendations(db)
    client = server.test_client()
    wrong = client.post("/login", data={"username": "admin", "password": values["wrong_password"]})
    assert wrong.status_code == 401
    right = client.post("/login", data={"username": "admin", "password": values["admin_password"]})
    assert right.status_code == 303
    create = callback_body(
        app,
        "admin-user-message.children",
        {
            "admin-create-user.n_clicks": 1,
            "admin-new-username.value": "logged-user",
            "admin-new-role.value": "operator",
            "admin-new-password.value": values["new_user_password"],
        },
        trigger="admin-create-user.n_clicks",
    )
    assert client.post("/_dash-update-component", json=create).status_code == 200
    reset = callback_body(
        app,
        "admin-user-message.children",
        {
            "admin-apply-password.n_clicks": 1,
            "admin-users.selectedRows": [{"username": "logged-user"}],
            "admin-reset-password.value": values["reset_password"],
        },
        trigger="admin-apply-password.n_clicks",
    )
    assert client.post("/_dash-update-component", json=reset).status_code == 200
    other = server.test_client()
    signed = other.post(
        "/login", data={"username": "logged-user", "password": values["reset_password"]}
    )
    assert signed.status_code == 303
    api = client.post("/api/v1/tokens/api", json={"name": "logged", "role": "operator"})
    kiosk = client.post("/api/v1/tokens/kiosk", json={"name": "logged-wall"})
    issued = [api.get_json()["token"], kiosk.get_json()["token"]]
    bearer = {"Authorization": f"Bearer {issued[0]}"}
    assert server.test_client().get("/api/v1/me", headers=bearer).status_code == 200
    incident = server.test_client().post(
        "/api/v1/incidents",
        json={"title": "Logged outage", "severity": "sev1", "domain": "ran"},
        headers=bearer,
    )
    assert incident.status_code == 201, incident.data[:300]
    assert server.test_client().get(f"/kiosk/{issued[1]}").status_code == 303
    assert server.test_client().get("/api/v1/me", headers={"Authorization": "Bearer bkn_a_x"})
    revoke = client.delete(f"/api/v1/tokens/api/{api.get_json()['id']}")
    assert revoke.status_code == 200
    config = replace(notify_config(server.extensions["beacon"].settings), http_retries=0)
    report = deliver_due(db, config=config)
    assert report.delivered + report.failed + report.retrying > 0, "nothing was delivered"
    assert config.smtp is not None
    mailed = send_email(config.smtp, to="noc@example.net", subject="t", text="t", message_id="m1")
    assert mailed.error is not None
    assert "535" in mailed.error  # the password was sent and refused
    return issued


def _assert_nothing_leaked(
    logged: tuple[str, str], values: dict[str, str], issued: list[str]
) -> None:
    raw, emitted = logged
    for name, value in values.items():
        assert value not in emitted, f"{name} appears in the written logs"
        assert value not in raw, f"{name} is logged by the code"
    for token in issued:
        assert token[6:] not in raw, "a token appears in the logs"
        assert token[6:] not in emitted, "a token appears in the written logs"


def test_no_secret_reaches_the_logs(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    secret_values: dict[str, str],
    smtp_port: int,
) -> None:
    _capture_everything(caplog)
    app = create_app(settings_for(tmp_path, **_env(secret_values, smtp_port)))
    try:
        issued = _exercise(app, secret_values)
    finally:
        database(app).dispose()
    logged = _everything_logged(caplog)
    # The capture works: statements with their parameters and the delivery attempts are here.
    assert "INSERT INTO audit_events" in logged[0]
    assert "Starting new HTTP connection" in logged[0]
    _assert_nothing_leaked(logged, secret_values, issued)


@pytest.mark.postgres
def test_no_secret_reaches_the_logs_on_postgres(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    secret_values: dict[str, str],
    smtp_port: int,
    worker_id: str,
) -> None:
    """The same, on PostgreSQL reached through a URL with a password in it."""
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_secrets_{worker_id}")
    # The test server trusts local connections, so any password is accepted (and ignored).
    with_password = url.replace("://postgres@", f"://postgres:{secret_values['url_password']}@")
    assert secret_values["url_password"] in with_password
    _capture_everything(caplog)
    app = create_app(
        settings_for(tmp_path, BEACON_DATABASE_URL=with_password, **_env(secret_values, smtp_port))
    )
    try:
        issued = _exercise(app, secret_values)
        assert app.server.test_client().get("/readyz").status_code == 200
    finally:
        database(app).dispose()
        drop_postgres_database(url)
    logged = _everything_logged(caplog)
    assert "INSERT INTO audit_events" in logged[0]
    _assert_nothing_leaked(logged, secret_values, issued)


# --- the safety net: what request loggers print is masked -----------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers: put them back afterwards."""
    targets = [logging.getLogger(), *(logging.getLogger(n) for n in REQUEST_LOGGERS)]
    targets += list(logging.getLogger().handlers)
    saved = [(t, list(t.filters)) for t in targets]
    levels = {n: logging.getLogger(n).level for n in ("gunicorn.access", "gunicorn.error")}
    yield
    for target, filters in saved:
        target.filters[:] = filters
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for name in ("gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if getattr(h, "_gunicorn", False)]:
            logger.removeHandler(handler)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_gunicorn_access_log_masks_kiosk_links(restore_logging: None) -> None:
    """`beacon serve` logs every request line; a wall screen's link carries its token."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("accesslog", "-")
    configure_logging("INFO")
    glog = Logger(cfg)  # what gunicorn builds after configure_logging in `beacon serve`
    collect = _Collect()
    glog.access_log.addHandler(collect)
    token = "bkn_k_" + secrets.token_urlsafe(32)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/kiosk/{token}",
        "PATH_INFO": f"/kiosk/{token}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_REFERER": f"http://beacon/kiosk/{token}",
    }
    response = SimpleNamespace(status="303 SEE OTHER", headers=[], sent=0)
    glog.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    assert collect.lines, "the access log wrote nothing"
    line = collect.lines[0]
    assert token[6:] not in line
    assert "GET /kiosk/bkn_k_[redacted] HTTP/1.1" in line
    assert "10.1.2.3" in line  # the rest of the line is kept


def test_configure_logging_masks_root_handlers_once(restore_logging: None) -> None:
    configure_logging("INFO")
    configure_logging("INFO")
    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("GET /kiosk/bkn_k_abcDEF123_-xyz HTTP/1.1", "GET /kiosk/bkn_k_[redacted] HTTP/1.1"),
        ("token bkn_a_Zm9vYmFyYmF6 used", "token bkn_a_[redacted] used"),
        (
            "postgresql+psycopg://beacon:s3cret@db:5432/beacon",
            "postgresql+psycopg://beacon:[redacted]@db:5432/beacon",
        ),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [redacted]"),
        ("username=ann&password=hunter2-x&next=/", "username=ann&password=[redacted]&next=/"),
        (
            "smtp_password=abc webhook_secret=def",
            "smtp_password=[redacted] webhook_secret=[redacted]",
        ),
        ("GET /api/v1/incidents?page=2 HTTP/1.1", "GET /api/v1/incidents?page=2 HTTP/1.1"),
        ("https://hooks.example/path", "https://hooks.example/path"),
    ],
)
def test_redact(raw: str, masked: str) -> None:
    assert redact(raw) == masked


def test_filter_masks_messages_built_from_arguments() -> None:
    record = logging.LogRecord(
        "beacon",
        logging.INFO,
        __file__,
        1,
        "opening %s for %s",
        ("/kiosk/bkn_k_abcdefgh", "x"),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "opening /kiosk/bkn_k_[redacted] for x"
