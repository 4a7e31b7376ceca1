"""The change calendar: planned work and freezes that guardrails respect; JSON or CSV in."""

from __future__ import annotations

import json as jsonlib
from typing import Any

from flask import request
from pydantic import ValidationError

from services.api.blueprint import api, endpoint
from services.api.errors import (
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
    invalid_input,
)
from services.api.schemas.trust import (
    ChangeWindowDeleted,
    ChangeWindowIn,
    ChangeWindowList,
    ChangeWindowOut,
    ChangeWindowPath,
    ChangeWindowPosted,
    ChangeWindowQuery,
    ImportOut,
)
from services.api.security import caller
from services.auth import ENGINEER_ROLES, Scope
from services.automation import change_windows
from services.web.context import beacon

TAGS = ["automation"]
MAX_BODY = 2 * 1024 * 1024
CSV_TYPES = ("text/csv", "application/csv")


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its $defs put in place (raw bodies have no components)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.rsplit("/", 1)[-1]]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


RAW_BODY = {
    "required": True,
    "description": "One window as JSON, or many as CSV with a header row: external_id, title, "
    "kind, starts_at, ends_at, domains, regions, elements (lists inside a cell separated by "
    '";"). A CSV import keeps the good rows and reports every refused one.',
    "content": {
        "application/json": {"schema": _inline(ChangeWindowIn.model_json_schema())},
        "text/csv": {"schema": {"type": "string"}},
    },
}


@api.get("/change-windows")
@endpoint(scope=Scope.READ, resp=ChangeWindowList, tags=TAGS)
def get_change_windows(query: ChangeWindowQuery) -> ChangeWindowList:
    """Windows overlapping [start, end), by start time; all of them without a period."""
    with beacon().db.session() as session:
        windows = change_windows.list_windows(
            session, start=query.start, end=query.end, kind=query.kind
        )
        items = [ChangeWindowOut.model_validate(change_windows.window_dict(w)) for w in windows]
    return ChangeWindowList(items=items)


@api.post("/change-windows")
@endpoint(
    scope=Scope.ACT,
    roles=ENGINEER_ROLES,
    resp=ChangeWindowPosted,
    status=201,
    errors=(400, 413, 415),
    tags=TAGS,
    raw_body=RAW_BODY,
)
def post_change_windows() -> tuple[ChangeWindowPosted, int]:
    """Create a window (JSON; the same external_id updates it) or import a CSV calendar,
    answering created and updated counts and each refused row with its line and reason."""
    if (request.content_length or 0) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY // 1024} KiB")
    actor = caller().actor()
    kind = (request.mimetype or "").lower()
    payload = request.get_data(cache=False)
    if len(payload) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY // 1024} KiB")
    if kind in CSV_TYPES:
        try:
            text = payload.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedBody("the CSV is not UTF-8 text") from exc
        with beacon().db.session(write=True) as session:
            result = change_windows.import_csv(session, text=text, actor=actor, source="api-csv")
        return ChangeWindowPosted(ImportOut.model_validate(result.as_dict())), 201
    if kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType("send application/json (one window) or text/csv (a calendar)")
    try:
        raw = jsonlib.loads(payload or b"null")
    except ValueError as exc:
        raise MalformedBody("the request body is not valid JSON") from exc
    except RecursionError:
        raise MalformedBody("the request body is nested too deeply") from None
    try:
        window_in = ChangeWindowIn.model_validate(raw)
    except ValidationError as error:
        raise invalid_input(error, location="body") from None
    with beacon().db.session(write=True) as session:
        window = change_windows.create_window(
            session, payload=window_in.model_dump(), actor=actor, source="api"
        )
        body = ChangeWindowOut.model_validate(change_windows.window_dict(window))
    return ChangeWindowPosted(body), 201


@api.delete("/change-windows/<int:window_id>")
@endpoint(scope=Scope.ACT, roles=ENGINEER_ROLES, resp=ChangeWindowDeleted, errors=(404,), tags=TAGS)
def delete_change_window(path: ChangeWindowPath) -> ChangeWindowDeleted:
    """Remove a window (audited with what it was)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        before = change_windows.window_dict(
            change_windows.get_window(session, window_id=path.window_id)
        )
        change_windows.delete_window(session, window_id=path.window_id, actor=actor)
    return ChangeWindowDeleted.model_validate({**before, "deleted": True})
