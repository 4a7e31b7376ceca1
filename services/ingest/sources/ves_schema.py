"""Validation against ONAP's schema repository (a folder laid out like the collector's etc/).

- Each request is checked against the Common Event Format schema of its API version, as
  `ves_application_config.yaml` assigns them (v5 -> 28.4.1, v7 -> 30.2.1_ONAP by default).
- stndDefined `data` is checked against the schema its `schemaReference` names, resolved
  through `externalRepo/schema-map.json` to the local 3GPP files. Only local files are
  read: a reference the map does not name is refused, never fetched.

Validators are built once per schema file (and rebuilt when the file changes).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT4

from services.ingest.sources import ves_errors as errors
from services.ingest.sources.ves_errors import VesRefusal

DEFAULT_CEF = {"v5": "CommonEventFormat_28.4.1.json", "v7": "CommonEventFormat_30.2.1_ONAP.json"}
APP_CONFIG = "ves_application_config.yaml"
SCHEMA_MAP = Path("externalRepo") / "schema-map.json"
VERSION_FIELDS = ("version", "vesEventListenerVersion")
NIC_ARRAYS = ("nicPerformanceArray", "vNicPerformanceArray")


class SchemaConfigError(RuntimeError):
    """The configured schema folder is incomplete or unreadable (an operator's problem)."""


@dataclass(frozen=True)
class Coercion:
    """A harmless deviation accepted on the way to the schema, recorded as schema drift."""

    event_index: int
    path: str
    original: Any
    accepted_as: Any
    schema: str


def _ipv4(value: object) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


def _ipv6(value: object) -> bool:
    # ipaddress accepts a zone index (fe80::1%eth2), which ONAP's collector accepts too.
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


FORMATS = FormatChecker(formats=())
FORMATS.checks("ipv4", raises=ValueError)(_ipv4)
FORMATS.checks("ipv6", raises=ValueError)(_ipv6)


def check_document(
    document: dict[str, Any], *, api_version: str, schema_dir: Path
) -> list[Coercion]:
    """Validate a request body against its CEF schema; the coercions it needed, if any."""
    name = cef_file(schema_dir, api_version)
    validator = _cef_validator(*_stamp(schema_dir / name))
    events = _events(document)
    coercions: list[Coercion] = []
    fixed_events = []
    for index, event in enumerate(events):
        fixed, found = _coerce(event, index=index, schema=validator.schema, schema_name=name)
        fixed_events.append(fixed)
        coercions += found
    checked = dict(document)
    if "eventList" in document and isinstance(document["eventList"], list):
        checked["eventList"] = fixed_events
    elif fixed_events:
        checked["event"] = fixed_events[0]
    error = best_match(validator.iter_errors(checked))
    if error is not None:
        raise VesRefusal(
            "schema_invalid",
            errors.schema_failure(f"{_path(error)}: {error.message}"),
            field=_path(error)[:100],
            facts={"schema": name},
        )
    return coercions


def check_stnd_defined(data: dict[str, Any], *, reference: str, schema_dir: Path) -> None:
    """Validate stndDefined data against the local schema its reference names."""
    stamp = _stamp(schema_dir / SCHEMA_MAP)
    repository = _repository(*stamp)
    base, _, fragment = reference.partition("#")
    if base not in repository.public_urls or not fragment.strip("/"):
        raise VesRefusal(
            "schema_reference_unresolved",
            errors.no_local_schema(reference),
            field="stndDefinedFields.schemaReference",
            facts={"schemaReference": errors.clip(reference)},
        )
    # ONAP's senders write `#components/...`; a JSON pointer needs the leading slash.
    target = f"{base}#/{fragment.lstrip('/')}"
    try:
        repository.registry.resolver().lookup(target)
        error = best_match(_stnd_validator(*stamp, target).iter_errors(data))
    except Unresolvable as exc:
        raise VesRefusal(
            "schema_reference_unresolved",
            errors.wrong_internal_reference(),
            field="stndDefinedFields.schemaReference",
            facts={"schemaReference": errors.clip(reference), "detail": errors.clip(exc)},
        ) from None
    if error is not None:
        raise VesRefusal(
            "schema_invalid",
            errors.stnd_defined_invalid(),
            field="stndDefinedFields.data",
            facts={"schemaReference": errors.clip(reference), "detail": errors.clip(error.message)},
        )


def cef_file(schema_dir: Path, api_version: str) -> str:
    """The CEF schema file serving an API version, per the collector's own configuration."""
    names = {**DEFAULT_CEF, **_configured_schemas(*_stamp(schema_dir / APP_CONFIG, optional=True))}
    name = names.get(api_version)
    if name is None or not (schema_dir / name).is_file():
        raise SchemaConfigError(f"no Common Event Format schema for {api_version} in {schema_dir}")
    return name


def _events(document: dict[str, Any]) -> list[Any]:
    if isinstance(document.get("eventList"), list):
        return list(document["eventList"])
    return [document["event"]] if "event" in document else []


def _coerce(
    event: Any, *, index: int, schema: dict[str, Any], schema_name: str
) -> tuple[Any, list[Coercion]]:
    """Accept two known real-world deviations; everything else is left to the schema.

    - A header version of a supported major release the schema's enum does not list yet
      (`4.0.2`, `7.0.2`): Beacon reads neither field, and refusing heartbeats over a minor
      release number would mark a healthy sender stale.
    - `valuesAreSuspect` sent as a JSON boolean where the schema wants "true"/"false".
    """
    if not isinstance(event, dict):
        return event, []
    found: list[Coercion] = []
    fixed = dict(event)
    header = event.get("commonEventHeader")
    if isinstance(header, dict):
        properties = (
            schema.get("definitions", {}).get("commonEventHeader", {}).get("properties", {})
        )
        new_header = dict(header)
        for name in VERSION_FIELDS:
            accepted = _same_major(header.get(name), properties.get(name, {}).get("enum"))
            if accepted is not None:
                new_header[name] = accepted
                path = f"commonEventHeader.{name}"
                found.append(Coercion(index, path, header[name], accepted, schema_name))
        fixed["commonEventHeader"] = new_header
    for block_name, block in event.items():
        if not (block_name.endswith("Fields") and isinstance(block, dict)):
            continue
        new_block = dict(block)
        for array in NIC_ARRAYS:
            items = block.get(array)
            if not isinstance(items, list):
                continue
            new_items = []
            for position, item in enumerate(items):
                if isinstance(item, dict) and isinstance(item.get("valuesAreSuspect"), bool):
                    text = "true" if item["valuesAreSuspect"] else "false"
                    path = f"{block_name}.{array}[{position}].valuesAreSuspect"
                    found.append(Coercion(index, path, item["valuesAreSuspect"], text, schema_name))
                    item = {**item, "valuesAreSuspect": text}
                new_items.append(item)
            new_block[array] = new_items
        fixed[block_name] = new_block
    return fixed, found


def _same_major(value: Any, allowed: list[Any] | None) -> str | None:
    """The newest allowed version with the same major number as `value`, if it differs."""
    if not isinstance(value, str) or not allowed or value in allowed:
        return None
    major = value.split(".", 1)[0]
    same = [v for v in allowed if isinstance(v, str) and v.split(".", 1)[0] == major]
    if not same or not all(part.isdigit() for part in value.split(".")):
        return None
    return max(same, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))


def _path(error: ValidationError) -> str:
    """`eventList[0].commonEventHeader.version` style location of a schema error."""
    text = ""
    for part in error.absolute_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(document)"


def _stamp(path: Path, *, optional: bool = False) -> tuple[str, int]:
    """A cache key for a file: its path and modification time (-1 when optional and absent)."""
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError as exc:
        if optional:
            return str(path), -1
        raise SchemaConfigError(f"cannot read {path}: {exc}") from None


@lru_cache(maxsize=16)
def _cef_validator(path: str, mtime_ns: int) -> Draft4Validator:
    del mtime_ns  # part of the cache key only
    return Draft4Validator(_load(Path(path)), format_checker=FORMATS)


@lru_cache(maxsize=8)
def _configured_schemas(path: str, mtime_ns: int) -> dict[str, str]:
    """`collector.schema.file` of ves_application_config.yaml as version -> file name."""
    if mtime_ns < 0:
        return {}
    config = _load(Path(path))
    raw = config.get("collector.schema.file") if isinstance(config, dict) else None
    try:
        table = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError as exc:
        raise SchemaConfigError(f"{path}: collector.schema.file is not JSON: {exc}") from None
    return {str(k): Path(str(v)).name for k, v in table.items()} if isinstance(table, dict) else {}


@dataclass(frozen=True)
class _Repository:
    """The mapped 3GPP schemas as one registry, keyed by their public URLs."""

    registry: Registry
    public_urls: frozenset[str]


@lru_cache(maxsize=64)
def _stnd_validator(map_path: str, mtime_ns: int, target: str) -> Draft4Validator:
    registry = _repository(map_path, mtime_ns).registry
    return Draft4Validator({"$ref": target}, registry=registry, format_checker=FORMATS)


@lru_cache(maxsize=4)
def _repository(map_path: str, mtime_ns: int) -> _Repository:
    del mtime_ns
    root = Path(map_path).parent.resolve()
    entries = _load(Path(map_path))
    if not isinstance(entries, list):
        raise SchemaConfigError(f"{map_path} is not a list of publicURL/localURL entries")
    resources = []
    for entry in entries:
        public, local = entry.get("publicURL"), entry.get("localURL")
        if not (isinstance(public, str) and isinstance(local, str)):
            raise SchemaConfigError(f"{map_path}: entry without publicURL/localURL: {entry}")
        file = (root / local).resolve()
        if not file.is_relative_to(root):
            raise SchemaConfigError(f"{map_path}: {local} points outside the schema folder")
        resources.append((public, DRAFT4.create_resource(_load(file))))
    # No `retrieve`: a reference to anything unmapped is unresolvable, never downloaded.
    registry = Registry().with_resources(resources)
    return _Repository(registry=registry, public_urls=frozenset(p for p, _ in resources))


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SchemaConfigError(f"cannot load schema file {path}: {exc}") from None
