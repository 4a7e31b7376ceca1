"""What the alarm parsers share: decoding, RFC 3339 times, refusals and the parsed result."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from services.ingest.reasons import REASONS
from services.ingest.records import Rejected

# Deeper JSON is no alarm: refusing it keeps every later walk over the payload bounded.
MAX_DEPTH = 64
# Quarantined text of a body that is not JSON; the exact bytes stay in the raw batch.
MAX_KEPT_BODY = 65_536
# Column sizes of QuarantinedRecord: longer values would fail on PostgreSQL.
MAX_FIELD = 100
_REPLACEMENT = "\ufffd"


class PayloadRefused(Exception):
    """The whole body is refused; `rejected` is its quarantine record."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(rejected.reason)
        self.rejected = rejected


def _rfc3339(value: Any) -> datetime:
    """An RFC 3339 timestamp as aware UTC; a time without a zone is taken as UTC."""
    if not isinstance(value, str):
        raise PydanticCustomError("bad_timestamp", "not an RFC 3339 timestamp string")
    text = value.strip()
    try:
        if len(text) < 11 or text[10] not in "Tt ":
            raise ValueError("no time of day")
        moment = datetime.fromisoformat(text.replace("t", "T").replace("z", "Z"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise PydanticCustomError("bad_timestamp", "not an RFC 3339 timestamp") from None
    return moment


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


def text_field(max_length: int, *, required: bool = True) -> Any:
    """A string type with a length limit (non-empty when required)."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=int(required), max_length=max_length),
    ]


@dataclass(frozen=True)
class AlarmFacts:
    """An alarm as one notification describes it; `key` identifies it for later clears."""

    key: str
    severity: str
    raised_at: datetime
    element_ref: str | None = None
    text: str = ""
    probable_cause: str | None = None
    specific_problem: str | None = None
    external_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlarmEvent:
    """One accepted item of a payload: raise, clear by fingerprint, or clear by pattern."""

    index: int
    action: Literal["raise", "clear"]
    facts: AlarmFacts | None = None
    cleared_at: datetime | None = None
    # TMF642 clears match attributes instead of a fingerprint; `anchor` must be among them.
    pattern: dict[str, str] | None = None
    anchor: str | None = None


@dataclass
class ParsedAlarms:
    """A parsed alarm payload: its source, accepted items and refusals."""

    kind: str
    source: str
    events: list[AlarmEvent] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    refused_whole: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def received(self) -> int:
        """Items in the payload: each is an event or a refusal, never both."""
        return len(self.events) + len(self.rejected)


def decode_json(raw: bytes) -> Any:
    """The body as JSON with every string safe to store; PayloadRefused when it is not JSON."""
    try:
        value = json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
        return clean(value)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors.
        reason = f"the body cannot be read as JSON: {_short(exc)}"
        raise PayloadRefused(
            Rejected("malformed_payload", record=_kept_body(raw), reason=reason)
        ) from None


def clean(value: Any, depth: int = 0) -> Any:
    """A copy whose strings PostgreSQL can store: NUL and lone surrogates replaced."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, list):
        return [clean(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_clean_text(str(k)): clean(v, depth + 1) for k, v in value.items()}
    return value


def refusal(error: ValidationError, *, record: dict[str, Any], prefix: str = "") -> Rejected:
    """A pydantic error as a quarantine refusal with the most telling reason code."""
    problems = error.errors(include_url=False)
    ranked = sorted(problems, key=lambda p: _RANK.get(_code(p), len(_RANK)))
    first = ranked[0]
    # `field` is the path inside the item (for grouping); the reason also says which item.
    where = ".".join(str(part) for part in first["loc"])
    label = ".".join(part for part in (prefix, where) if part) or "payload"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    reason = f"{label}: {first['msg']}{more}"
    return Rejected(_code(first), record=record, reason=reason, field=where[:MAX_FIELD] or None)


def refused(
    code: str, reason: str, *, record: dict[str, Any], where: str | None = None
) -> Rejected:
    """A refusal the parser decided itself."""
    return Rejected(code, record=record, reason=reason, field=where[:MAX_FIELD] if where else None)


def source_part(value: Any, *, max_length: int) -> str | None:
    """A sender-given name usable in a source name, or None."""
    if not isinstance(value, str):
        return None
    # Stripped like the models strip, so the name matches the validated value.
    text = value.strip()
    return text[:max_length] if text else None


def clip(value: Any, max_length: int) -> str | None:
    """A label value cut to a column's size (None when empty)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:max_length] if text else None


_RANK = {"missing_field": 0, "bad_timestamp": 1, "schema_invalid": 2}


def _code(problem: Any) -> str:
    kind = str(problem["type"])
    if kind == "missing" or (
        kind in ("string_too_short", "too_short")
        and (problem.get("ctx") or {}).get("min_length") == 1
    ):
        return "missing_field"
    return kind if kind in REASONS else "schema_invalid"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {text[:40]}")
    return number


def _clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", _REPLACEMENT)
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        text = "".join(_REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def _kept_body(raw: bytes) -> dict[str, Any]:
    text = _clean_text(raw[:MAX_KEPT_BODY].decode("utf-8", "replace"))
    return {"body": text, "truncated": len(raw) > MAX_KEPT_BODY, "size": len(raw)}


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
