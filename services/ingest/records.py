"""What parsers hand to the pipeline: records as a frame, refusals, and notes on the payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Columns every telemetry record has; parsers may add vendor, sw_version, unit, suspect.
RECORD_COLUMNS = ("dn", "kpi", "period_end", "value")


@dataclass(frozen=True)
class Rejected:
    """A record (or a whole payload) a parser refused: kept with its reason code."""

    reason_code: str
    record: dict[str, Any]
    reason: str | None = None
    field: str | None = None


@dataclass
class ParsedPayload:
    """A parser's result: records to validate, refusals, and what it noticed on the way."""

    records: pd.DataFrame
    rejected: list[Rejected] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def received(self) -> int:
        return len(self.records) + len(self.rejected)


def empty_records() -> pd.DataFrame:
    """A frame with the record columns and no rows."""
    return pd.DataFrame({column: pd.Series(dtype="object") for column in RECORD_COLUMNS})
