"""Collapsing runs of plain `<r>` elements before lxml parses them, and reading them back.

A PM file spends most of its parse time building one lxml node per `<r>`. Each run of two
or more `<r p="N">value</r>` in exactly that form (no entities, values up to 64 characters
without "|") becomes one element holding the positions in an attribute and the values
joined by "|": lxml builds one node instead of hundreds, and the walk reads the same
positions and values back. Anything else reaches the parser untouched; after a CDATA
section (where markup is only text) nothing more is collapsed.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from services.ingest.sources.pm_xml_rules import RUN_TAG, PayloadRefused

CHUNK_BYTES = 1024 * 1024
RUN = "{*}" + RUN_TAG
# A plain <r>: p a number, the value without markup, entities or "|", then whitespace.
_ITEM = rb'<r p="\d{1,9}"(?:>[^<&|]{0,64}</r>|\s*/>)\s*'
# Two to 1000 of them in a row (a run's text stays far below libxml2's limits). Written
# to start with the literal "<r p=" so the regex engine skips ahead to candidates quickly.
_RUN = re.compile(_ITEM + rb"(?:" + _ITEM + rb"){1,999}")
_POSITION = re.compile(rb'<r p="(\d{1,9})"')
_VALUE = re.compile(rb"(?:>([^<&|]{0,64})</r>|/>)")
_RUN_NAME = RUN_TAG.encode()


class Readable(Protocol):
    """What the collapsing stream reads from."""

    def read(self, size: int = -1) -> bytes: ...


class Collapsed:
    """`stream` with its runs collapsed; chunks end before their last "<", never in a run."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.buffer = b""
        self.offset = 0
        self.carry = b""
        self.plain = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the collapsed stream."""
        size = CHUNK_BYTES if size is None or size < 0 else size
        while self.offset >= len(self.buffer):
            if not self._fill():
                return b""
        chunk = self.buffer[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk

    def _fill(self) -> bool:
        data = self.stream.read(CHUNK_BYTES)
        if not data:
            self.buffer, self.offset, self.carry = self.carry, 0, b""
            return bool(self.buffer)
        data = self.carry + data
        cut = data.rfind(b"<")
        cut = len(data) if cut <= 0 else cut
        ready, self.carry = data[:cut], data[cut:]
        self.plain = self.plain or b"<![CDATA[" in ready
        self.buffer = ready if self.plain else _RUN.sub(_collapse_run, ready)
        self.offset = 0
        return True


def _collapse_run(match: re.Match[bytes]) -> bytes:
    """One element for the run: positions in `p`, values joined by "|"."""
    run = match.group()
    positions, values = b" ".join(_POSITION.findall(run)), b"|".join(_VALUE.findall(run))
    return b'<%s p="%s">%s</%s>' % (_RUN_NAME, positions, values, _RUN_NAME)


def read_values(element: Any, rs: list[Any]) -> tuple[list[str | None], list[str]]:
    """Positions and values of a measValue's <r> elements and collapsed runs, in order."""
    if len(rs) == 1 and rs[0].tag.endswith(RUN_TAG):
        return run_values(rs[0])
    if len(rs) < 2 or next(element.iterchildren(RUN), None) is None:
        return [r.get("p") for r in rs], [r.text or "" for r in rs]
    positions: list[str | None] = []
    values: list[str] = []
    for r in rs:
        if r.tag.endswith(RUN_TAG):
            more_positions, more_values = run_values(r)
            positions += more_positions
            values += more_values
        else:
            positions.append(r.get("p"))
            values.append(r.text or "")
    return positions, values


def run_values(run: Any) -> tuple[list[str | None], list[str]]:
    """Positions and values of one collapsed run."""
    positions: list[str | None] = run.get("p", "").split()
    values: list[str] = (run.text or "").split("|")
    if len(values) != len(positions):
        raise PayloadRefused("malformed_payload", "a collapsed run of values lost its shape")
    return positions, values
