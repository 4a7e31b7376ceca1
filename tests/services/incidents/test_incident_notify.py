"""Notifications: signed webhooks against a real local receiver, retries, dedup, SMTP, outbox."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from incident_support import NOW, OPERATOR, actions_of, person_id
from sqlalchemy import func, select

from services.db import Database, connect
from services.db.models import Incident, IncidentEvent, Notification, Rotation
from services.errors import Conflict
from services.incidents import escalation, lifecycle
from services.notify import deliver, outbox, shifts, webhook
from services.notify.config import NotifyConfig, SmtpConfig, WebhookEndpoint
from services.oncall import overrides

SECRET = "test-webhook-secret"
MIN = timedelta(minutes=1)


@dataclass
class Receiver:
    """A local HTTP endpoint answering with scripted statuses (then 200) and keeping requests."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append((headers, body))
            return self.script.pop(0) if self.script else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = state.answer(dict(self.headers.items()), body)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "600")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/beacon"
    yield state
    server.shutdown()
    server.server_close()


def config_for(receiver: Receiver, **extra: object) -> NotifyConfig:
    return NotifyConfig(
        webhooks=(WebhookEndpoint(receiver.url, SECRET),),
        log=False,
        http_backoff_s=0.01,
        **extra,  # type: ignore[arg-type]
    )


def open_incident(db: Database, config: NotifyConfig) -> int:
    with db.session(write=True) as session:
        return lifecycle.create_manual(
            session,
            title="Core outage",
            severity="sev1",
            actor=OPERATOR,
            now=NOW,
            domain="Core",
            config=config,
        ).id


def rows(db: Database) -> list[Notification]:
    with db.session() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_signed_webhook_is_delivered_once_and_verifiable(db: Database, receiver: Receiver) -> None:
    config = config_for(receiver)
    incident_id = open_incident(db, config)
    report = deliver.deliver_due(db, config=config, now=NOW)
    assert (report.delivered, report.retrying, report.failed) == (1, 0, 0)
    ((headers, body),) = receiver.requests
    assert webhook.verify(
        SECRET,
        body=body,
        timestamp=headers[webhook.TIMESTAMP_HEADER],
        signature=headers[webhook.SIGNATURE_HEADER],
    )
    assert not webhook.verify(
        "wrong-secret",
        body=body,
        timestamp=headers[webhook.TIMESTAMP_HEADER],
        signature=headers[webhook.SIGNATURE_HEADER],
    )
    tampered = body.replace(b"Core outage", b"All fine!!!")
    assert not webhook.verify(
        SECRET,
        body=tampered,
        timestamp=headers[webhook.TIMESTAMP_HEADER],
        signature=headers[webhook.SIGNATURE_HEADER],
    )
    # An old capture replayed later fails the timestamp check.
    assert not webhook.verify(
        SECRET,
        body=body,
        timestamp=headers[webhook.TIMESTAMP_HEADER],
        signature=headers[webhook.SIGNATURE_HEADER],
        now=time.time() + 3600,
    )
    assert headers[webhook.DELIVERY_HEADER] == rows(db)[0].dedup_key
    assert b'"event":"incident.created"' in body
    assert f'"id":{incident_id}'.encode() in body
    # Delivered rows are not sent again.
    assert deliver.deliver_due(db, config=config, now=NOW + MIN).delivered == 0
    assert len(receiver.requests) == 1
    assert actions_of(db, prefix="notification.") == ["notification.deliver"]


def test_transient_errors_are_retried_within_one_attempt(db: Database, receiver: Receiver) -> None:
    config = config_for(receiver, http_retries=2)
    open_incident(db, config)
    receiver.script = [503, 502]
    report = deliver.deliver_due(db, config=config, now=NOW)
    assert report.delivered == 1
    assert len(receiver.requests) == 3
    # Every retry carries the same delivery id, so the receiver can drop duplicates.
    assert len({h[webhook.DELIVERY_HEADER] for h, _ in receiver.requests}) == 1
    assert rows(db)[0].attempts == 1


def test_failures_back_off_exponentially_then_are_kept_as_failed(
    db: Database, receiver: Receiver
) -> None:
    config = config_for(receiver, http_retries=0, max_attempts=4, backoff_base_s=30)
    incident_id = open_incident(db, config)
    receiver.script = [500, 500, 429, 500]
    clock = NOW
    waits = []
    for _ in range(3):
        report = deliver.deliver_due(db, config=config, now=clock)
        assert report.retrying == 1
        row = rows(db)[0]
        waits.append(row.next_attempt_at - clock)
        # Not due yet: a run before the back-off is over sends nothing.
        assert deliver.deliver_due(db, config=config, now=row.next_attempt_at - MIN).retrying == 0
        clock = row.next_attempt_at
    # 30 s, 60 s, then the receiver's Retry-After (600 s) beats 120 s.
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=600)]
    report = deliver.deliver_due(db, config=config, now=clock)
    assert report.failed == 1
    row = rows(db)[0]
    assert (row.status, row.attempts) == ("failed", 4)
    assert row.last_error.startswith("HTTP 500")
    assert len(receiver.requests) == 4
    with db.session() as session:
        texts = session.scalars(
            select(IncidentEvent.text).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "notification"
            )
        ).all()
    assert texts[0].startswith("webhook to http://127.0.0.1")
    # Failed is kept, visible, and can be sent again by hand.
    with db.session(write=True) as session:
        outbox.retry(session, notification_id=row.id, actor=OPERATOR, now=clock)
        with pytest.raises(Conflict):
            outbox.retry(session, notification_id=row.id, actor=OPERATOR, now=clock)
    assert deliver.deliver_due(db, config=config, now=clock).delivered == 1
    assert actions_of(db, prefix="notification.") == [
        "notification.fail",
        "notification.retry",
        "notification.deliver",
    ]


def test_outbox_rows_commit_with_their_event_and_survive_a_restart(
    db: Database, receiver: Receiver
) -> None:
    config = config_for(receiver)

    # An event that rolls back leaves no message behind.
    def crash() -> None:
        with db.session(write=True) as session:
            lifecycle.create_manual(
                session, title="Never", severity="sev3", actor=OPERATOR, now=NOW, config=config
            )
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash()
    assert rows(db) == []
    # Queued while the receiver is down ...
    receiver.script = [503]
    open_incident(db, config)
    assert (
        deliver.deliver_due(db, config=config_for(receiver, http_retries=0), now=NOW).retrying == 1
    )
    db.dispose()
    # ... and delivered by a new process reading the same database.
    restarted = connect(db.url)
    try:
        report = deliver.deliver_due(restarted, config=config, now=NOW + 10 * MIN)
    finally:
        restarted.dispose()
    assert report.delivered == 1
    assert [r.status for r in rows(db)] == ["delivered"]


def test_enqueue_is_deduplicated_by_key(db: Database, receiver: Receiver) -> None:
    config = config_for(receiver)
    incident_id = open_incident(db, config)
    with db.session(write=True) as session:
        incident = session.get_one(Incident, incident_id)
        args = {
            "incident": incident,
            "event": "incident.custom",
            "event_key": "custom:1",
            "message": "hello",
            "config": config,
            "now": NOW,
        }
        assert outbox.announce(session, **args) == 1  # type: ignore[arg-type]
        assert outbox.announce(session, **args) == 0  # type: ignore[arg-type]
    with db.session(write=True) as session:
        incident = session.get_one(Incident, incident_id)
        # A duplicate in a later transaction neither adds a row nor breaks that transaction.
        assert outbox.announce(session, **{**args, "incident": incident}) == 0  # type: ignore[arg-type]
        lifecycle.acknowledge(
            session, incident_id=incident_id, actor=OPERATOR, now=NOW, config=config
        )
    with db.session() as session:
        count = session.scalar(select(func.count()).select_from(Notification))
    assert count == 3  # created, custom, acknowledged
    deliver.deliver_due(db, config=config, now=NOW + MIN)
    keys = [h[webhook.DELIVERY_HEADER] for h, _ in receiver.requests]
    assert len(keys) == len(set(keys)) == 3


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        server: SmtpServer = self.server  # type: ignore[assignment]
        self.wfile.write(b"220 localhost test SMTP\r\n")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 localhost\r\n")
            elif verb == "MAIL":
                if server.refuse:
                    server.refuse -= 1
                    self.wfile.write(b"451 try again later\r\n")
                    continue
                sender = command
                self.wfile.write(b"250 OK\r\n")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                self.wfile.write(b"250 OK\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 end with .\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                server.messages.append((sender, recipients, data))
                self.wfile.write(b"250 queued\r\n")
            elif verb == "RSET":
                self.wfile.write(b"250 OK\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not implemented\r\n")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse = 0


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_pages_are_emailed_through_smtp_with_retry(db: Database, smtp_server: SmtpServer) -> None:
    config = NotifyConfig(
        smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.server_address[1], sender="noc@x.net"),
        log=False,
    )
    open_incident(db, config)
    escalation.run_escalations(db, now=NOW, config=config)
    (row,) = rows(db)
    assert (row.notifier, row.status) == ("email", "pending")
    smtp_server.refuse = 1
    assert deliver.deliver_due(db, config=config, now=NOW).retrying == 1
    assert "451" in rows(db)[0].last_error
    assert deliver.deliver_due(db, config=config, now=NOW + MIN).delivered == 1
    ((sender, recipients, data),) = smtp_server.messages
    assert sender.upper() == "MAIL FROM:<NOC@X.NET>"
    assert recipients == [row.target]
    message = message_from_bytes(data)
    assert message["Subject"].startswith("[Beacon SEV1]")
    assert "Core outage" in message.get_payload()
    assert message["Message-ID"].endswith("@beacon>")


def test_people_whose_shifts_moved_are_told(db: Database) -> None:
    with db.session(write=True) as session:
        rotation = session.scalars(
            select(Rotation).where(Rotation.name == "RAN North weekly")
        ).one()
        katrin = person_id(session, "Katrin Vogel")
        result = overrides.create_override(
            session,
            rotation_id=rotation.id,
            person_id=katrin,
            starts_at=NOW + timedelta(hours=20),
            ends_at=NOW + timedelta(hours=30),
            actor=OPERATOR,
            now=NOW,
        )
        added = shifts.notify_shift_changes(session, result=result, config=NotifyConfig(), now=NOW)
    targets = sorted(r.target for r in rows(db))
    assert added == len(targets) >= 2
    assert "Katrin Vogel" in targets
    katrin_row = next(r for r in rows(db) if r.target == "Katrin Vogel")
    assert "+ on call Thu 26 Nov 06:00" in katrin_row.payload["message"]
    assert deliver.deliver_due(db, config=NotifyConfig(), now=NOW).delivered == len(targets)
