"""Analytics computed once per sync generation and kept, so reads are fast.

An *analysis* is a named pure function of the canonical frames (``Inputs``) returning one frame.
``refresh`` runs them all after a sync and materialises each as a table ``result_<name>`` with a
row in ``results`` saying which generation (last successful sync run id) it belongs to.
``ResultCache`` serves them from memory until the generation moves.

Adding an analysis = one ``@analysis("name")`` function in a module of ``warehouse/analyses/``
(one module per domain, listed in its ``__init__``). The transforms themselves stay pure in
``warehouse/transforms/``; the analyses only pick their inputs and parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import polars as pl

from warehouse.config import Settings
from warehouse.store import Warehouse, utcnow

Analysis = Callable[["Inputs"], pl.DataFrame]
ANALYSES: dict[str, Analysis] = {}


def analysis(name: str) -> Callable[[Analysis], Analysis]:
    def register(fn: Analysis) -> Analysis:
        ANALYSES[name] = fn
        return fn

    return register


@dataclass
class Inputs:
    """The frames of one warehouse snapshot, plus shared intermediates computed at most once."""

    frames: dict[str, pl.DataFrame]
    settings: Settings
    as_of: datetime
    warehouse: Warehouse | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def work_items(self) -> pl.DataFrame:
        return self.frames["work_items"]

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """An intermediate several analyses use (dependency edges, flow data), computed once."""
        if name not in self.extra:
            self.extra[name] = compute()
        return self.extra[name]

    def previous(self, name: str) -> pl.DataFrame | None:
        """The stored result of the previous generation (for lifecycles such as findings)."""
        if self.warehouse is None:
            return None
        known = self.warehouse.query("SELECT 1 FROM results WHERE name = ?", [name])
        return self.warehouse.query(f"SELECT * FROM result_{name}") if known.height else None

    @cached_property
    def team_organisation(self) -> pl.DataFrame:
        """(team, organisation): each team's organisation, for the per-team analyses' rows."""
        from warehouse.transforms.backlog import team_organisation

        return team_organisation(self.work_items)

    def with_team_organisation(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (per team) with the team's organisation right after ``team``."""
        rest = [c for c in frame.columns if c != "team"]
        return frame.join(self.team_organisation, on="team", how="left").select(
            "team", "organisation", *rest
        )

    @cached_property
    def portfolio(self) -> pl.DataFrame:
        from warehouse.transforms.portfolio import portfolio_tree

        return portfolio_tree(self.work_items)


# --------------------------------------------------------------------------- compute and keep


def compute(inputs: Inputs, names: list[str] | None = None) -> dict[str, pl.DataFrame]:
    return {name: ANALYSES[name](inputs) for name in (names or list(ANALYSES))}


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


Snapshot = Callable[[Inputs], list[dict[str, Any]]]
SNAPSHOTS: list[Snapshot] = []


def snapshot(fn: Snapshot) -> Snapshot:
    SNAPSHOTS.append(fn)
    return fn


class ResultCache:
    """In-memory copies of the materialised results, dropped when the generation moves."""

    def __init__(self, warehouse: Warehouse, settings: Settings) -> None:
        self._warehouse = warehouse
        self._settings = settings
        self._lock = threading.Lock()
        self._generation = -1
        self._frames: dict[str, pl.DataFrame] = {}

    def get(self, name: str) -> pl.DataFrame:
        if name not in ANALYSES:
            raise KeyError(name)
        generation = self._warehouse.generation()
        with self._lock:
            if generation != self._generation:
                self._frames = {}
                self._generation = generation
            cached = self._frames.get(name)
        if cached is not None:
            return cached
        stored = self._warehouse.query("SELECT generation FROM results WHERE name = ?", [name])
        if stored.height and stored["generation"][0] == generation:
            frame = self._warehouse.query(f"SELECT * FROM result_{name}")
        else:  # not materialised for this generation (yet): compute from the snapshot
            inputs = Inputs(self._warehouse.frames(), self._settings, utcnow(), self._warehouse)
            frame = ANALYSES[name](inputs)
        with self._lock:
            if generation == self._generation:
                self._frames[name] = frame
        return frame


from warehouse import analyses  # noqa: E402,F401  (registers the analyses; imports this module)
