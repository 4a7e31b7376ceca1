"""Models of alarms from fault management and of what an alarm delivery did."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.alarms import SEVERITIES
from services.api.schemas.common import MAX_ID, PageInfo, PageQuery, UtcDateTime

AlarmState = Literal["active", "cleared"]


class AlarmQuery(PageQuery):
    """Filters of the alarm list; all given filters must match."""

    state: AlarmState | None = Field(default=None, description="`active` lists open alarms")
    element: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Element DN or name, or the reference the sender gave (e.g. `instance`)",
    )


class AlarmPath(BaseModel):
    """An alarm in the URL."""

    alarm_id: int = Field(ge=1, le=MAX_ID, description="The alarm's id")


class AlarmOut(BaseModel):
    """An alarm from fault management; cleared alarms are kept, not deleted."""

    id: int
    state: AlarmState
    severity: str = Field(description=f"One of {', '.join(SEVERITIES)}")
    element_ref: str | None = Field(description="The element as the sender named it")
    element_id: int | None = Field(description="The known element it resolved to, if any")
    text: str
    probable_cause: str | None = Field(description="X.733 probable cause, or `alertname`")
    specific_problem: str | None
    raised_at: UtcDateTime
    cleared_at: UtcDateTime | None
    source: str | None = Field(description="`alertmanager:<receiver>` or `tmf642:<system>`")
    external_id: str | None = Field(description="The sender's id or fingerprint")
    labels: dict[str, Any] = Field(description="Identifying labels or TMF642 attributes")


class AlarmDetail(AlarmOut):
    """An alarm with the last notification about it, as received."""

    raw: dict[str, Any]


class AlarmPage(PageInfo):
    """One page of alarms, newest raised first."""

    items: list[AlarmOut]


class AlarmProblem(BaseModel):
    """Why one item of a delivery was quarantined."""

    index: int | None = Field(description="Position of the item in the payload")
    reason_code: str
    field: str | None
    reason: str


class AlarmIngestSummary(BaseModel):
    """What one alarm delivery did; received = accepted + duplicates + quarantined."""

    batch_id: int = Field(description="The stored raw batch")
    source: str
    received: int = Field(description="Items: alerts, alarms or clear patterns")
    accepted: int = Field(description="New facts: raised, updated, cleared, unmatched clears")
    duplicates: int = Field(description="Repeats and late copies of facts already stored")
    quarantined: int = Field(description="Refused items, kept with their reason")
    raised: int
    updated: int = Field(description="Open alarms whose severity or text changed")
    cleared: int = Field(description="Alarms cleared (a TMF642 pattern may clear several)")
    unmatched_clears: int = Field(description="Clears for which no alarm was open")
    truncated_alerts: int = Field(description="Alerts the sender left out (max_alerts)")
    reasons: dict[str, int] = Field(description="Quarantined items per reason code")
    problems: list[AlarmProblem] = Field(description="The first refusals, with reasons")


def request_body(model: type[BaseModel], *, description: str) -> dict[str, Any]:
    """An OpenAPI requestBody for a JSON body the view reads itself (schema inlined)."""
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": inline_schema(model)}},
    }


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every `$defs` reference written out in place."""
    schema = model.model_json_schema(mode="validation")
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            # The payload models are not recursive, so this terminates.
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return resolve({**copy.deepcopy(definitions[name]), **siblings})
        return {key: resolve(value) for key, value in node.items()}

    return resolve(schema)
