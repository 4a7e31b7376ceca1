"""Actuators carry out an action: the simulated network, or a real orchestrator by webhook.

Webhook receivers check `X-Beacon-Signature` (``sha256=<hex>`` HMAC-SHA256 of
``f"{timestamp}.{body}"`` keyed with the shared secret, the same scheme as Beacon's
notification webhooks), reject stale `X-Beacon-Timestamp`s, and must treat
`Idempotency-Key` as the identity of the request: Beacon retries with backoff and the
same key, so a retried execution must not run twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from urllib3.util.retry import Retry

from services.config import Settings, load_settings
from services.db.models import Decision, Element, Execution, Recommendation
from services.errors import InvalidInput
from services.ingest.simulator import actions as sim_actions

SIGNATURE_HEADER = "X-Beacon-Signature"
TIMESTAMP_HEADER = "X-Beacon-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_STATUSES = (429, 500, 502, 503, 504)
TICKET_ACTIONS = ("carrier_add_ticket",)
# A restart cures the sleep it was aimed at; a cell falling asleep a day later is a new fault.
RESTART_EFFECT = timedelta(days=1)
# Executions whose simulated effect is (or was, until rolled back) in force.
EFFECTIVE_STATES = ("succeeded", "verified", "rollback_recommended", "rolled_back")
ENV_URL = "BEACON_AUTOMATION_WEBHOOK_URL"
ENV_SECRET = "BEACON_AUTOMATION_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret


class ActuatorError(Exception):
    """The actuator could not carry out the action; the execution is marked failed."""


@dataclass(frozen=True)
class ActionRequest:
    """What to do, where, and the idempotency key that names this attempt."""

    idempotency_key: str
    recommendation_id: int
    use_case_key: str
    action: str
    parameters: Mapping[str, Any]
    element_dn: str | None
    now: datetime
    rollback_plan: Mapping[str, Any] = field(default_factory=dict)


class Actuator(Protocol):
    """Reads the pre-state, applies an action and reverts it."""

    name: str

    def read_state(self, session: Session, *, request: ActionRequest) -> dict[str, Any]:
        """The element's relevant state before the action."""
        ...

    def apply(self, session: Session, *, request: ActionRequest) -> dict[str, Any]:
        """Carry the action out; returns the post-state; ActuatorError on failure."""
        ...

    def revert(
        self, session: Session, *, request: ActionRequest, execution: Execution
    ) -> dict[str, Any]:
        """Undo the action using the stored pre-state; returns what was done."""
        ...


class SimulatorActuator:
    """Changes the simulated network: the execution row itself is the effect's record."""

    name = "simulator"

    def read_state(self, session: Session, *, request: ActionRequest) -> dict[str, Any]:
        """Parameters currently in force on the element from earlier simulated actions."""
        active = [
            e.parameters
            for e in simulator_effects(session)
            if e.dn == request.element_dn and e.action == request.action and e.end is None
        ]
        spec = sim_actions.EFFECTS.get(request.action)
        defaults = {k: 0.0 for k in spec.parameters} if spec else {}
        return {"parameters": dict(active[-1]) if active else defaults}

    def apply(self, session: Session, *, request: ActionRequest) -> dict[str, Any]:
        """Validate the action against the effect registry; the execution row makes it real."""
        if request.action in TICKET_ACTIONS:
            return {"ticket": f"PLAN-{request.recommendation_id:06d}", "cells_touched": 0}
        if not sim_actions.supports(request.action):
            raise ActuatorError(f"the simulated network cannot do {request.action!r}")
        if not request.element_dn:
            raise ActuatorError("the action names no network element")
        params = effect_parameters(request.action, request.parameters)
        return {
            "effect": {"action": request.action, "dn": request.element_dn, "parameters": params},
            "cells_touched": _cells_touched(session, request),
        }

    def revert(
        self, session: Session, *, request: ActionRequest, execution: Execution
    ) -> dict[str, Any]:
        """Ending the effect is enough: `rolled_back_at` closes its window in the simulator."""
        return {"restored": execution.pre_state.get("parameters", {})}


def effect_parameters(action: str, parameters: Mapping[str, Any]) -> dict[str, float]:
    """The simulator's numeric knobs from a recommendation's parameters (defaults filled in)."""
    spec = sim_actions.EFFECTS.get(action)
    out = dict(spec.parameters) if spec else {}
    if action == "lb_param_change":
        # Recommendations name the parameter and its new value; tests may give offload_pct.
        if parameters.get("parameter") == "lb_offload_pct" and "value" in parameters:
            out["offload_pct"] = float(parameters["value"])
        if "offload_pct" in parameters:
            out["offload_pct"] = float(parameters["offload_pct"])
    elif action == "traffic_reroute":
        if parameters.get("path") == "primary":
            out["share_pct"] = 0.0
        if "share_pct" in parameters:
            out["share_pct"] = float(parameters["share_pct"])
    return out


def _cells_touched(session: Session, request: ActionRequest) -> int:
    """Load balancing moves users into the sibling cells of the site as well."""
    if request.action != "lb_param_change":
        return 1
    element = session.scalar(select(Element).where(Element.dn == request.element_dn))
    if element is None or element.parent_id is None:
        return 1
    return int(
        session.scalar(
            select(func.count(Element.id)).where(
                Element.parent_id == element.parent_id, Element.element_type == "cell"
            )
        )
        or 1
    )


def simulator_effects(session: Session) -> list[sim_actions.Effect]:
    """Every simulated action that changed the network, for `NetworkSimulator.set_effects`."""
    rows = session.execute(
        select(Execution)
        .where(
            Execution.actuator == SimulatorActuator.name,
            Execution.dry_run.is_(False),
            Execution.state.in_(EFFECTIVE_STATES),
        )
        .order_by(Execution.id)
    ).scalars()
    effects = []
    for execution in rows:
        effect = (execution.post_state or {}).get("effect")
        if not effect:
            continue
        start = pd.Timestamp(execution.finished_at or execution.started_at)
        end = execution.rolled_back_at
        if effect["action"] == "cell_restart":
            end = start + RESTART_EFFECT
        effects.append(
            sim_actions.Effect(
                action=effect["action"],
                dn=effect["dn"],
                start=start,
                end=None if end is None else pd.Timestamp(end),
                parameters=effect.get("parameters") or {},
            )
        )
    return effects


def body_of(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact, key-sorted JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, *, body: bytes, timestamp: str) -> str:
    """`sha256=<hex>` HMAC-SHA256 over `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str, *, body: bytes, timestamp: str, signature: str, tolerance_s: int = 300
) -> bool:
    """Receiver side: the signature matches and the timestamp is recent."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, body=body, timestamp=timestamp), signature)


class WebhookActuator:
    """POSTs signed JSON to an orchestrator; urllib3 retries with exponential backoff."""

    name = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_factor: float = 0.5,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("the automation webhook URL must be http(s)")
        if not secret:
            raise InvalidInput("the automation webhook needs a signing secret")
        self.url, self.secret, self.timeout_s = url, secret, timeout_s
        # POST is retried on purpose: the Idempotency-Key makes a repeat harmless.
        self.retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"POST"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )

    def _post(self, *, kind: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = body_of({"type": kind, "idempotency_key": key, **payload})
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Beacon-Automation/1",
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, body=body, timestamp=timestamp),
        }
        with requests.Session() as http:
            http.mount("http://", HTTPAdapter(max_retries=self.retry))
            http.mount("https://", HTTPAdapter(max_retries=self.retry))
            try:
                response = http.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise ActuatorError(f"orchestrator unreachable after retries: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise ActuatorError(f"orchestrator answered HTTP {response.status_code}")
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {"raw": response.text[:500]}
        return answer if isinstance(answer, dict) else {"answer": answer}

    def read_state(self, session: Session, *, request: ActionRequest) -> dict[str, Any]:
        """The orchestrator reports the pre-state in its answer; nothing to read up front."""
        return {"parameters": {}}

    def apply(self, session: Session, *, request: ActionRequest) -> dict[str, Any]:
        """Send the action; the orchestrator's answer becomes the post-state."""
        answer = self._post(
            kind="beacon.automation.execute", key=request.idempotency_key, payload=_body(request)
        )
        return {"orchestrator": answer, "cells_touched": int(answer.get("cells_touched", 0) or 0)}

    def revert(
        self, session: Session, *, request: ActionRequest, execution: Execution
    ) -> dict[str, Any]:
        """Ask the orchestrator to restore the pre-state."""
        payload = {**_body(request), "pre_state": execution.pre_state, "execution_id": execution.id}
        answer = self._post(
            kind="beacon.automation.rollback",
            key=f"{request.idempotency_key}:rollback",
            payload=payload,
        )
        return {"orchestrator": answer}


def _body(request: ActionRequest) -> dict[str, Any]:
    return {
        "recommendation_id": request.recommendation_id,
        "use_case": request.use_case_key,
        "action": request.action,
        "parameters": dict(request.parameters),
        "element": request.element_dn,
        "rollback_plan": dict(request.rollback_plan),
        "requested_at": request.now.isoformat(),
    }


def actuator_for(
    kind: str, *, settings: Settings | None = None
) -> SimulatorActuator | WebhookActuator:
    """The actuator a use case names; the webhook's URL and secret come from the settings."""
    if kind == SimulatorActuator.name:
        return SimulatorActuator()
    if kind == WebhookActuator.name:
        config = settings or load_settings()
        url, secret = config.automation_webhook_url, config.automation_webhook_secret
        if not url or not secret:
            raise ActuatorError(f"webhook actuator needs {ENV_URL} and {ENV_SECRET}")
        return WebhookActuator(url=url, secret=secret)
    raise ActuatorError(f"unknown actuator {kind!r}")


def request_for(
    session: Session, *, recommendation: Recommendation, key: str, use_case_key: str, now: datetime
) -> ActionRequest:
    """The action request of a recommendation, honouring a human override's action."""
    action, params = recommendation.action, dict(recommendation.parameters or {})
    if recommendation.state == "overridden":
        override = session.scalars(
            select(Decision)
            .where(
                Decision.recommendation_id == recommendation.id,
                Decision.verdict == "override",
            )
            .order_by(Decision.id.desc())
        ).first()
        if override is not None and override.override_action:
            action, params = override.override_action, dict(override.override_parameters or {})
    element = session.get(Element, recommendation.element_id) if recommendation.element_id else None
    return ActionRequest(
        idempotency_key=key,
        recommendation_id=recommendation.id,
        use_case_key=use_case_key,
        action=action,
        parameters=params,
        element_dn=element.dn if element is not None else None,
        now=now,
        rollback_plan=dict(recommendation.rollback_plan or {}),
    )
