"""The canonical row types and the schemas say the same thing; ``frame`` refuses unknown keys."""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from pmolens.warehouse import model
from pmolens.warehouse.model import ROW_TYPES, SCHEMAS, UnknownColumnError, frame

#: The Python value each polars dtype of the model holds.
PYTHON_TYPES: dict[Any, Any] = {
    pl.String: str,
    pl.Boolean: bool,
    pl.Int32: int,
    pl.Float64: float,
    pl.Date: date,
    model.UTC_TS: datetime,
    pl.List(pl.String): list[str],
}


def _without_none(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, hint
        return args[0]
    return hint


@pytest.mark.parametrize("kind", sorted(ROW_TYPES))
def test_row_type_matches_the_schema_key_for_key(kind):
    hints = typing.get_type_hints(ROW_TYPES[kind])
    schema = SCHEMAS[kind]
    assert list(hints) == list(schema), f"{kind}: the TypedDict and SCHEMAS list other keys"
    for column, dtype in schema.items():
        assert _without_none(hints[column]) == PYTHON_TYPES[dtype], (kind, column)


def test_every_batch_table_has_a_row_type():
    batch_tables = {
        name for name in model.Batch.__dataclass_fields__ if name in SCHEMAS
    }  # work_items, links, sprints, status_changes
    assert batch_tables == set(ROW_TYPES)
    hints = typing.get_type_hints(model.Batch)
    for name in batch_tables:
        assert hints[name] == list[ROW_TYPES[name]]


def test_frame_refuses_a_misspelt_key_naming_it_and_the_table():
    rows = [
        {"source": "s", "link_id": "1", "kind": "blocks"},
        {"source": "s", "link_id": "2", "kind": "blocks", "form_item": "s:1"},
    ]
    with pytest.raises(UnknownColumnError, match=r"links rows carry key\(s\) 'form_item'"):
        frame("links", rows)


def test_frame_lets_missing_keys_be_null():
    at = datetime(2026, 1, 5, tzinfo=UTC)
    df = frame("sprints", [{"sprint_id": "s:1", "source": "s", "native_id": "1", "start": at}])
    assert df.schema == pl.Schema(SCHEMAS["sprints"])
    assert df.row(0, named=True)["start"] == at
    assert df.row(0, named=True)["team"] is None
    assert frame("work_items", []).schema == pl.Schema(SCHEMAS["work_items"])
