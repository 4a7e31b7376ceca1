"""The 3GPP PM XML parser's names, limits and results, and its rules that need no parser.

See `services.ingest.sources.pm_xml` for what the rules are and why.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.ingest.records import Rejected

NAMESPACES = {
    "measCollecFile": (
        "32.435",
        "http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec",
    ),
    "measDataFile": ("28.532", "http://www.3gpp.org/ftp/specs/archive/28_series/28.532#measData"),
}
# 32.435 names the measured network element managedElement, 28.532 measEntity; some
# producers write measuredEntity. Any of them satisfies either format.
ENTITY_TAGS = frozenset({"managedElement", "measEntity", "measuredEntity"})
# No value: blank, or NIL (32.435) / NULL (28.532) where a counter has nothing to report.
NO_VALUE = frozenset({"", "NIL", "NULL"})
MAX_NOTES = 50
# The elements plain measValues and runs of plain <r> are collapsed into before parsing
# (see pm_xml_runs); the random part keeps a file from ever containing one of its own.
_TOKEN = secrets.token_hex(6)
BATCH_TAG = f"beaconValues{_TOKEN}"
RUN_TAG = f"beaconRun{_TOKEN}"

# Hardened lxml parser options: no DTD, no entity expansion, no network, libxml2's size
# limits on (huge_tree=False). Comments and PIs are dropped so text is never split by them.
PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    # Whitespace between elements is layout; a blank value reads as empty either way.
    "remove_blank_text": True,
    "collect_ids": False,
}
# ISO 8601 duration with days, hours, minutes and seconds; nine digits each at most.
_DURATION = re.compile(
    r"P(?:(?P<d>\d{1,9})D)?"
    r"(?:T(?:(?P<h>\d{1,9})H)?(?:(?P<m>\d{1,9})M)?(?:(?P<s>\d{1,9}(?:\.\d{1,9})?)S)?)?"
)
_RDN_SEPARATOR = re.compile(r"(?<!\\),")


class PayloadRefused(Exception):
    """The whole payload is refused: one reason code for the file."""

    def __init__(
        self, code: str, error: str, field: str | None = None, *, file_format: str | None = None
    ) -> None:
        super().__init__(error)
        self.code = code
        self.error = error
        self.field = field
        self.format = file_format


class Notes(list[str]):
    """What the parser noticed: distinct sentences, capped so a bad file cannot flood meta."""

    def add(self, text: str) -> None:
        """Keep `text` once (cut short: it may quote the file); past the cap say so."""
        text = short(text, 200)
        if text in self:
            return
        if len(self) < MAX_NOTES:
            self.append(text)
        elif len(self) == MAX_NOTES:
            self.append("further notes left out")


@dataclass
class Walk:
    """Everything read from one document: values in file order and per-measValue context."""

    name: str
    notes: Notes
    format: str | None = None
    vendor: str | None = None
    dn_prefix: str | None = None
    file_format_version: str | None = None
    begin_time: datetime | None = None
    end_time: datetime | None = None
    values: list[str] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)
    # (offset, length) of the values of each measValue holding a comma (histograms).
    histograms: list[tuple[int, int]] = field(default_factory=list)
    # Per measValue: how many values, and the context they share.
    counts: list[int] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    period_index: list[int] = field(default_factory=list)
    granularity: list[int | None] = field(default_factory=list)
    sw_versions: list[str | None] = field(default_factory=list)
    suspects: list[bool] = field(default_factory=list)
    periods: list[datetime | None] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)
    meas_infos: int = 0


@dataclass
class MeasInfo:
    """The measInfo being read: its id, period and counters by position."""

    info_id: str | None = None
    period: int | None = None
    granularity: int | None = None
    types: dict[str, str | None] = field(default_factory=dict)
    by_number: dict[int, str | None] = field(default_factory=dict)
    # Some position names no counter (empty measType, or declared twice).
    ambiguous: bool = False


def split_tag(tag: Any) -> tuple[str | None, str]:
    """`{namespace}local` -> (namespace, local); (None, local) without a namespace."""
    if not isinstance(tag, str):
        return None, ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def utc(text: str | None) -> datetime | None:
    """xs:dateTime with a UTC offset, in UTC; None when unreadable or without an offset."""
    try:
        stamp = datetime.fromisoformat((text or "").strip())
        # Year 1 or 9999 with an offset falls outside what datetime can hold in UTC.
        return None if stamp.tzinfo is None else stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def seconds(text: str) -> int | None:
    """ISO 8601 duration (PT900S, PT15M, PT1H, P1D) in whole seconds."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return int(parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"])


def position_number(text: str | None) -> int | None:
    """A p attribute as a number ("01" -> 1); None unless it is up to nine ASCII digits."""
    text = (text or "").strip()
    if not text or len(text) > 9 or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def is_dn(text: str) -> bool:
    """A sequence of `Type=value` RDNs (the 3GPP TS 32.300 string form)."""
    parts = _RDN_SEPARATOR.split(text)
    return all("=" in part and part.partition("=")[0].strip() for part in parts)


def join_dn(prefix: str | None, ldn: str) -> str:
    """Full DN = dnPrefix + "," + measObjLdn, unless the LDN is already absolute."""
    ldn = ldn.strip()
    if not ldn or not prefix:
        return ldn
    compact_ldn = ldn.replace(" ", "").lower()
    compact_prefix = prefix.replace(" ", "").lower()
    if compact_ldn == compact_prefix or compact_ldn.startswith(compact_prefix + ","):
        return ldn
    # A DC= first RDN is a global (DNS) root: the producer already wrote a full DN.
    if compact_ldn.startswith("dc="):
        return ldn
    return f"{prefix},{ldn}"


def short(text: str, limit: int = 300) -> str:
    """`text` cut to `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
