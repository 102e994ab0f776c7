"""Moving data between warehouses and out of them: the lake's snapshot retention (``expire``),
a DuckDB file into a lake and back (``copy_into``), and a partner's slice as Parquet
(``export_parquet``) for a chain partner that shares data but not access."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pmolens.warehouse.store import Warehouse

#: The tables a copy carries, in this order (``schema_version`` is the target's own).
_SKIP = {"schema_version"}


@dataclass(frozen=True)
class Expired:
    snapshots: int
    files: int


def expire(warehouse: Warehouse, older_than_days: int) -> Expired:
    """Forget the lake's snapshots older than ``older_than_days`` (``as_of`` cannot reach them
    any more) and delete the data files no kept snapshot needs, including files a killed worker
    wrote but never committed."""
    if warehouse.lake is None:
        raise ValueError(
            'expire is for a lake (kind = "ducklake"): a DuckDB file keeps no snapshots'
        )
    days = int(older_than_days)
    con = warehouse.cursor()
    try:
        with warehouse.lake.writing():  # no commit runs meanwhile
            snapshots = con.execute(
                f"CALL ducklake_expire_snapshots('lake', older_than => now() - INTERVAL {days} DAY)"
            ).fetchall()
            files = con.execute(
                "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)"
            ).fetchall()
            orphans = con.execute(
                "CALL ducklake_delete_orphaned_files('lake', older_than => now() - INTERVAL 1 HOUR)"
            ).fetchall()
    finally:
        con.close()
    return Expired(len(snapshots), len(files) + len(orphans))


def tables(warehouse: Warehouse) -> list[str]:
    """Every base table of the warehouse (canonical, runs, results), by name."""
    rows = warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    )
    return [name for name in rows["table_name"].to_list() if name not in _SKIP]


def copy_into(origin: Warehouse, target: Warehouse) -> dict[str, int]:
    """Every table of ``origin`` into ``target`` (an empty warehouse of either kind), in one
    transaction; rows per table. Ids go on after the copied ones."""
    if target.query("SELECT count(*) AS n FROM sync_runs")["n"][0]:
        raise ValueError(
            f"{target.path} already holds sync runs: copy only into an empty warehouse"
        )
    wanted = tables(origin)
    frames = {name: origin.query(f'SELECT * FROM "{name}"') for name in wanted}
    existing = set(tables(target))
    copied = {}
    with target.transaction() as con:
        for name, frame in frames.items():
            con.register("copied", frame.to_arrow())
            if name in existing:
                con.execute(f'DELETE FROM "{name}"')
                columns = ", ".join(f'"{c}"' for c in frame.columns)
                con.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM copied')
            else:  # a kept result table
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM copied')
            con.unregister("copied")
            copied[name] = frame.height
    for sequence, table, column in (
        ("run_ids", "sync_runs", "run_id"),
        ("delivery_ids", "report_deliveries", "delivery_id"),
    ):
        top = int(target.query(f"SELECT coalesce(max({column}), 0) AS m FROM {table}")["m"][0])
        if target.lake is not None:
            target.lake.move_sequence_past(sequence, top)
        else:
            with target.transaction() as con:
                con.execute(f"CREATE OR REPLACE SEQUENCE {sequence} START {top + 1}")
    return copied


#: A partner's slice: (table, the rows of the organisation ``$org``) - its own items and what
#: hangs on them, never another organisation's rows.
_SLICE = {
    "organisations": "SELECT * FROM organisations WHERE organisation = $org",
    "sources": "SELECT * FROM sources WHERE organisation = $org",
    "teams": "SELECT * FROM teams WHERE organisation = $org",
    "work_items": "SELECT * FROM work_items WHERE organisation = $org AND NOT is_deleted",
    "status_changes": (
        "SELECT s.* FROM status_changes s JOIN work_items w USING (item_id) "
        "WHERE w.organisation = $org AND NOT w.is_deleted"
    ),
    "links": (
        "SELECT l.* FROM links l WHERE l.source IN "
        "(SELECT source FROM sources WHERE organisation = $org)"
    ),
    "sprints": (
        "SELECT * FROM sprints WHERE source IN (SELECT source FROM sources WHERE organisation = $org)"
    ),
}


def export_parquet(
    warehouse: Warehouse, directory: Path, organisation: str | None = None
) -> dict[str, int]:
    """The canonical tables as one Parquet file each in ``directory``; with ``organisation`` only
    that organisation's slice. Rows per file."""
    if organisation is not None:
        known = warehouse.query("SELECT organisation FROM organisations")["organisation"].to_list()
        if organisation not in known:
            raise ValueError(f"unknown organisation {organisation!r}; known: {sorted(known)}")
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, sql in _SLICE.items():
        if organisation is None:
            sql = f"SELECT * FROM {name}" + (
                " WHERE NOT is_deleted" if name == "work_items" else ""
            )
            frame = warehouse.query(sql)
        else:
            frame = warehouse.query(sql, {"org": organisation})
        frame.write_parquet(directory / f"{name}.parquet")
        written[name] = frame.height
    return written
