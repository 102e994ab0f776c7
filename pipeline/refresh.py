"""Results refresh: after a sync, compute every analysis once and keep it (one transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from pmolens.warehouse.analyses import SNAPSHOTS, Inputs
from pmolens.warehouse.config import Settings
from pmolens.warehouse.results import compute
from pmolens.warehouse.store import Warehouse, utcnow


def refresh(warehouse: Warehouse, settings: Settings, as_of: datetime | None = None) -> int:
    """Compute every analysis for the current generation and materialise it (one transaction)."""
    generation = warehouse.generation()
    as_of = as_of or utcnow()
    inputs = Inputs(warehouse.frames(), settings, as_of, warehouse)
    results = compute(inputs)
    with warehouse.transaction() as con:
        for name, frame in results.items():
            con.register("result_frame", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE result_{name} AS SELECT * FROM result_frame")
            con.unregister("result_frame")
            con.execute("DELETE FROM results WHERE name = ?", [name])
            con.execute(
                "INSERT INTO results VALUES (?, ?, now(), ?, ?)",
                [name, generation, as_of, frame.height],
            )
        _store_snapshots(con, generation, as_of, inputs)
    return generation


def _store_snapshots(con: Any, generation: int, as_of: datetime, inputs: Inputs) -> None:
    """Headline figures per sync, so every figure can show a trend."""
    rows = [row for fn in SNAPSHOTS for row in fn(inputs)]
    if not rows:
        return
    frame = pl.DataFrame(
        rows,
        schema={"family": pl.String, "metric": pl.String, "scope": pl.String, "value": pl.Float64},
    ).with_columns(
        pl.lit(generation, pl.Int64).alias("generation"),
        pl.lit(as_of).dt.convert_time_zone("UTC").alias("as_of"),
    )
    con.register(
        "snap", frame.select("generation", "as_of", "family", "metric", "scope", "value").to_arrow()
    )
    con.execute("DELETE FROM metric_snapshots WHERE generation = ?", [generation])
    con.execute("INSERT INTO metric_snapshots SELECT * FROM snap")
    con.unregister("snap")
