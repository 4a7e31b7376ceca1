"""A failing webhook receiver and a deliverer killed mid-retry: retried, logged, never lost.

The receiver first fails, then holds the retry open; the delivering process is killed
(SIGKILL) while it waits for the answer. A new process sends the message again with the
same delivery id (so the receiver can drop the duplicate) and records it as delivered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fault_support import stop, tail, wait_until
from sqlalchemy import select
from testkit import REPO_ROOT, seeded_database

from services.db import Database
from services.db.models import AuditEvent, Notification
from services.notify import outbox, webhook

pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.timeout(120)]

SECRET = "fault-test-webhook-secret"

# The delivery job's function in a loop, as `beacon scheduler` runs it (every 0.2 s here).
DELIVERER = """
import sys, time
from services.db import connect
from services.notify import deliver
from services.notify.config import NotifyConfig, WebhookEndpoint
db = connect(sys.argv[1])
config = NotifyConfig(webhooks=(WebhookEndpoint(sys.argv[2], sys.argv[3]),), log=False,
                      backoff_base_s=1, http_retries=0, http_timeout_s=60)
print("deliverer up", flush=True)
while True:
    print(deliver.deliver_due(db, config=config), flush=True)
    time.sleep(0.2)
"""


@dataclass
class Receiver:
    """Answers 500, then holds the next request open until released, then 200."""

    url: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)
    ok: list[dict[str, str]] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, headers: dict[str, str]) -> int | None:
        self.seen.append(headers)
        if len(self.seen) == 1:
            return 500
        if len(self.seen) == 2:
            self.holding.set()
            self.release.wait(60)
            return None  # the caller is gone: no answer
        self.ok.append(headers)
        return 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = state.answer(dict(self.headers.items()))
            if status is None:
                return
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/noc"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def start_deliverer(url: str, receiver: Receiver, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", DELIVERER, url, receiver.url, SECRET],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def row(db: Database) -> Notification:
    with db.session() as session:
        return session.scalars(select(Notification)).one()


def test_deliverer_killed_mid_retry_loses_nothing(receiver: Receiver, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'beacon.db'}"
    log = tmp_path / "deliverer.log"
    with seeded_database(url) as db:
        with db.session(write=True) as session:
            outbox.enqueue(
                session,
                notifier="webhook",
                target=receiver.url,
                dedup_key="incident:1:created:webhook",
                payload={"event": "incident.created", "incident": {"id": 1, "title": "RAN"}},
            )
        first = start_deliverer(url, receiver, log)
        try:
            # The first attempt fails and is scheduled again; the retry is then held open.
            wait_until(receiver.holding.is_set, timeout=60)
            failed = row(db)
            assert (failed.status, failed.attempts) == ("pending", 1)
            assert failed.last_error.startswith("HTTP 500")
        finally:
            stop(first, sig=signal.SIGKILL)
        receiver.release.set()
        # Killed mid-send: the outcome was never recorded, so the message is still owed.
        owed = row(db)
        assert (owed.status, owed.attempts) == ("pending", 1)

        second = start_deliverer(url, receiver, log)
        try:
            wait_until(lambda: row(db).status == "delivered", timeout=60)
        finally:
            assert stop(second) in (0, -signal.SIGTERM), tail(log)
        delivered = row(db)
        with db.session() as session:
            actions = session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("notification.%"))
            ).all()
    assert delivered.attempts == 2  # the failed one and the successful one are logged
    assert delivered.last_error is None
    assert actions == ["notification.deliver"]
    # At least once: the killed attempt may have reached the receiver, and every request
    # of this message carried the same delivery id, so the receiver keeps exactly one.
    assert len(receiver.ok) == 1
    ids = {h[webhook.DELIVERY_HEADER] for h in receiver.seen}
    assert ids == {"incident:1:created:webhook"}
    assert [h[webhook.ATTEMPT_HEADER] for h in receiver.seen] == ["1", "2", "2"]
