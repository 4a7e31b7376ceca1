"""Webhook actuator against a real local HTTP receiver: signature, retries, idempotency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import automation_support as kit
import pytest
from automation_support import CELL, ENGINEER, NOW, accept, recommend, use_case
from sqlalchemy.orm import Session

from services.automation import actuators, execution
from services.automation.actuators import (
    ENV_SECRET,
    ActionRequest,
    ActuatorError,
    WebhookActuator,
    actuator_for,
    sign,
    verify_signature,
)
from services.config import Settings, load_settings

pytestmark = pytest.mark.xdist_group("automation-webhook")
auto_db = kit.auto_db
session = kit.session
SECRET = "s3cret-for-tests"


class Receiver:
    """An orchestrator stand-in: checks signatures, fails on demand, applies each key once."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self.fail_first = 0
        self.status_when_failing = 503
        self.apply_before_failing = False
        self.lock = threading.Lock()

    def handle(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            key = headers.get("Idempotency-Key")
            valid = verify_signature(
                SECRET,
                body=body,
                timestamp=headers.get("X-Beacon-Timestamp", ""),
                signature=headers.get("X-Beacon-Signature", ""),
            )
            self.attempts.append({"key": key, "valid": valid, "body": json.loads(body)})
            if not valid:
                return 401, {"error": "bad signature"}
            if key not in self.applied and (
                self.apply_before_failing or len(self.attempts) > self.fail_first
            ):
                self.applied[key] = {"job": f"job-{len(self.applied) + 1}", "cells_touched": 2}
            if len(self.attempts) <= self.fail_first:
                return self.status_when_failing, {"error": "busy"}
            return 200, self.applied[key]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, answer = state.handle(self.headers, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def request(key: str = "beacon-rec1-try1-abc") -> ActionRequest:
    return ActionRequest(
        idempotency_key=key,
        recommendation_id=1,
        use_case_key="cell_congestion_lb",
        action="lb_param_change",
        parameters={"value": 30},
        element_dn=CELL,
        now=NOW,
    )


def fast(url: str, **kw: Any) -> WebhookActuator:
    return WebhookActuator(url=url, secret=SECRET, backoff_factor=0.01, timeout_s=2, **kw)


def test_signed_json_with_idempotency_key(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    post = fast(url).apply(None, request=request())
    [attempt] = state.attempts
    assert attempt["valid"] is True
    assert attempt["key"] == "beacon-rec1-try1-abc"
    assert attempt["body"]["type"] == "beacon.automation.execute"
    assert attempt["body"]["idempotency_key"] == "beacon-rec1-try1-abc"
    assert attempt["body"]["element"] == CELL
    assert attempt["body"]["parameters"] == {"value": 30}
    assert post == {"orchestrator": {"job": "job-1", "cells_touched": 2}, "cells_touched": 2}


def test_wrong_secret_is_refused_by_the_receiver(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    with pytest.raises(ActuatorError, match="HTTP 401"):
        WebhookActuator(url=url, secret="wrong", retries=0).apply(None, request=request())
    assert state.attempts[0]["valid"] is False
    assert state.applied == {}


def test_retries_with_backoff_keep_the_same_key_and_apply_once(
    receiver: tuple[Receiver, str],
) -> None:
    state, url = receiver
    # The orchestrator applies the change but its answer is lost twice: Beacon retries,
    # and the idempotency key makes the retries harmless.
    state.fail_first, state.apply_before_failing = 2, True
    post = fast(url).apply(None, request=request())
    assert len(state.attempts) == 3
    assert {a["key"] for a in state.attempts} == {"beacon-rec1-try1-abc"}
    assert len(state.applied) == 1
    assert post["orchestrator"]["job"] == "job-1"


def test_gives_up_after_retries(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.fail_first = 99
    with pytest.raises(ActuatorError, match="HTTP 503"):
        fast(url, retries=2).apply(None, request=request())
    assert len(state.attempts) == 3  # the first try and two retries


def test_unreachable_orchestrator() -> None:
    with pytest.raises(ActuatorError, match="unreachable"):
        WebhookActuator(
            url="http://127.0.0.1:9/x", secret=SECRET, retries=1, backoff_factor=0.01
        ).apply(None, request=request())


def test_signature_helpers() -> None:
    body, ts = b'{"a":1}', str(int(time.time()))
    good = sign(SECRET, body=body, timestamp=ts)
    assert verify_signature(SECRET, body=body, timestamp=ts, signature=good)
    assert not verify_signature(SECRET, body=b'{"a":2}', timestamp=ts, signature=good)
    stale = str(int(time.time()) - 3600)
    old = sign(SECRET, body=body, timestamp=stale)
    assert not verify_signature(SECRET, body=body, timestamp=stale, signature=old)


def test_actuator_needs_url_and_secret_from_the_environment() -> None:
    with pytest.raises(ActuatorError, match=ENV_SECRET):
        actuator_for("webhook", settings=_settings(url="http://x"))
    made = actuator_for("webhook", settings=_settings(url="http://x", secret="k"))
    assert isinstance(made, WebhookActuator)


def test_execute_and_roll_back_through_the_webhook(
    session: Session, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    use_case(session, "cell_congestion_lb", guardrails={"actuator": "webhook"})
    rec = recommend(session)
    accept(session, rec)
    env = _settings(url=url, secret=SECRET)
    state.fail_first = 1
    run = execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW, config=env)
    assert run.actuator == "webhook"
    assert run.state == "succeeded"
    assert [a["key"] for a in state.attempts] == [run.idempotency_key] * 2
    assert run.post_state["cells_touched"] == 2
    assert actuators.simulator_effects(session) == []  # a real orchestrator, not the simulator
    execution.rollback(
        session, execution_id=run.id, actor=ENGINEER, now=NOW, reason="test", config=env
    )
    last = state.attempts[-1]
    assert last["body"]["type"] == "beacon.automation.rollback"
    assert last["key"] == f"{run.idempotency_key}:rollback"
    assert last["body"]["pre_state"]["parameters"] == {}
    assert run.state == "rolled_back"


def _settings(*, url: str = "", secret: str = "") -> Settings:
    env = {"BEACON_AUTOMATION_WEBHOOK_URL": url, "BEACON_AUTOMATION_WEBHOOK_SECRET": secret}
    return load_settings(env)
