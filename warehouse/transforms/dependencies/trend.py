"""The trend snapshot: (metric, scope, value) rows kept per sync (open, waiting, cross-team,
cross-organisation, red lines, cycles), for "all" and per organisation, so the trend of each can
be drawn over syncs.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import _with_extras

TREND_METRICS = (
    "open",
    "waiting",
    "cross_team_open",
    "cross_org_open",
    "cross_org_share",
    "conflicts",
    "at_risk",
    "unscheduled_blockers",
    "unresolved_open",
    "item_cycles",
    "team_cycles",
)


def trend_snapshot(edges: pl.DataFrame, cycles: pl.DataFrame) -> pl.DataFrame:
    """(metric, scope, value) rows for this sync: counts over open edges, for "all" and per
    organisation (an edge counts for each organisation it touches).

    cross_org_share = cross_org_open / cross_team_open (null when there is no cross-team edge).
    """
    edges = (
        _with_extras(edges)
        .select(
            "open",
            "blocker_org",
            "dependent_org",
            "waiting",
            "cross_team",
            "cross_org",
            "timing",
            "unresolved",
        )
        .filter(pl.col("open").fill_null(False))
    )
    timing = pl.col("timing")

    def counts(frame: Any) -> pl.DataFrame:
        return frame.agg(
            pl.len().cast(pl.Float64).alias("open"),
            pl.col("waiting").sum().cast(pl.Float64).alias("waiting"),
            pl.col("cross_team").fill_null(False).sum().cast(pl.Float64).alias("cross_team_open"),
            pl.col("cross_org").fill_null(False).sum().cast(pl.Float64).alias("cross_org_open"),
            (timing == "conflict").sum().cast(pl.Float64).alias("conflicts"),
            (timing == "at_risk").sum().cast(pl.Float64).alias("at_risk"),
            (timing == "unscheduled_blocker").sum().cast(pl.Float64).alias("unscheduled_blockers"),
            pl.col("unresolved").fill_null(False).sum().cast(pl.Float64).alias("unresolved_open"),
        )

    slim = edges.select(
        "blocker_org", "dependent_org", "waiting", "cross_team", "cross_org", "timing", "unresolved"
    )
    whole = counts(slim.with_columns(pl.lit("all").alias("scope")).group_by("scope"))
    # each organisation an edge touches once: the blocker's, plus the dependent's when it differs
    touched = pl.concat(
        [
            slim.filter(pl.col("blocker_org").is_not_null()).with_columns(
                pl.col("blocker_org").alias("_org")
            ),
            slim.filter(
                pl.col("dependent_org").is_not_null()
                & pl.col("dependent_org").ne_missing(pl.col("blocker_org"))
            ).with_columns(pl.col("dependent_org").alias("_org")),
        ]
    )
    per_org = counts(touched.group_by("_org")).select(
        pl.format("organisation:{}", "_org").alias("scope"), pl.exclude("_org")
    )
    cyc = cycles.group_by("level").len()
    n_cycles = dict(zip(cyc["level"].to_list(), cyc["len"].to_list(), strict=True))
    wide = pl.concat([whole, per_org]).with_columns(
        pl.when(pl.col("cross_team_open") > 0)
        .then((pl.col("cross_org_open") / pl.col("cross_team_open")).round(6))
        .alias("cross_org_share"),
        pl.when(pl.col("scope") == "all").then(float(n_cycles.get("item", 0))).alias("item_cycles"),
        pl.when(pl.col("scope") == "all").then(float(n_cycles.get("team", 0))).alias("team_cycles"),
    )
    if edges.height == 0:
        wide = pl.DataFrame(
            {"scope": ["all"], **{m: [0.0] for m in TREND_METRICS}},
        ).with_columns(pl.lit(None, pl.Float64).alias("cross_org_share"))
    return (
        wide.unpivot(
            index="scope", on=list(TREND_METRICS), variable_name="metric", value_name="value"
        )
        .filter(pl.col("value").is_not_null())
        .select("metric", "scope", pl.col("value").cast(pl.Float64))
        .sort("scope", "metric")
    )
