"""3GPP file-based PM: TS 32.435 `measCollecFile` and TS 28.532 `measDataFile`, plain or gzip.

`parse_pm_xml(payload, name=...)` turns one file into records (dn, kpi, period_end, value,
vendor, sw_version, suspect, granularity_s), refusals and notes (`meta["notes"]`). It never
raises: a file it cannot read becomes one refusal with a reason code, so counts stay exact.
The file is parsed as a stream (hardened lxml iterparse) and read elements are released.
Plain measValues and runs of plain `<r>` are first collapsed into far fewer elements
(`pm_xml_runs`), which makes parsing several times faster and changes nothing else.

Rules:
- One record per value (`<r>` or an item of `measResults`). The counter is the `measType`
  with the value's `p` (or the name at the same position of `measTypes`), exactly as in
  the file; counter_mappings maps it to a KPI later, unmapped ones are quarantined as
  unknown_counter and can be replayed. The value stays the file's string.
- Object: dn = dnPrefix + "," + measObjLdn (TS 32.300: DN prefix + local DN). The LDN is
  used alone when the header has no dnPrefix, when the LDN already starts with the prefix
  or with a DC= root, and when dnPrefix is not a DN (e.g. "some dnPrefix"; noted). The
  managedElement localDn is not part of the object's name.
- Period end: granPeriod endTime in UTC; a time without a UTC offset is ambiguous and left
  empty (the pipeline quarantines those values as bad_timestamp). granularity_s from its
  ISO 8601 duration (PT900S), empty when unreadable (noted).
- Vendor from fileHeader vendorName; sw_version from managedElement / measEntity swVersion
  (each measData has its own).
- Blank values, NIL (32.435) and NULL (28.532) become an empty value: the pipeline
  quarantines them as missing_value. An empty measResults, like a measValue without `<r>`,
  reports nothing (noted).
- Histogram (PDF) counters, values like "1,0,5": one record per bin named
  `<counter>.bin<i>` with i from 0, so each bin can be mapped on its own; unmapped bins
  are quarantined as unknown_counter and replayable. An empty bin is a blank value.
- suspect true (or 1): the values are kept with suspect=True (stored, flagged, trusted
  less). An unreadable flag also counts as suspect (noted).
- A value whose p names no measType (or one declared twice for different counters) is
  refused as unknown_counter_position ("01" reads as 1); when measResults and measTypes
  differ in length every value of that measValue is refused as result_count_mismatch (a
  missing value would shift all the others). Unknown elements inside a measValue are
  named in the notes.
- Anything before the XML declaration that is only whitespace, byte-order marks,
  processing instructions (e.g. an xml-stylesheet line) or comments is removed and noted;
  other content there leaves the file malformed. Stylesheets are never fetched or applied.
- Refused outright (one refusal for the file, naming file, error and the first 200
  characters): a DOCTYPE (unsafe_xml, found before parsing; the parser also has DTDs,
  entity expansion and network access off), a root element that does not start within the
  first 64 KiB (malformed_payload: the DTD check could not see it), XML that is not
  well-formed or is truncated (malformed_payload), another root element or a root in the
  other format's namespace (unsupported_format), a UTF-16/32 payload (unsupported_format:
  PM files are UTF-8; other ASCII-based encodings they declare are read), a missing
  fileHeader or a measData without managedElement / measEntity (missing_field: the schema
  requires both), gzip that is corrupt (malformed_payload), and content past `max_bytes`
  (payload_too_large; gzip is inflated in chunks as the parser reads, so a bomb stops at
  the limit).
- A file with a header and no measData is valid (the schema allows it): zero records, noted.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from typing import Any

import numpy as np
import pandas as pd

from services.ingest.records import ParsedPayload, Rejected
from services.ingest.sources.pm_xml_rules import NO_VALUE, Notes, PayloadRefused, Walk
from services.ingest.sources.pm_xml_runs import CHUNK_BYTES, Collapsed
from services.ingest.sources.pm_xml_walk import walk_document

MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024
HEAD_BYTES = 64 * 1024
COLUMNS = ("dn", "kpi", "period_end", "value", "vendor", "sw_version", "suspect", "granularity_s")

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_DECLARATION = re.compile(rb"<\?xml[\s?]")
_ELEMENT = re.compile(rb"<[^!?/\s]")
# Whitespace, processing instructions and comments: all XML allows before the root.
# Atomic and possessive, so a crafted prolog cannot make the match backtrack.
_MISC = re.compile(rb"(?>\s+|<\?.*?\?>|<!--.*?-->)*+", re.DOTALL)


def parse_pm_xml(
    payload: bytes, *, name: str = "", max_bytes: int = MAX_DECOMPRESSED_BYTES
) -> ParsedPayload:
    """Records, refusals and notes of one PM XML file (plain or gzip); never raises."""
    return parse(payload, name=name, max_bytes=max_bytes)


def parse(
    payload: bytes,
    *,
    name: str = "",
    max_bytes: int = MAX_DECOMPRESSED_BYTES,
    collapse: bool = True,
) -> ParsedPayload:
    """`parse_pm_xml`, with run collapsing optional (off only to check it changes nothing)."""
    notes = Notes()
    stream: _Stream | None = None
    try:
        stream = _open(payload, max_bytes=max_bytes, notes=notes)
        stream.pending = _repair_prolog(stream.head, notes)
        walk = walk_document(Collapsed(stream) if collapse else stream, name=name, notes=notes)
    except PayloadRefused as refusal:
        head = stream.head if stream is not None else payload[:HEAD_BYTES]
        return _refused(refusal, name=name, head=head, notes=notes)
    records, histograms = _frame(walk)
    meta = _meta(walk, histograms)
    return ParsedPayload(records=records, rejected=walk.rejected, meta=meta)


class _Stream:
    """The payload as a file for lxml: a repaired head first, then the rest, size-capped."""

    def __init__(self, source: Any, *, max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.total = 0
        self.head = self._take(HEAD_BYTES)
        self.pending = self.head

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (lxml asks for small chunks)."""
        size = CHUNK_BYTES if size is None or size < 0 else size
        if self.pending:
            chunk, self.pending = self.pending[:size], self.pending[size:]
            return chunk
        return self._take(size)

    def _take(self, size: int) -> bytes:
        """The next `size` bytes of the (inflated) payload, counting against the limit."""
        try:
            chunk = self.source.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise PayloadRefused("malformed_payload", f"gzip: {exc}") from None
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise PayloadRefused(
                "payload_too_large", f"more than {self.max_bytes} bytes", "payload"
            )
        return chunk


def _open(payload: bytes, *, max_bytes: int, notes: Notes) -> _Stream:
    """A stream over the payload, inflating gzip (found by its magic bytes) on the way."""
    if not payload:
        raise PayloadRefused("malformed_payload", "empty payload")
    source: Any = io.BytesIO(payload)
    if payload.startswith(_GZIP_MAGIC):
        notes.add("gzip")
        source = gzip.GzipFile(fileobj=source, mode="rb")
    stream = _Stream(source, max_bytes=max_bytes)
    if not stream.head.strip():
        raise PayloadRefused("malformed_payload", "empty payload")
    return stream


def _repair_prolog(head: bytes, notes: Notes) -> bytes:
    """Drop PIs/whitespace before the declaration; refuse DTDs and non-UTF-8 payloads."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        raise PayloadRefused("unsupported_format", "UTF-16/32 payload; PM XML is UTF-8")
    whole = len(head) < HEAD_BYTES
    found = _DECLARATION.search(head)
    if found and found.start() > 0:
        before = head[: found.start()]
        if _MISC.fullmatch(before.replace(_BOM, b"")):
            head = head[found.start() :]
            if before.strip().strip(_BOM):
                kind = "stylesheet instruction" if b"stylesheet" in before else "instructions"
                notes.add(f"removed {len(before)} bytes ({kind}) before the XML declaration")
    prolog = _MISC.match(head, len(_BOM) if head.startswith(_BOM) else 0)
    end = prolog.end() if prolog else 0
    if head.startswith(b"<!DOCTYPE", end):
        raise PayloadRefused("unsafe_xml", "the document declares a DTD (DOCTYPE)")
    if not whole and not _ELEMENT.match(head, end):
        # The root must start in the part checked for a DTD; real prologs are a few lines.
        raise PayloadRefused(
            "malformed_payload", f"no root element in the first {HEAD_BYTES} bytes"
        )
    return head


def _frame(walk: Walk) -> tuple[pd.DataFrame, dict[str, int]]:
    """The records in file order, histogram values expanded (and the widest bin count)."""
    owner = np.repeat(np.arange(len(walk.counts)), walk.counts)
    values = np.array(walk.values, dtype=object)
    counters = np.array(walk.counters, dtype=object)
    histograms: dict[str, int] = {}
    rows = [
        row
        for start, length in walk.histograms
        for row in range(start, start + length)
        if "," in values[row]
    ]
    if rows:
        owner, counters, values = _expand_bins(owner, counters, values, rows, histograms)
    periods = pd.DatetimeIndex(pd.to_datetime(walk.periods, utc=True), tz="UTC")
    period_index = np.asarray(walk.period_index, dtype=np.int64)[owner]
    n = len(owner)
    columns = {
        "dn": np.array(walk.dns, dtype=object)[owner],
        "kpi": counters,
        "period_end": periods.take(period_index) if n else periods[:0],
        "value": values,
        "vendor": np.full(n, walk.vendor, dtype=object),
        "sw_version": np.array(walk.sw_versions, dtype=object)[owner],
        "suspect": np.asarray(walk.suspects, dtype=bool)[owner],
        "granularity_s": pd.array(walk.granularity, dtype="Int64").take(owner),
    }
    # Object columns stay object: pandas' string inference would scan every value again.
    frame = pd.DataFrame(
        {
            name: pd.Series(column, dtype=object, copy=False)
            if isinstance(column, np.ndarray) and column.dtype == object
            else column
            for name, column in columns.items()
        },
        columns=list(COLUMNS),
        copy=False,
    )
    return frame, histograms


def _expand_bins(
    owner: np.ndarray,
    counters: np.ndarray,
    values: np.ndarray,
    rows: list[int],
    histograms: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace each histogram value by its bins, keeping file order."""
    bin_rows: list[int] = []
    bin_counters: list[str] = []
    bin_values: list[str] = []
    for row in rows:
        parts = values[row].split(",")
        counter = counters[row]
        histograms[counter] = max(histograms.get(counter, 0), len(parts))
        for i, part in enumerate(parts):
            bin_rows.append(row)
            bin_counters.append(f"{counter}.bin{i}")
            bin_values.append("" if part.strip() in NO_VALUE else part)
    keep = np.ones(len(values), dtype=bool)
    keep[rows] = False
    position = np.concatenate([np.flatnonzero(keep), np.asarray(bin_rows)])
    order = np.argsort(position, kind="stable")
    return (
        np.concatenate([owner[keep], owner[bin_rows]])[order],
        np.concatenate([counters[keep], np.array(bin_counters, dtype=object)])[order],
        np.concatenate([values[keep], np.array(bin_values, dtype=object)])[order],
    )


def _meta(walk: Walk, histograms: dict[str, int]) -> dict[str, Any]:
    """What the file said about itself and what the parser noticed (JSON-friendly)."""
    return {
        "format": walk.format,
        "file": walk.name,
        "file_format_version": walk.file_format_version,
        "vendor": walk.vendor,
        "sw_versions": sorted({v for v in walk.sw_versions if v}),
        # ISO 8601 in UTC, so meta stays JSON.
        "begin_time": walk.begin_time.isoformat() if walk.begin_time else None,
        "end_time": walk.end_time.isoformat() if walk.end_time else None,
        "counters": sorted(walk.declared),
        "histograms": dict(sorted(histograms.items())),
        "elements": len({dn for dn, count in zip(walk.dns, walk.counts, strict=True) if count}),
        "meas_infos": walk.meas_infos,
        "values": len(walk.values) + len(walk.rejected),
        "notes": list(walk.notes),
    }


def _refused(refusal: PayloadRefused, *, name: str, head: bytes, notes: Notes) -> ParsedPayload:
    """The whole payload as one refusal: the file's name, the error and how it begins."""
    record = {
        "file": name,
        "error": refusal.error,
        "head": head[:400].decode("utf-8", errors="replace")[:200],
    }
    rejected = Rejected(refusal.code, record, reason=refusal.error, field=refusal.field)
    meta = {"file": name, "format": refusal.format, "refused": refusal.code, "notes": list(notes)}
    return ParsedPayload(records=_empty(), rejected=[rejected], meta=meta)


def _empty() -> pd.DataFrame:
    """No records, with the record columns."""
    return pd.DataFrame({column: pd.Series(dtype="object") for column in COLUMNS})
