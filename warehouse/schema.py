"""DuckDB schema, versioned. Migrations run in order on open; each is applied once.

Every migration is literal DDL, frozen once it ships: a warehouse file created by an older pmolens
reaches today's schema by running the same steps a fresh one does. A change to a table in
``warehouse.model`` therefore needs a new migration (``ALTER TABLE ... ADD COLUMN``);
``tests/warehouse/test_migrations.py`` fails when the migrated tables and the model disagree.
Upserts are delete-then-insert keyed by (source, native id) inside one
transaction, so the tables carry no primary-key indexes (DuckDB's ART indexes make bulk upserts
slow and reject delete+reinsert of a key in one transaction).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import duckdb
import polars as pl

_DUCK_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Date: "DATE",
}


def duck_type(dtype: Any) -> str:
    """The DuckDB type a model dtype is stored as (what the migrated tables must say)."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.List):
        return duck_type(dtype.inner) + "[]"
    return _DUCK_TYPES[dtype.base_type()]


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    """The first schema (frozen: never edit a shipped migration, add one)."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS work_items (
            "item_id" VARCHAR, "source" VARCHAR, "native_id" VARCHAR, "key" VARCHAR,
            "url" VARCHAR, "organisation" VARCHAR, "project" VARCHAR, "raw_type" VARCHAR,
            "level" VARCHAR, "title" VARCHAR, "has_description" BOOLEAN, "raw_status" VARCHAR,
            "status_category" VARCHAR, "team" VARCHAR, "assignee" VARCHAR, "priority" VARCHAR,
            "priority_rank" INTEGER, "rank" VARCHAR, "estimate" DOUBLE, "created" TIMESTAMPTZ,
            "updated" TIMESTAMPTZ, "resolved" TIMESTAMPTZ, "due_date" DATE, "sprint_id" VARCHAR,
            "parent_id" VARCHAR, "parent_key" VARCHAR, "labels" VARCHAR[],
            "business_value" DOUBLE, "cost" DOUBLE, "time_criticality" DOUBLE,
            "risk_reduction" DOUBLE, "flagged" BOOLEAN, "is_deleted" BOOLEAN
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS links (
            "source" VARCHAR, "link_id" VARCHAR, "from_item" VARCHAR, "to_item" VARCHAR,
            "target_url" VARCHAR, "kind" VARCHAR, "raw_type" VARCHAR, "resolved" BOOLEAN
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS sprints (
            "sprint_id" VARCHAR, "source" VARCHAR, "native_id" VARCHAR, "name" VARCHAR,
            "team" VARCHAR, "board" VARCHAR, "state" VARCHAR, "start" TIMESTAMPTZ,
            "end" TIMESTAMPTZ, "complete" TIMESTAMPTZ
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS status_changes (
            "source" VARCHAR, "item_id" VARCHAR, "change_id" VARCHAR, "at" TIMESTAMPTZ,
            "field" VARCHAR, "from_status" VARCHAR, "to_status" VARCHAR,
            "from_category" VARCHAR, "to_category" VARCHAR
        )
        """
    )
    con.execute(
        'CREATE TABLE IF NOT EXISTS teams ("team" VARCHAR, "organisation" VARCHAR, "source" VARCHAR)'
    )
    con.execute(
        'CREATE TABLE IF NOT EXISTS organisations ("organisation" VARCHAR, "description" VARCHAR)'
    )
    con.execute(
        'CREATE TABLE IF NOT EXISTS sources ("source" VARCHAR, "kind" VARCHAR, '
        '"organisation" VARCHAR, "base_url" VARCHAR)'
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS sync_runs (
            run_id BIGINT, source VARCHAR, mode VARCHAR, started TIMESTAMPTZ,
            finished TIMESTAMPTZ, outcome VARCHAR, items BIGINT, links BIGINT, sprints BIGINT,
            status_changes BIGINT, deleted BIGINT, problems BIGINT, problem_text VARCHAR,
            error VARCHAR, cursor_before TIMESTAMPTZ, cursor_after TIMESTAMPTZ
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS cursors (
            source VARCHAR, cursor TIMESTAMPTZ, run_id BIGINT, updated_at TIMESTAMPTZ
        )
        """
    )
    con.execute("CREATE SEQUENCE IF NOT EXISTS run_ids START 1")
    con.execute(
        """
        CREATE OR REPLACE VIEW all_links AS
        SELECT source, link_id, from_item, to_item, target_url, kind, raw_type, resolved
        FROM links
        UNION ALL
        SELECT w.source, 'parent:' || w.item_id, w.parent_id, w.item_id, NULL, 'parent',
               'parent', p.item_id IS NOT NULL
        FROM work_items w LEFT JOIN work_items p ON p.item_id = w.parent_id AND NOT p.is_deleted
        WHERE w.parent_id IS NOT NULL AND NOT w.is_deleted
        """
    )


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    """Analytics results kept per sync generation (see warehouse.results): each result is a
    table ``result_<name>``; this index says which generation it was computed for."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS results (
            name VARCHAR, generation BIGINT, computed_at TIMESTAMPTZ, as_of TIMESTAMPTZ, "rows" BIGINT
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS metric_snapshots (
            generation BIGINT, as_of TIMESTAMPTZ, family VARCHAR, metric VARCHAR,
            scope VARCHAR, value DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS findings (
            rule VARCHAR, severity VARCHAR, item_id VARCHAR, "key" VARCHAR, url VARCHAR,
            team VARCHAR, organisation VARCHAR, owner_role VARCHAR, message VARCHAR,
            since TIMESTAMPTZ, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ,
            resolved_at TIMESTAMPTZ
        )
        """
    )


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    """Sprints belong to teams: one iteration may serve several teams (Azure DevOps teams share
    the project's iterations by default). ``sprint_teams`` holds one row per (sprint, team) the
    sprint serves; ``sprints`` stays one row per sprint. Backfilled from ``sprints.team`` (the one
    team each sprint had before)."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS sprint_teams (
            sprint_id VARCHAR, source VARCHAR, team VARCHAR
        )
        """
    )
    con.execute(
        """
        INSERT INTO sprint_teams
        SELECT DISTINCT sprint_id, source, team FROM sprints
        WHERE team IS NOT NULL AND sprint_id IS NOT NULL
        """
    )


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    """Saved views of the web app: named bookmarks (a path with its query) per viewer."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS saved_views (
            viewer VARCHAR NOT NULL, name VARCHAR NOT NULL, url VARCHAR NOT NULL,
            created TIMESTAMPTZ NOT NULL, PRIMARY KEY (viewer, name)
        )
        """
    )


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    """Scheduled report deliveries (``[[reports]]``): one row per attempt, ``running`` until it
    ends ``success`` or ``failed``; ``error`` is one redacted line; ``as_of`` is the report's data
    moment. ``/health`` and ``pmolens status`` show the last one per report."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS report_deliveries (
            delivery_id BIGINT, report VARCHAR, started TIMESTAMPTZ, finished TIMESTAMPTZ,
            outcome VARCHAR, target VARCHAR, error VARCHAR, as_of TIMESTAMPTZ
        )
        """
    )
    con.execute("CREATE SEQUENCE IF NOT EXISTS delivery_ids START 1")


MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1, _v2, _v3, _v4, _v5]
SCHEMA_VERSION = len(MIGRATIONS)

_SEQUENCE = re.compile(
    r"^\s*CREATE\s+SEQUENCE\s+IF\s+NOT\s+EXISTS\s+(\w+)(?:\s+START\s+(\d+))?\s*$", re.I
)
_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", re.I)
_TABLE_KEY = re.compile(r",\s*(?:PRIMARY\s+KEY|UNIQUE)\s*\([^)]*\)", re.I)
_COLUMN_KEY = re.compile(r"\s+(?:PRIMARY\s+KEY|UNIQUE)\b(?=\s*[,)])", re.I)


def lake_ddl(sql: str) -> tuple[str | None, tuple[str, int] | None]:
    """One shipped migration statement as DuckLake takes it: (the statement to run, or None;
    the sequence (name, start) to create in the catalog database instead, or None).

    DuckLake has no PRIMARY KEY/UNIQUE constraints, no indexes and no sequences. Dropping a key
    or an index keeps the tables' meaning: every write is delete-then-insert by its key inside one
    transaction, and on the lake one writing transaction runs at a time (``Lake.writing``), so
    no key is ever stored twice. A sequence becomes a PostgreSQL sequence (ids unique across
    processes). Anything else DuckLake refuses fails the migration loudly."""
    sequence = _SEQUENCE.match(sql)
    if sequence:
        return None, (sequence[1], int(sequence[2] or 1))
    if _INDEX.match(sql):
        return None, None
    return _COLUMN_KEY.sub("", _TABLE_KEY.sub("", sql)), None


class _LakeConnection:
    """What a migration sees on the lake: ``execute`` runs each statement as ``lake_ddl`` adapts
    it and hands sequences to ``on_sequence``; every other call goes to the connection."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, on_sequence: Callable[[str, int], None]
    ) -> None:
        self._con = con
        self._on_sequence = on_sequence

    def execute(self, sql: str, params: Any = None) -> _LakeConnection:
        statement, sequence = lake_ddl(sql)
        if sequence is not None:
            self._on_sequence(*sequence)
        if statement is not None:
            self._con.execute(statement, params)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def migrate(
    con: duckdb.DuckDBPyConnection,
    *,
    on_sequence: Callable[[str, int], None] | None = None,
) -> int:
    """Apply pending migrations in one transaction each; returns the resulting version.

    ``on_sequence``: given on the lake (DuckLake's DDL, see ``lake_ddl``): creates each
    sequence a migration declares in the catalog database."""
    target: Any = con if on_sequence is None else _LakeConnection(con, on_sequence)
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"warehouse schema version {current} is newer than this pmolens ({SCHEMA_VERSION}): "
            "upgrade pmolens"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            MIGRATIONS[version - 1](target)
            con.execute("INSERT INTO schema_version VALUES (?)", [version])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION
