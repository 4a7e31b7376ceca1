"""Reading one VES request: JSON, shape, CEF schema, typed fields and the collector's rules.

The request is accepted or refused as a whole, as ONAP's collector does: the first rule it
breaks becomes a `VesRefusal` carrying Beacon's reason code and the VES error answer.
Checks run in this order: API version, JSON, body shape, CEF schema (when a schema folder
is configured), typed header fields, stndDefinedNamespace present, one domain (and one
namespace) per batch, typed domain fields, stndDefined data against its schemaReference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.ingest.sources import ves_errors as errors
from services.ingest.sources.ves_errors import VesRefusal
from services.ingest.sources.ves_models import (
    BLOCK_MODELS,
    BLOCKS,
    KNOWN_DOMAINS,
    OPTIONAL_BLOCKS,
    CommonEventHeader,
    StndDefinedFields,
)
from services.ingest.sources.ves_schema import Coercion, check_document, check_stnd_defined

API_MAJOR = {"v5": "5", "v7": "7"}
M = TypeVar("M", bound=BaseModel)
NOT_CHECKED = "not checked"
MAX_DEPTH = 64


@dataclass(frozen=True)
class VesEvent:
    """One accepted event: the object as received plus its typed header and fields."""

    index: int
    raw: dict[str, Any]
    header: CommonEventHeader
    block: BaseModel | None
    schema_check: str | None = None

    @property
    def domain(self) -> str:
        return self.header.domain

    def summary(self) -> dict[str, Any]:
        """Flat facts identifying the event, kept when the event itself is quarantined."""
        facts: dict[str, Any] = {
            "event_index": self.index,
            "eventId": self.header.eventId,
            "domain": self.domain,
            "eventName": self.header.eventName,
            "sourceName": self.header.sourceName,
            "reportingEntityName": self.header.reportingEntityName,
            "lastEpochMicrosec": self.header.lastEpochMicrosec,
        }
        if isinstance(self.block, StndDefinedFields):
            facts["stndDefinedNamespace"] = self.header.stndDefinedNamespace
            facts["schemaReference"] = self.block.schemaReference
        if self.schema_check is not None:
            facts["schema_check"] = self.schema_check
        return facts


@dataclass(frozen=True)
class VesRequest:
    """An accepted request: its API version, endpoint, events and recorded coercions."""

    api_version: str
    batch: bool
    events: tuple[VesEvent, ...]
    coercions: tuple[Coercion, ...] = ()

    @property
    def domain(self) -> str:
        return self.events[0].domain


def parse_request(
    body: bytes, *, api_version: str, batch: bool, schema_dir: Path | None
) -> VesRequest:
    """The request's events, or VesRefusal naming the first rule the payload breaks."""
    facts: dict[str, Any] = {
        "api_version": errors.clip(api_version, 40),  # from the URL: any text at all
        "endpoint": "eventBatch" if batch else "event",
    }
    try:
        if api_version not in API_MAJOR:
            facts.update(_sniff(body))
            raise VesRefusal("unsupported_format", errors.unsupported_version(api_version))
        document = decode(body)
        facts.update(identify(document))
        return _parse(document, api_version=api_version, batch=batch, schema_dir=schema_dir)
    except VesRefusal as refusal:
        refusal.facts = {**facts, **refusal.facts}
        raise


def parse_stored(payload: bytes) -> VesRequest:
    """A stored body (accepted once) read again: without schemas, its API version taken
    from the events' vesEventListenerVersion (7.x), else 5.x; VesRefusal if unreadable."""
    document = decode(payload)
    batch = "eventList" in document
    events = document.get("eventList") if batch else [document.get("event")]
    first = events[0] if isinstance(events, list) and events else None
    header = first.get("commonEventHeader") if isinstance(first, dict) else None
    listener = header.get("vesEventListenerVersion") if isinstance(header, dict) else None
    version = "v7" if str(listener or "").startswith("7") else "v5"
    return parse_request(payload, api_version=version, batch=batch, schema_dir=None)


def decode(body: bytes) -> Any:
    """Strict JSON: UTF-8, finite numbers, no NaN/Infinity, no NUL or lone surrogates."""
    try:
        document = json.loads(
            body.decode("utf-8-sig"), parse_constant=_no_constant, parse_float=_finite
        )
    except RecursionError:
        raise _malformed("the JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed(str(exc)) from None
    if not isinstance(document, dict):
        raise _malformed(f"the body is a JSON {type(document).__name__}, not an object")
    _check_strings(document)
    return document


def identify(document: dict[str, Any]) -> dict[str, Any]:
    """Best-effort facts about a (possibly invalid) body: first event's names, event count."""
    events = document.get("eventList")
    first = events[0] if isinstance(events, list) and events else document.get("event")
    facts: dict[str, Any] = {"events": len(events) if isinstance(events, list) else 1}
    header = first.get("commonEventHeader") if isinstance(first, dict) else None
    if isinstance(header, dict):
        for name in ("eventId", "domain", "sourceName", "reportingEntityName"):
            if isinstance(header.get(name), str):
                facts[name] = errors.clip(header[name], 200)
    return facts


def _sniff(body: bytes) -> dict[str, Any]:
    """Who sent a body Beacon will not read further (empty when it is not even JSON)."""
    try:
        return identify(decode(body))
    except VesRefusal:
        return {}


def _parse(
    document: dict[str, Any], *, api_version: str, batch: bool, schema_dir: Path | None
) -> VesRequest:
    raw_events = _shape(document, batch=batch)
    coercions = (
        check_document(document, api_version=api_version, schema_dir=schema_dir)
        if schema_dir is not None
        else []
    )
    prefixes = [f"eventList[{i}]" if batch else "event" for i in range(len(raw_events))]
    headers = [
        _header(event, prefix=prefix, api_version=api_version)
        for event, prefix in zip(raw_events, prefixes, strict=True)
    ]
    _batch_rules(headers)
    events = tuple(
        _event(index, raw, header, prefix=prefix, schema_dir=schema_dir)
        for index, (raw, header, prefix) in enumerate(
            zip(raw_events, headers, prefixes, strict=True)
        )
    )
    return VesRequest(api_version, batch, events, tuple(coercions))


def _shape(document: dict[str, Any], *, batch: bool) -> list[dict[str, Any]]:
    key, other = ("eventList", "event") if batch else ("event", "eventList")
    if other in document:
        raise _schema(f"{other} is not accepted here; this endpoint takes {key}")
    value = document.get(key)
    if value is None:
        raise VesRefusal("missing_field", errors.missing_input(key, empty=False), field=key)
    if not batch:
        if not isinstance(value, dict):
            raise _schema("event must be a JSON object")
        return [value]
    if not isinstance(value, list):
        raise _schema("eventList must be a JSON array")
    if not value:
        raise VesRefusal("missing_field", errors.missing_input(key, empty=True), field=key)
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _schema(f"eventList[{index}] must be a JSON object")
    return value


def _header(event: dict[str, Any], *, prefix: str, api_version: str) -> CommonEventHeader:
    path = f"{prefix}.commonEventHeader"
    raw = event.get("commonEventHeader")
    if raw is None:
        raise VesRefusal("missing_field", errors.missing_input(path, empty=False), field=path)
    if not isinstance(raw, dict):
        raise _schema(f"{path} must be a JSON object")
    header = _typed(CommonEventHeader, raw, path=path)
    if header.domain not in KNOWN_DOMAINS:
        raise _schema(f"{path}.domain: {header.domain!r} is not a VES domain")
    listener = (header.vesEventListenerVersion or "").strip()
    if listener and listener.split(".", 1)[0] != API_MAJOR[api_version]:
        raise _schema(
            f"{path}.vesEventListenerVersion: {listener!r} does not belong to API {api_version}"
        )
    if header.domain == "stndDefined":
        namespace = header.stndDefinedNamespace
        if namespace is None or not namespace.strip():
            field = f"{path}.stndDefinedNamespace"
            error = errors.missing_input(field, empty=namespace is not None)
            raise VesRefusal("missing_field", error, field=field[:100])
    return header


def _batch_rules(headers: list[CommonEventHeader]) -> None:
    """The collector's own rules: one domain per batch, one namespace per stndDefined batch."""
    domains = {h.domain for h in headers}
    if len(domains) > 1:
        raise VesRefusal(
            "mixed_domains",
            errors.mixed_domains(),
            field="commonEventHeader.domain",
            facts={"domains": ", ".join(sorted(domains))},
        )
    namespaces = {h.stndDefinedNamespace for h in headers if h.domain == "stndDefined"}
    if len(namespaces) > 1:
        raise VesRefusal(
            "mixed_namespaces",
            errors.mixed_namespaces(),
            field="commonEventHeader.stndDefinedNamespace",
            facts={"namespaces": ", ".join(sorted(str(n) for n in namespaces))},
        )


def _event(
    index: int,
    raw: dict[str, Any],
    header: CommonEventHeader,
    *,
    prefix: str,
    schema_dir: Path | None,
) -> VesEvent:
    block_key = BLOCKS.get(header.domain)
    if block_key is None:
        return VesEvent(index, raw, header, None)
    path = f"{prefix}.{block_key}"
    content = raw.get(block_key)
    if content is None:
        if header.domain in OPTIONAL_BLOCKS:
            return VesEvent(index, raw, header, None)
        raise VesRefusal("missing_field", errors.missing_input(path, empty=False), field=path)
    if not isinstance(content, dict):
        raise _schema(f"{path} must be a JSON object")
    block = _typed(BLOCK_MODELS[header.domain], content, path=path)
    check = None
    if isinstance(block, StndDefinedFields):
        check = _stnd_defined_check(block, schema_dir=schema_dir)
    return VesEvent(index, raw, header, block, check)


def _stnd_defined_check(block: StndDefinedFields, *, schema_dir: Path | None) -> str:
    """Validate the data when a schema folder is configured; say what was checked."""
    reference = (block.schemaReference or "").strip()
    if schema_dir is None:
        return f"{NOT_CHECKED}: BEACON_VES_SCHEMA_DIR is not set"
    if not reference:
        return f"{NOT_CHECKED}: no schemaReference"
    check_stnd_defined(block.data, reference=reference, schema_dir=schema_dir)
    return "passed"


def _typed(model: type[M], raw: dict[str, Any], *, path: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = path + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        )
        if first["type"] in ("missing", "string_too_short"):
            error = errors.missing_input(where, empty=first["type"] == "string_too_short")
            raise VesRefusal("missing_field", error, field=where[:100]) from None
        raise _schema(f"{where}: {first['msg']}", field=where) from None


def _check_strings(document: Any) -> None:
    """Refuse NUL, lone surrogates (no database stores them) and absurd nesting."""
    stack = [(document, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            # VES events are a few levels deep; validators and encoders recurse per level.
            raise _malformed(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise _malformed("strings must not contain NUL (U+0000)")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _malformed("strings must not contain lone surrogates") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _malformed(detail: str) -> VesRefusal:
    return VesRefusal("malformed_payload", errors.malformed(detail))


def _schema(detail: str, *, field: str | None = None) -> VesRefusal:
    return VesRefusal(
        "schema_invalid", errors.schema_failure(detail), field=(field or "")[:100] or None
    )
