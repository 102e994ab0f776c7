"""Results refresh: after a sync, compute every analysis once and keep it (one transaction).

On the lake several workers commit; ``refresh_after_sync`` makes the refresh happen once per new
set of committed runs, in one process at a time (a PostgreSQL advisory lock): whoever holds the
lock refreshes while the kept results are behind the committed runs, the others find them
current once they get the lock, so no committed run is ever left without its results.

Workers that commit side by side share one refresh: before each round the refreshing process
waits for the sync commits in flight (those holding or queued for the lake's write lock), so
their runs are in the set it refreshes; and a round whose runs were overtaken by a newer commit
while it computed stops and writes nothing (it refreshes the newer set instead), unless it is the
last round it may do.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import polars as pl

from pmolens.warehouse.analyses import ANALYSES, SNAPSHOTS, Inputs
from pmolens.warehouse.config import Settings
from pmolens.warehouse.results import compute
from pmolens.warehouse.store import Warehouse, utcnow


def refresh(
    warehouse: Warehouse,
    settings: Settings,
    as_of: datetime | None = None,
    timings: dict[str, float] | None = None,
) -> int:
    """Compute every analysis for the current generation and materialise it (one transaction).
    ``timings``, when given, receives the seconds of each step (read, compute, write): the
    benchmark times this very path."""
    generation = _refresh(warehouse, settings, as_of, timings)
    assert generation is not None
    return generation


def _refresh(
    warehouse: Warehouse,
    settings: Settings,
    as_of: datetime | None = None,
    timings: dict[str, float] | None = None,
    *,
    unless_overtaken: bool = False,
) -> int | None:
    """``refresh``; with ``unless_overtaken``, nothing is written (None) when runs committed
    after the generation was read: the results are already behind. That is asked between the
    analyses too (at most every OVERTAKEN_CHECK seconds), so an overtaken round stops early."""
    clock = time.perf_counter()
    generation = warehouse.generation()
    as_of = as_of or utcnow()
    inputs = Inputs(warehouse.frames(), settings, as_of, warehouse)
    read = time.perf_counter()

    def overtaken() -> bool:
        return unless_overtaken and warehouse.generation(fresh=True) != generation

    if unless_overtaken:
        results: dict[str, pl.DataFrame] = {}
        asked = time.monotonic()
        for name in ANALYSES:
            results |= compute(inputs, [name])
            if time.monotonic() - asked >= OVERTAKEN_CHECK:
                if overtaken():
                    return None
                asked = time.monotonic()
    else:
        results = compute(inputs)
    snapshots = [row for fn in SNAPSHOTS for row in fn(inputs)]
    del inputs  # the frames and intermediates: not kept in memory while the tables are written
    computed = time.perf_counter()
    if overtaken():
        return None
    with warehouse.transaction() as con:
        for name, frame in results.items():
            con.register("result_frame", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE result_{name} AS SELECT * FROM result_frame")
            con.unregister("result_frame")
        kept = pl.DataFrame(
            {"name": list(results), "rows": [frame.height for frame in results.values()]},
            schema={"name": pl.String, "rows": pl.Int64},
        )
        con.register("kept", kept.to_arrow())
        con.execute("DELETE FROM results WHERE name IN (SELECT name FROM kept)")
        con.execute(
            "INSERT INTO results SELECT name, ?, now(), ?, rows FROM kept",
            [generation, as_of],
        )
        con.unregister("kept")
        _store_snapshots(con, generation, as_of, snapshots)
    if timings is not None:
        timings.update(
            read=read - clock, compute=computed - read, write=time.perf_counter() - computed
        )
    return generation


REFRESH_WAIT = 600.0  # seconds a worker waits for another process's refresh
REFRESH_ROUNDS = 5  # refreshes one process does in a row while workers keep committing
OVERTAKEN_CHECK = 0.5  # seconds between two looks for a newer commit while a lake refresh computes


def kept_generation(warehouse: Warehouse) -> int | None:
    """The generation the kept results were computed for (None: none kept)."""
    row = warehouse.query("SELECT max(generation) AS g FROM results")
    value = row["g"][0] if row.height else None
    return None if value is None else int(value)


def refresh_after_sync(warehouse: Warehouse, settings: Settings) -> int | None:
    """Refresh after syncs committed. The DuckDB file: at once (its one writer calls this). The
    lake: under the refresh lock, and only while the kept results are behind the committed runs;
    returns the generation refreshed last (None: another process had already done it)."""
    if warehouse.lake is None:
        return refresh(warehouse, settings)
    from pmolens.warehouse.lake import WRITE_LOCK

    lock = warehouse.lake.lock("refresh")
    if not lock.acquire(REFRESH_WAIT):
        raise TimeoutError(f"another process kept the results refresh for {REFRESH_WAIT:.0f} s")
    try:
        done = None
        for round_ in range(REFRESH_ROUNDS):
            # the commits in flight now (other workers' included) land before the set is read
            lock.wait_behind(WRITE_LOCK, REFRESH_WAIT)
            if kept_generation(warehouse) == warehouse.generation(fresh=True):
                break
            last = round_ == REFRESH_ROUNDS - 1
            done = _refresh(warehouse, settings, unless_overtaken=not last) or done
        return done
    finally:
        lock.release()


def _store_snapshots(con: Any, generation: int, as_of: datetime, rows: list[Any]) -> None:
    """Headline figures per sync, so every figure can show a trend."""
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
