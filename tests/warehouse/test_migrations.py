"""Migrations are frozen DDL, and a warehouse of any older version reaches the current model.

- Running every migration from an empty file gives exactly the columns and types of
  ``warehouse.model.SCHEMAS`` for every canonical table: a model column added without a
  migration fails here.
- ``tests/fixtures/warehouse/v2.duckdb.gz`` was written by the release before ``sprint_teams``
  (schema version 2, see ``make_v2.py`` there): it opens, migrates, reads and takes a sync.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pmolens.warehouse import schema
from pmolens.warehouse.model import SCHEMAS
from pmolens.warehouse.store import Staged, Warehouse

FIXTURES = Path(__file__).parents[1] / "fixtures" / "warehouse"


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def expected(table: str) -> list[tuple[str, str]]:
    """The model's columns as DuckDB spells them (made by DuckDB, so the spelling matches)."""
    con = duckdb.connect()
    ddl = ", ".join(f'"{col}" {schema.duck_type(dtype)}' for col, dtype in SCHEMAS[table].items())
    con.execute(f"CREATE TABLE {table} ({ddl})")
    return columns(con, table)


def layout(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables ORDER BY table_name"
    ).fetchall()
    return {name: columns(con, name) for (name,) in tables}


def step_by_step(con: duckdb.DuckDBPyConnection) -> None:
    """Each migration in its own transaction, as successive releases would have run them."""
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    for version, migration in enumerate(schema.MIGRATIONS, start=1):
        migration(con)
        con.execute("INSERT INTO schema_version VALUES (?)", [version])


def test_migrations_from_1_give_exactly_the_model():
    con = duckdb.connect()
    step_by_step(con)
    for table in SCHEMAS:
        assert columns(con, table) == expected(table), (
            f"{table}: the migrated table and warehouse.model disagree; a model change "
            "needs a new migration in warehouse/schema.py"
        )


def test_migrated_and_fresh_warehouses_are_the_same(tmp_path):
    con = duckdb.connect()
    step_by_step(con)
    with Warehouse(tmp_path / "fresh.duckdb") as wh:
        fresh = layout(wh.cursor())
    assert layout(con) == fresh


def test_the_v1_migration_no_longer_follows_the_model(monkeypatch):
    """A column added to the model is not created by the (shipped) migrations."""
    monkeypatch.setitem(SCHEMAS, "links", {**SCHEMAS["links"], "weight": pl.Float64})
    con = duckdb.connect()
    step_by_step(con)
    assert "weight" not in dict(columns(con, "links"))
    assert columns(con, "links") != expected("links")


@pytest.fixture
def v2_file(tmp_path: Path) -> Path:
    """A copy of the version-2 warehouse (opening it migrates it in place)."""
    path = tmp_path / "v2.duckdb"
    with gzip.open(FIXTURES / "v2.duckdb.gz", "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def test_the_v2_fixture_is_at_version_2(v2_file):
    con = duckdb.connect(str(v2_file), read_only=True)
    try:
        version = con.execute("SELECT max(version) FROM schema_version").fetchone()
        tables = {name for (name,) in con.execute("SHOW TABLES").fetchall()}
    finally:
        con.close()
    assert version == (2,)
    assert "sprint_teams" not in tables


def test_a_v2_warehouse_opens_migrates_reads_and_syncs(v2_file, tmp_path):
    at = datetime(2026, 2, 1, tzinfo=UTC)
    with Warehouse(v2_file) as wh:
        assert wh.schema_version == schema.SCHEMA_VERSION
        with Warehouse(tmp_path / "fresh.duckdb") as fresh:
            assert layout(wh.cursor()) == layout(fresh.cursor())
        frames = wh.frames()
        for name, df in frames.items():
            assert df.schema == pl.Schema(SCHEMAS[name]), name
        items = frames["work_items"].sort("item_id")
        assert items.select("item_id", "parent_id", "status_category").rows() == [
            ("co:1", None, "in_progress"),
            ("co:2", "co:1", "done"),
            ("co:3", "co:1", "todo"),
        ]
        assert items["labels"].to_list() == [["q1"], [], []]
        assert frames["links"].select("from_item", "to_item", "kind").rows() == [
            ("co:2", "co:3", "blocks")
        ]
        assert frames["status_changes"].height == 2
        # v3 backfilled sprint_teams from sprints.team (S2 had none)
        assert frames["sprints"].sort("sprint_id").select("name", "team").rows() == [
            ("S1", "Web"),
            ("S2", None),
        ]
        assert wh.generation() == 1
        assert wh.last_cursor("co") == datetime(2026, 1, 20, tzinfo=UTC)

        run_id = wh.begin_run("co", "incremental", wh.last_cursor("co"))
        assert run_id == 2  # the run id sequence carried over
        item = {
            **items.filter(pl.col("item_id") == "co:3").row(0, named=True),
            "status_category": "in_progress",
            "raw_status": "Active",
            "updated": at,
        }
        sprint = {
            **frames["sprints"].filter(pl.col("name") == "S2").row(0, named=True),
            "team": "Web",
        }
        staged = Staged(
            work_items=[pl.DataFrame([item], schema=SCHEMAS["work_items"])],
            links=[frames["links"]],  # a batch carries all links of its items
            sprints=[pl.DataFrame([sprint], schema=SCHEMAS["sprints"])],
        )
        result = wh.commit_sync(run_id, "co", staged, live_ids={"1", "2", "3"}, cursor=at)
        assert (result.items, result.deleted) == (1, 0)
        after = wh.frames()
        assert after["work_items"].filter(pl.col("item_id") == "co:3")["raw_status"].item() == (
            "Active"
        )
        assert after["work_items"].height == 3
        assert after["links"].select("link_id", "resolved").rows() == [("dep:co:2>co:3", True)]
        assert after["sprints"].sort("sprint_id")["team"].to_list() == ["Web", "Web"]
        assert wh.last_cursor("co") == at
    with Warehouse(v2_file) as again:  # reopening a migrated file changes nothing
        assert again.schema_version == schema.SCHEMA_VERSION
        assert again.frames()["work_items"].height == 3
