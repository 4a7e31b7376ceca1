"""Signed webhook delivery: HMAC-SHA256 over timestamp and body, quick retries via urllib3.

Receivers check `X-Beacon-Signature` (``sha256=<hex>`` of ``f"{timestamp}.{body}"`` keyed
with the shared secret) and that `X-Beacon-Timestamp` is recent, which stops replays; they
deduplicate on `X-Beacon-Delivery`, because delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from services.notify.config import NotifyConfig, WebhookEndpoint

SIGNATURE_HEADER = "X-Beacon-Signature"
TIMESTAMP_HEADER = "X-Beacon-Timestamp"
DELIVERY_HEADER = "X-Beacon-Delivery"
ATTEMPT_HEADER = "X-Beacon-Attempt"
TOLERANCE_S = 300
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "Beacon-Webhook/1"


@dataclass(frozen=True)
class Outcome:
    """How one delivery attempt ended; `retry_after_s` honours a receiver's Retry-After."""

    ok: bool
    error: str | None = None
    retry_after_s: float | None = None


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, *, body: bytes, timestamp: str) -> str:
    """The signature header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    *,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """True when the signature matches and the timestamp is within the tolerance."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body=body, timestamp=timestamp), signature or "")


def http_session(config: NotifyConfig) -> requests.Session:
    """A requests session retrying transient failures with exponential backoff."""
    retry = Retry(
        total=config.http_retries,
        connect=config.http_retries,
        read=config.http_retries,
        status=config.http_retries,
        backoff_factor=config.http_backoff_s,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"POST"}),  # safe: receivers deduplicate on the delivery id
        raise_on_status=False,
        # A long Retry-After would hold the job; the outbox schedules the next attempt instead.
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def post(
    http: requests.Session,
    endpoint: WebhookEndpoint,
    *,
    payload: dict[str, Any],
    delivery_id: str,
    attempt: int,
    timeout_s: float,
) -> Outcome:
    """POST the signed payload once (plus the session's quick retries); never raises."""
    body = body_of(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(endpoint.secret, body=body, timestamp=timestamp),
        DELIVERY_HEADER: delivery_id,
        ATTEMPT_HEADER: str(attempt),
    }
    try:
        response = http.post(endpoint.url, data=body, headers=headers, timeout=timeout_s)
    except requests.RequestException as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    if 200 <= response.status_code < 300:
        return Outcome(ok=True)
    return Outcome(
        ok=False,
        error=f"HTTP {response.status_code}: {response.text[:300]}",
        retry_after_s=_retry_after(response.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form: an HTTP date from a receiver's skewed clock is not trusted.
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
