"""The change calendar: planned work and freezes, CSV import with per-row errors, scope lookups."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.automation.levels import CHANGE_WINDOW_KINDS
from services.db.models import ChangeWindow, Element
from services.errors import InvalidInput, NotFound

KINDS = CHANGE_WINDOW_KINDS
PLANNED_WORK = ("change", "maintenance")
SCOPE_KEYS = ("domains", "regions", "elements")
CSV_COLUMNS = (
    "external_id",
    "title",
    "kind",
    "starts_at",
    "ends_at",
    "domains",
    "regions",
    "elements",
)
MAX_CSV_ROWS = 10_000
MAX_EXTERNAL_ID = 100  # the column's size


@dataclass(frozen=True)
class RowError:
    """Why one CSV row was refused (line numbers count the header as line 1)."""

    line: int
    message: str


@dataclass
class ImportResult:
    """What a CSV import did: created and updated windows, and every refused row with a reason."""

    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "created": self.created,
            "updated": self.updated,
            "errors": [{"line": e.line, "message": e.message} for e in self.errors],
        }


def _aware(value: datetime | str, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"{what} {value!r} is not an ISO 8601 time") from exc
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a time")
    if value.tzinfo is None:
        raise InvalidInput(f"{what} needs a time zone (e.g. 2026-11-26T22:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 lies before year 1 in UTC
        raise InvalidInput(f"{what} is out of range") from exc


def _scope(raw: Any) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("scope must be an object with domains, regions and/or elements")
    unknown = set(raw) - set(SCOPE_KEYS)
    if unknown:
        raise InvalidInput(f"unknown scope key(s): {', '.join(sorted(unknown))}")
    out: dict[str, list[str]] = {}
    for key in SCOPE_KEYS:
        values = raw.get(key) or []
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidInput(f"scope {key} must be a list of strings")
        cleaned = [v.strip() for v in values if v.strip()]
        if cleaned:
            out[key] = cleaned
    return out


def _no_nul(*texts: str) -> None:
    # PostgreSQL cannot store NUL in text: refuse the value instead of failing the insert.
    if any("\x00" in text for text in texts):
        raise InvalidInput("text must not contain NUL characters")


def validate_window(payload: dict[str, Any]) -> dict[str, Any]:
    """A cleaned window payload (title, kind, times, scope, external_id), or InvalidInput."""
    title = str(payload.get("title") or "").strip()
    if not title:
        raise InvalidInput("title is required")
    kind = str(payload.get("kind") or "").strip().lower()
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    if payload.get("starts_at") in (None, "") or payload.get("ends_at") in (None, ""):
        raise InvalidInput("starts_at and ends_at are required")
    starts_at = _aware(payload["starts_at"], "starts_at")
    ends_at = _aware(payload["ends_at"], "ends_at")
    if ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at")
    external_id = str(payload.get("external_id") or "").strip() or None
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise InvalidInput(f"external_id is longer than {MAX_EXTERNAL_ID} characters")
    scope = _scope(payload.get("scope"))
    _no_nul(title, external_id or "", *(v for values in scope.values() for v in values))
    return {
        "title": title[:300],
        "kind": kind,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "scope": scope,
        "external_id": external_id,
    }


def window_dict(window: ChangeWindow) -> dict[str, Any]:
    """The REST shape of a window."""
    return {
        "id": window.id,
        "external_id": window.external_id,
        "title": window.title,
        "kind": window.kind,
        "scope": window.scope or {},
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "source": window.source,
        "created_by": window.created_by,
    }


def upsert_window(
    session: Session, *, payload: dict[str, Any], actor: Actor, source: str = "api"
) -> tuple[ChangeWindow, bool]:
    """Create a window, or update the one with the same external_id; returns (window, created)."""
    clean = validate_window(payload)
    window = None
    if clean["external_id"]:
        window = session.scalar(
            select(ChangeWindow).where(ChangeWindow.external_id == clean["external_id"])
        )
    created = window is None
    before = None if created else window_dict(window)
    if created:
        window = ChangeWindow(source=source, created_by=actor.name, **clean)
        session.add(window)
    else:
        for key, value in clean.items():
            setattr(window, key, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="change_window.created" if created else "change_window.updated",
        object_type="change_window",
        object_id=window.id,
        before=before,
        after=window_dict(window),
    )
    return window, created


def create_window(
    session: Session, *, payload: dict[str, Any], actor: Actor, source: str = "api"
) -> ChangeWindow:
    """Create (or update by external_id) a change window; REST POST /api/v1/change-windows."""
    return upsert_window(session, payload=payload, actor=actor, source=source)[0]


def get_window(session: Session, *, window_id: int) -> ChangeWindow:
    """The window or NotFound."""
    window = session.get(ChangeWindow, window_id)
    if window is None:
        raise NotFound(f"change window #{window_id} does not exist")
    return window


def delete_window(session: Session, *, window_id: int, actor: Actor) -> None:
    """Remove a window (audited with what it was)."""
    window = get_window(session, window_id=window_id)
    before = window_dict(window)
    session.delete(window)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="change_window.deleted",
        object_type="change_window",
        object_id=window_id,
        before=before,
    )


def list_windows(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    kind: str | None = None,
) -> list[ChangeWindow]:
    """Windows overlapping [start, end), by start time."""
    query = select(ChangeWindow).order_by(ChangeWindow.starts_at, ChangeWindow.id)
    if start is not None:
        query = query.where(ChangeWindow.ends_at > start)
    if end is not None:
        query = query.where(ChangeWindow.starts_at < end)
    if kind is not None:
        query = query.where(ChangeWindow.kind == kind)
    return list(session.scalars(query))


def _split(cell: str | None) -> list[str]:
    # Lists inside a CSV cell are separated by ";" (a DN contains commas).
    return [part.strip() for part in (cell or "").split(";") if part.strip()]


def _rows(reader: csv.DictReader, result: ImportResult) -> Iterator[tuple[int, dict[Any, Any]]]:
    """(line, row) pairs; a line the csv module cannot read ends the import with its error."""
    number = 1
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
            result.errors.append(RowError(number, f"unreadable CSV: {exc}; rest ignored"))
            return
        yield number, row


def import_csv(session: Session, *, text: str, actor: Actor, source: str = "csv") -> ImportResult:
    """Import windows from CSV (lists split on ";"); bad rows are reported, good ones kept."""
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise InvalidInput(f"the CSV header cannot be read: {exc}") from exc
    missing = [c for c in ("title", "kind", "starts_at", "ends_at") if c not in header]
    if missing:
        raise InvalidInput(f"CSV header lacks column(s): {', '.join(missing)}")
    for number, row in _rows(reader, result):
        if number - 1 > MAX_CSV_ROWS:
            result.errors.append(RowError(number, f"more than {MAX_CSV_ROWS} rows; rest ignored"))
            break
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        payload = {
            "external_id": row.get("external_id"),
            "title": row.get("title"),
            "kind": row.get("kind"),
            "starts_at": row.get("starts_at"),
            "ends_at": row.get("ends_at"),
            "scope": {key: _split(row.get(key)) for key in SCOPE_KEYS},
        }
        try:
            # A savepoint per row: one bad row never undoes the good ones before it.
            with session.begin_nested():
                _, created = upsert_window(session, payload=payload, actor=actor, source=source)
        except InvalidInput as exc:
            result.errors.append(RowError(number, exc.message))
            continue
        if created:
            result.created += 1
        else:
            result.updated += 1
    audit.record(
        session,
        actor=actor,
        action="change_window.imported",
        object_type="change_window",
        after=result.as_dict(),
    )
    return result


def _dn_within(dn: str, scoped: str) -> bool:
    """True when `dn` is `scoped` or lies under it (a cell under its site)."""
    return dn == scoped or dn.startswith(scoped + ",")


def covers(window: ChangeWindow, *, element: Element | None, domain: str | None) -> bool:
    """True when the window's scope includes the element (an empty scope is network-wide)."""
    scope = window.scope or {}
    if not any(scope.get(k) for k in SCOPE_KEYS):
        return True
    the_domain = element.domain if element is not None else domain
    if the_domain and the_domain in scope.get("domains", []):
        return True
    if element is not None:
        if element.region and element.region in scope.get("regions", []):
            return True
        if any(_dn_within(element.dn, s) for s in scope.get("elements", [])):
            return True
        peer = (element.attributes or {}).get("peer_dn")
        if peer and any(_dn_within(peer, s) for s in scope.get("elements", [])):
            return True
    return False


def windows_affecting(
    session: Session,
    *,
    element: Element | None,
    domain: str | None,
    start: datetime,
    end: datetime | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> list[ChangeWindow]:
    """Windows of `kinds` overlapping [start, end] (or the instant start) covering the element."""
    end = end or start
    query = select(ChangeWindow).where(
        ChangeWindow.kind.in_(kinds), ChangeWindow.starts_at <= end, ChangeWindow.ends_at > start
    )
    rows = session.scalars(query.order_by(ChangeWindow.starts_at, ChangeWindow.id))
    return [w for w in rows if covers(w, element=element, domain=domain)]


def active_freezes(
    session: Session, *, element: Element | None, domain: str | None, now: datetime
) -> list[ChangeWindow]:
    """Freezes in force now that cover the element."""
    return windows_affecting(session, element=element, domain=domain, start=now, kinds=("freeze",))


def active_planned_work(
    session: Session, *, element: Element | None, domain: str | None, now: datetime
) -> list[ChangeWindow]:
    """Planned changes and maintenance in progress now that cover the element."""
    return windows_affecting(session, element=element, domain=domain, start=now, kinds=PLANNED_WORK)
