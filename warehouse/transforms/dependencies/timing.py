"""Timing of a dependency: the verdict per edge (conflict, at risk, unscheduled blocker, on
track, unplanned, done) and the "red lines" (open edges whose timing is a problem), worst first.
One place for the vocabulary the edges, the matrices, the Scrum of Scrums view and the API use
(docs/dependencies.md, "Timing"); the slip days of a conflict are set with the verdict in
``edges``.
"""

from __future__ import annotations

import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import _with_extras

TIMINGS = ("conflict", "at_risk", "unscheduled_blocker", "on_track", "unplanned", "done")
#: The "red lines", worst first: the timing states of an open edge that is a red line.
RED_LINES = ("conflict", "unscheduled_blocker", "at_risk")


def is_red_line() -> pl.Expr:
    """True for a red line: an open edge whose timing is one of ``RED_LINES``. The one
    definition every view counts (docs/dependencies.md, "Timing and red lines")."""
    return pl.col("open").fill_null(False) & pl.col("timing").is_in(list(RED_LINES))


def red_line_headline(edges: pl.DataFrame) -> dict[str, int]:
    """The red-line headline every view shows (CLI, API, report, alignment rule): ``red_lines``
    (how many red lines), one count per state in ``RED_LINES`` (they add up to ``red_lines``)
    and ``waiting_items`` (distinct dependents with at least one red line: what the
    ``dependency_timing_conflict`` rule counts). Any frame with the edges' ``open``, ``timing``
    and ``dependent_id`` columns: all edges or only the red lines give the same answer."""
    red = edges.lazy().filter(is_red_line())
    counts = red.group_by("timing").len().collect()
    by_state = dict(zip(counts["timing"].to_list(), counts["len"].to_list(), strict=True))
    items = red.select(pl.col("dependent_id").drop_nulls().n_unique()).collect().item()
    return {
        "red_lines": sum(by_state.values()),
        **{state: int(by_state.get(state, 0)) for state in RED_LINES},
        "waiting_items": int(items),
    }


def _timing(dp: pl.Expr, bp: pl.Expr) -> pl.Expr:
    """The timing verdict of one edge (docs/dependencies.md, "Timing")."""
    dep_done = (pl.col("dependent_category") == "done").fill_null(False)
    blk_done = (pl.col("blocker_category") == "done").fill_null(False)
    same_sprint = (pl.col("blocker_sprint") == pl.col("dependent_sprint")).fill_null(False)
    return (
        pl.when(dep_done)
        .then(pl.lit("done"))
        .when(blk_done)
        .then(pl.lit("on_track"))
        .when(dp.is_null() & bp.is_null())
        .then(pl.lit("unplanned"))
        .when(bp.is_null())
        .then(pl.lit("unscheduled_blocker"))
        .when(dp.is_null())
        .then(pl.lit("on_track"))
        .when(dp < bp)
        .then(pl.lit("conflict"))
        .when(same_sprint | (dp == bp))
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("on_track"))
    )


def dependency_conflicts(edges: pl.DataFrame) -> pl.DataFrame:
    """The red lines (``is_red_line``): open edges whose timing is conflict,
    unscheduled_blocker or at_risk.

    Ordered by kind (conflict, unscheduled blocker, at risk), then slip days (largest first),
    then the dependent's planned end and keys.
    """
    order = pl.col("timing").replace_strict(
        {t: i for i, t in enumerate(RED_LINES)}, default=None, return_dtype=pl.Int8
    )
    return (
        _with_extras(edges)
        .filter(is_red_line())
        .with_columns(order.alias("_order"))
        .sort(
            ["_order", "slip_days", "dependent_planned_end", "dependent_key", "blocker_key"],
            descending=[False, True, False, False, False],
            nulls_last=True,
        )
        .drop("_order")
    )
