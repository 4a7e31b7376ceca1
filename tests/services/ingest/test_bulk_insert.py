"""Bulk inserts store exactly what row-by-row binding stores, on SQLite and PostgreSQL.

On SQLite, columns holding one value for the whole batch are written as literals in the
statement (fewer values bound per row); the stored values and their types must not differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import insert, select, text

from services.db import Database, connect, upgrade_to_head
from services.db.bulk import insert_frame
from services.db.models import Element, Kpi, Measurement, Source
from services.seed import ensure_kpis

PERIOD = datetime(2026, 11, 20, 11, 45, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 11, 47, 30, 123456, tzinfo=UTC)
STORED = (
    "kpi_id",
    "period_end",
    "value",
    "revision",
    "superseded",
    "late",
    "suspect",
    "received_at",
    "source_id",
    "batch_id",
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
        session.add(Source(name="bulk-test", kind="test"))
        session.execute(
            insert(Element),
            [
                {
                    "dn": f"SubNetwork=T,EUtranCellFDD=C{i}",
                    "name": f"C{i}",
                    "element_type": "cell",
                    "domain": "RAN",
                    "is_new": False,
                    "attributes": {},
                }
                for i in range(6)
            ],
        )
    yield database
    database.dispose()


def _ids(db: Database) -> tuple[list[int], int, int]:
    with db.session() as session:
        elements = list(session.scalars(select(Element.id).order_by(Element.id)))
        kpi = session.scalar(select(Kpi.id).order_by(Kpi.id).limit(1))
        source = session.scalar(select(Source.id).where(Source.name == "bulk-test"))
    assert kpi is not None
    assert source is not None
    return elements, kpi, source


def _frame(elements: list[int], kpi: int, source: int | None, **overrides: object) -> pd.DataFrame:
    n = len(elements)
    columns: dict[str, object] = {
        "element_id": elements,
        "kpi_id": [kpi] * n,
        "period_end": pd.Series([pd.Timestamp(PERIOD)] * n),
        "value": [1.5 + i for i in range(n)],
        "revision": [0] * n,
        "superseded": [False] * n,
        "late": [True] * n,
        "suspect": [False] * n,
        "source_id": [source] * n,
        "batch_id": pd.Series([None] * n, dtype=object),
    }
    columns.update(overrides)
    frame = pd.DataFrame(columns)
    frame["received_at"] = pd.Timestamp(RECEIVED)
    return frame


def _stored(db: Database, elements: list[int]) -> list[tuple]:
    with db.session() as session:
        rows = session.execute(
            select(Measurement.element_id, *(Measurement.__table__.c[c] for c in STORED))
            .where(Measurement.element_id.in_(elements))
            .order_by(Measurement.element_id)
        ).all()
    return [tuple(row)[1:] for row in rows]


def _bound(db: Database, elements: list[int], frame: pd.DataFrame) -> None:
    """The same rows through SQLAlchemy's ordinary per-row binding."""
    records = []
    for element, row in zip(elements, frame.to_dict("records"), strict=True):
        record = {c: None if pd.isna(row[c]) else row[c] for c in STORED}
        record["element_id"] = element
        record["period_end"] = row["period_end"].to_pydatetime()
        record["received_at"] = row["received_at"].to_pydatetime()
        record["batch_id"] = None
        records.append(record)
    with db.session(write=True) as session:
        session.execute(insert(Measurement), records)


def test_constant_columns_store_what_binding_stores(db: Database) -> None:
    elements, kpi, source = _ids(db)
    bulk, bound = elements[:3], elements[3:]
    frame = _frame(bulk, kpi, source)
    with db.session(write=True) as session:
        assert insert_frame(session, Measurement.__table__, frame) == 3
    _bound(db, bound, _frame(bound, kpi, source))
    assert _stored(db, bulk) == _stored(db, bound)
    if db.dialect == "sqlite":
        # Same storage classes too (text timestamps, integer flags, NULL batch).
        with db.engine.connect() as conn:
            kinds = conn.execute(
                text(
                    "SELECT DISTINCT typeof(period_end), typeof(received_at), typeof(late), "
                    "typeof(superseded), typeof(source_id), typeof(batch_id), typeof(value), "
                    "period_end, received_at FROM measurements"
                )
            ).all()
        assert len(kinds) == 1, kinds


def test_varying_and_single_row_batches_store_what_binding_stores(db: Database) -> None:
    elements, kpi, source = _ids(db)
    periods = pd.Series([pd.Timestamp(PERIOD), pd.Timestamp(PERIOD) - pd.Timedelta("15min")])
    varying = _frame(
        elements[:2],
        kpi,
        source,
        period_end=periods,
        revision=[0, 1],
        superseded=[True, False],
        late=[False, True],
        source_id=pd.Series([source, None], dtype=object),
    )
    single = _frame(elements[2:3], kpi, None)
    with db.session(write=True) as session:
        insert_frame(session, Measurement.__table__, varying)
        insert_frame(session, Measurement.__table__, single)
    _bound(db, elements[3:5], varying)
    _bound(db, elements[5:6], single)
    bulk, bound = _stored(db, elements[:3]), _stored(db, elements[3:])
    assert len(bulk) == 3
    assert [r[-2] for r in bulk] == [source, None, None]  # source_id (next to last)
    assert bulk == bound
