"""Team and organisation matrices: open cross-team dependencies per (blocker, dependent) pair
of teams or organisations, with the drill-down to the links. The overview a programme looks at
first.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import _team, _with_extras

MATRIX_SCHEMA: dict[str, Any] = {
    "blocker_org": pl.String,
    "blocker_team": pl.String,
    "dependent_org": pl.String,
    "dependent_team": pl.String,
    "open": pl.Int64,
    "waiting": pl.Int64,
    "conflicts": pl.Int64,
    "at_risk": pl.Int64,
    "unscheduled_blockers": pl.Int64,
    "max_slip_days": pl.Int64,
    "link_ids": pl.List(pl.String),
}


def dependency_matrix(edges: pl.DataFrame, by: str = "team") -> pl.DataFrame:
    """Open cross-team dependencies per (blocker, dependent) team pair, or organisation pair.

    ``by="team"``: one row per ordered pair of (organisation, team); ``by="organisation"``: the
    same edges rolled up to organisation pairs (the diagonal holds cross-team dependencies within
    an organisation). Either way the ``open`` column sums to the number of open cross-team edges.
    ``link_ids`` is the drill-down to the edges. A missing team counts as ``(no team)``.
    """
    if by not in ("team", "organisation"):
        raise ValueError("by must be 'team' or 'organisation'")
    edges = _with_extras(edges)
    keys = ["blocker_org", "dependent_org"]
    if by == "team":
        keys = ["blocker_org", "blocker_team", "dependent_org", "dependent_team"]
    timing = pl.col("timing")
    out = (
        edges.lazy()  # lazy: only the columns used are filtered, not all ~50
        .filter(pl.col("open").fill_null(False) & pl.col("cross_team").fill_null(False))
        .with_columns(
            _team("blocker").alias("blocker_team"), _team("dependent").alias("dependent_team")
        )
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("open"),
            pl.col("waiting").sum().cast(pl.Int64).alias("waiting"),
            (timing == "conflict").sum().cast(pl.Int64).alias("conflicts"),
            (timing == "at_risk").sum().cast(pl.Int64).alias("at_risk"),
            (timing == "unscheduled_blocker").sum().cast(pl.Int64).alias("unscheduled_blockers"),
            pl.col("slip_days").max().cast(pl.Int64).alias("max_slip_days"),
            pl.col("link_id").sort().alias("link_ids"),
        )
        .sort(keys, nulls_last=True)
        .collect()
    )
    schema = {k: v for k, v in MATRIX_SCHEMA.items() if k in keys or k not in _TEAM_KEYS}
    return out.select([pl.col(c).cast(t) for c, t in schema.items()])


_TEAM_KEYS = ("blocker_org", "blocker_team", "dependent_org", "dependent_team")
