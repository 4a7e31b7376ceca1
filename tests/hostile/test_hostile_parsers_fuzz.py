"""Property: no parser or API model raises on arbitrary input, except its documented error.

Parsers that quarantine (telemetry CSV/JSON, replayed record CSV, validation) must account
for every record: accepted or refused with a reason code from REASONS. The change calendar
raises only InvalidInput (or reports the row); the forecast CLI only its InputError; API
models only pydantic's ValidationError, which the API turns into InvalidInput.

PM XML, VES, Alertmanager and TMF642 parsers have their own property tests next to them.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import io
import json
import pkgutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import services.api.schemas as schema_package
from services import alarms, audit
from services.api.errors import invalid_input
from services.automation import change_windows
from services.cli.detect import InputError, read_series
from services.cli.forecast import forecast
from services.db import Database
from services.errors import InvalidInput
from services.ingest.formats import guess_format, parse_records_csv
from services.ingest.reasons import REASONS
from services.ingest.sources.telemetry import ALIASES, parse_csv, parse_json
from services.ingest.validate import KpiLimits, validate

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KPIS = {
    "prb_util_dl": KpiLimits("%", 0.0, 100.0),
    "rrc_attempts": KpiLimits("count", 0.0, None),
    "latency": KpiLimits("ms", None, None),
}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Texts that have broken parsers before: empty, blank, NUL, lone surrogates, huge numbers,
# timestamps at the edges of what datetimes hold, over-long names, formula-like cells.
NASTY = st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\ud800", "NaN", "nan", "inf", "-inf", "1e999", "-0",
     "9" * 5000, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00",
     "2026-11-20T11:45:00Z", "2026-11-20T11:45:00", "2262-04-12", "1677-09-21", "x" * 600,
     "prb_util_dl", "rrc_attempts", "%", "count", '"', "=1+1", "<b>x</b>", "\r\n", ";", ","]
)  # fmt: skip
TEXT = st.text(max_size=12) | NASTY
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)
FIELD_NAMES = st.sampled_from(
    [alias for names in ALIASES.values() for alias in names] + ["DN", " Value ", "extra", ""]
)


def _assert_conserved(parsed: Any) -> None:
    assert parsed.received == len(parsed.records) + len(parsed.rejected)
    for refusal in parsed.rejected:
        assert refusal.reason_code in REASONS, refusal.reason_code
        assert refusal.reason


def _assert_validated(records: pd.DataFrame) -> None:
    good, bad = validate(records, kpis=KPIS, now=NOW)
    assert len(good) + len(bad) == len(records)
    assert set(bad["reason_code"]) <= set(REASONS)
    assert bad["reason"].notna().all()


# --- telemetry CSV / JSON through validation ------------------------------------------------


@st.composite
def telemetry_json(draw: st.DrawFn) -> bytes:
    items = draw(
        st.lists(
            st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8) | JSON_VALUES,
            max_size=6,
        )
    )
    document: Any = {"records": items} if draw(st.booleans()) else items
    text = json.dumps(document, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(payload=telemetry_json())
@example(payload=b'{"records": [{"dn": "x", "meastype": "prb_util_dl", "ds": false, "value": 1}]}')
def test_telemetry_json_records_are_stored_or_refused_with_a_reason(payload: bytes) -> None:
    parsed = parse_json(payload, name="fuzz.json")
    _assert_conserved(parsed)
    _assert_validated(parsed.records)


@st.composite
def telemetry_csv(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(FIELD_NAMES, min_size=1, max_size=7))
    rows = draw(st.lists(st.lists(TEXT, max_size=8), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@FUZZ
@given(payload=telemetry_csv() | st.binary(max_size=200))
def test_telemetry_csv_records_are_stored_or_refused_with_a_reason(payload: bytes) -> None:
    parsed = parse_csv(payload, name="fuzz.csv")
    _assert_conserved(parsed)
    _assert_validated(parsed.records)


# Lone surrogates are cleaned by every parser before validation, so they are left out here.
FRAME_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=10) | NASTY.filter(
    lambda t: "\ud800" not in t
)
FRAME_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | FRAME_TEXT
)
FRAME_COLUMNS = ("dn", "kpi", "period_end", "value", "unit", "vendor", "sw_version", "suspect")


@st.composite
def record_frames(draw: st.DrawFn) -> pd.DataFrame:
    columns = draw(st.lists(st.sampled_from(FRAME_COLUMNS), unique=True))
    rows = draw(st.integers(0, 6))
    data = {c: draw(st.lists(FRAME_VALUES, min_size=rows, max_size=rows)) for c in columns}
    return pd.DataFrame(data, dtype=object) if columns else pd.DataFrame(index=range(rows))


@FUZZ
@given(frame=record_frames())
def test_validation_refuses_each_bad_record_with_one_reason(frame: pd.DataFrame) -> None:
    _assert_validated(frame)


@FUZZ
@given(
    payload=st.binary(max_size=200)
    | st.lists(
        st.sampled_from(
            ["dn,kpi,period_end,value\n", "a,b\n", '"x\n', "\x00", ",,,\n", "value\n", "1,2,3,4\n"]
        ),
        max_size=5,
    ).map(lambda parts: "".join(parts).encode()),
    name=st.text(max_size=12),
)
def test_replayed_record_csv_and_format_guess_take_any_bytes(payload: bytes, name: str) -> None:
    parsed = parse_records_csv(payload, name="batch-1")
    _assert_conserved(parsed)
    assert guess_format(name, payload) in (None, "pm-xml", "csv", "json")


# --- alarms --------------------------------------------------------------------------------


@FUZZ
@given(
    severity=st.none() | TEXT,
    labels=st.dictionaries(st.text(max_size=8) | NASTY, SCALARS, max_size=5),
)
def test_alarm_severity_and_fingerprint_take_any_text(
    severity: str | None, labels: dict[str, Any]
) -> None:
    assert alarms.normalise_severity(severity) in alarms.SEVERITIES
    first = alarms.fingerprint(labels)
    assert len(first) == 64
    assert alarms.fingerprint(dict(reversed(list(labels.items())))) == first


# --- change calendar -----------------------------------------------------------------------

WINDOW_FIELDS = st.sampled_from(
    ["title", "kind", "starts_at", "ends_at", "scope", "external_id", "other"]
)
WINDOW_VALUES = (
    JSON_VALUES
    | st.sampled_from(["change", "maintenance", "freeze", "FREEZE "])
    | st.dictionaries(
        st.sampled_from(["domains", "regions", "elements", "x"]),
        st.lists(TEXT, max_size=3) | TEXT | SCALARS,
        max_size=3,
    )
)


@FUZZ
@given(payload=st.dictionaries(WINDOW_FIELDS, WINDOW_VALUES, max_size=7))
def test_change_window_validation_raises_only_invalid_input(payload: dict[str, Any]) -> None:
    try:
        clean = change_windows.validate_window(payload)
    except InvalidInput as error:
        assert error.message  # noqa: PT017 - the property: no other exception escapes
        return
    assert clean["ends_at"] > clean["starts_at"]
    assert clean["kind"] in change_windows.KINDS


CALENDAR_SAMPLES = st.sampled_from(
    ["change", "maintenance", "freeze", "2026-11-26T22:00:00Z", "2026-11-27T02:00:00+01:00",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "2026-11-26", "North;South",
     "x" * 150, "a\x00b", "", '"', "\n"]
)  # fmt: skip
CALENDAR_CELLS = CALENDAR_SAMPLES | st.text(st.characters(exclude_categories=("Cs",)), max_size=10)
CALENDAR_HEADER = ",".join(change_windows.CSV_COLUMNS)


@st.composite
def calendars(draw: st.DrawFn) -> str:
    header = draw(
        st.sampled_from([CALENDAR_HEADER, "title,kind,starts_at,ends_at", "title,kind", ""])
    )
    rows = draw(st.lists(st.lists(CALENDAR_CELLS, max_size=9), max_size=5))
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return header + "\n" + out.getvalue()


def _data_rows(text: str) -> int:
    """Rows import_csv must account for: those with any non-blank named cell."""
    reader = csv.DictReader(io.StringIO(text))
    return sum(
        1
        for row in reader
        if any((v or "").strip() for k, v in row.items() if k is not None and isinstance(v, str))
    )


@FUZZ
@given(text=calendars())
def test_calendar_import_accounts_for_every_row(db: Database, text: str) -> None:
    try:
        with db.session(write=True) as session:
            result = change_windows.import_csv(
                session, text=text, actor=audit.SYSTEM, source="fuzz"
            )
    except InvalidInput as error:
        assert error.message  # noqa: PT017 - the property: no other exception escapes
        return
    assert result.created + result.updated + len(result.errors) == _data_rows(text)
    assert all(error.message and error.line >= 2 for error in result.errors)


# --- forecast CLI --------------------------------------------------------------------------

SERIES_STAMPS = st.sampled_from(
    ["2026-01-01", "2026-01-02T00:00:00+14:00", "2026-01-03T12:00:00Z", "1677-09-21",
     "2262-04-12", "0001-01-01", "2026-13-45", "NaT", "", "x"]
)  # fmt: skip
SERIES_VALUES = st.sampled_from(["", "nan", "1e308", "-1e308", "0", "5", "-5", "7.5", "inf", "x"])


@st.composite
def series_csv(draw: st.DrawFn) -> bytes:
    header = draw(st.sampled_from(["ds,y", "timestamp,value", "y", "ds,y,ds", ""]))
    rows = draw(st.lists(st.tuples(SERIES_STAMPS, SERIES_VALUES), max_size=8))
    return (header + "\n" + "\n".join(f"{a},{b}" for a, b in rows)).encode()


@FUZZ
@given(payload=series_csv() | st.binary(max_size=120))
def test_forecast_csv_reader_raises_only_input_error(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "series.csv"
    path.write_bytes(payload)
    for columns in ((None, None), ("ds", "y")):
        try:
            series, texts = read_series(path, *columns)
        except InputError as error:
            assert error.format_message()  # noqa: PT017 - no other exception escapes
            continue
        assert len(series) == len(texts)


@settings(FUZZ, max_examples=25)
@given(payload=series_csv(), freq=st.sampled_from(["D", "h", "15min", "MS"]))
def test_forecast_cli_ends_with_a_message_never_a_traceback(
    tmp_path: Path, payload: bytes, freq: str
) -> None:
    path = tmp_path / "series.csv"
    path.write_bytes(payload)
    args = [str(path), "--horizon", "3", "--freq", freq, "--cutoffs", "0", "--samples", "10"]
    result = CliRunner().invoke(forecast, [*args, "--capacity", "1"])
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


# --- API models ----------------------------------------------------------------------------


def _api_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(schema_package.__path__):
        module = importlib.import_module(f"{schema_package.__name__}.{info.name}")
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return [found[key] for key in sorted(found)]


API_MODELS = _api_models()


@st.composite
def model_inputs(draw: st.DrawFn) -> tuple[type[BaseModel], Any]:
    model = draw(st.sampled_from(API_MODELS))
    fields = list(model.model_fields) + [f.alias for f in model.model_fields.values() if f.alias]
    keys = st.sampled_from(fields) | st.text(max_size=6) if fields else st.text(max_size=6)
    document = draw(st.dictionaries(keys, JSON_VALUES, max_size=len(fields) + 2) | JSON_VALUES)
    return model, document


def test_every_api_schema_module_is_covered() -> None:
    assert len(API_MODELS) >= 80
    covered = {model.__module__.rsplit(".", 1)[-1] for model in API_MODELS}
    modules = {info.name for info in pkgutil.iter_modules(schema_package.__path__)}
    assert modules - {"__init__"} <= covered


@settings(FUZZ, max_examples=400)
@given(case=model_inputs())
def test_api_models_raise_only_validation_errors(case: tuple[type[BaseModel], Any]) -> None:
    model, document = case
    try:
        model.model_validate(document)
    except ValidationError as error:
        refused = invalid_input(error, location="body")
        assert isinstance(refused, InvalidInput)
        assert refused.details
        json.dumps(refused.details)  # the error body must serialise
