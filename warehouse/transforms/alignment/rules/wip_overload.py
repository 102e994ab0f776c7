"""WIP: teams with more work in progress than their limit or their usual level (from the status
history, one difference array over the days)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext, days_between, lit_ts
from pmolens.warehouse.transforms.alignment.contract import empty_hits, rule
from pmolens.warehouse.transforms.alignment.text import num, params


@rule(
    "wip_overload",
    "Team works on too much at once",
    "Flow (Little's law): more work in progress means longer cycle times and later delivery for "
    "everyone who depends on the team; stop starting, start finishing.",
    "warning",
    "Team PO",
)
def wip_overload(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: teams whose work in progress is above their limit (critical) or their usual level, a
    percentile of their daily WIP (warning); team-level. Why: more WIP, longer cycle times for
    everyone who depends on the team (Little's law). Who acts: the team PO."""
    keys = ["organisation", "team"]
    items = ctx.items.filter(
        pl.col("level").is_in(list(t["levels"])) & pl.col("team").is_not_null()
    )
    current = (
        items.filter(pl.col("_open") & (pl.col("status_category") == "in_progress"))
        .group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias("_wip"))
    )
    if current.height == 0:
        return empty_hits()
    limits = pl.DataFrame(
        {"team": [str(k) for k in t["limits"]], "_limit": [float(v) for v in t["limits"].values()]},
        schema={"team": pl.String, "_limit": pl.Float64},
    )
    series = _daily_wip(ctx, items, int(t["history_days"]))
    n_days = int(t["history_days"])
    usual = (
        series.group_by(keys)
        .agg(
            pl.len().alias("_days"),
            pl.col("_v").quantile(float(t["percentile"]), interpolation="linear").alias("_p"),
        )
        .with_columns(
            pl.when(pl.col("_days") >= t["min_history_days"]).then(pl.col("_p")).alias("_p")
        )
    )
    over = (
        current.join(limits, on="team", how="left")
        .join(usual, on=keys, how="left", nulls_equal=True)
        .with_columns(
            (pl.col("_wip") > pl.col("_limit")).fill_null(False).alias("_over_limit"),
            (pl.col("_wip") > pl.col("_p")).fill_null(False).alias("_over_usual"),
        )
        .filter(pl.col("_over_limit") | pl.col("_over_usual"))
        .with_columns(
            pl.when(pl.col("_over_limit"))
            .then(pl.col("_limit"))
            .otherwise(pl.col("_p"))
            .alias("_thr")
        )
    )
    # since: the first day-end measured above the breached threshold, after the last one at or
    # under it (day resolution); null when the team has no status history
    day0 = _day_floor(ctx.as_of) - timedelta(days=n_days)
    last_ok = (
        series.join(over.select(*keys, "_thr"), on=keys, how="inner", nulls_equal=True)
        .group_by(keys)
        .agg(
            pl.col("_k").filter(pl.col("_v") <= pl.col("_thr")).max().alias("_k_ok"),
            pl.col("_k").min().alias("_k0"),
        )
        .with_columns(
            pl.when(pl.col("_k_ok").is_null())
            .then(pl.col("_k0"))
            .otherwise(pl.min_horizontal(pl.col("_k_ok") + 1, pl.lit(n_days - 1)))
            .alias("_k_since")
        )
        .select(
            *keys,
            (lit_ts(day0) + pl.duration(days=pl.col("_k_since") + 1)).alias("_since"),
        )
    )
    pct = round(float(t["percentile"]) * 100)
    usual_txt = pl.format(
        "its usual level ({}th percentile of daily WIP over the last {} days: {})",
        pl.lit(pct),
        pl.lit(n_days),
        num(pl.col("_p")),
    )
    limit_txt = pl.format("its WIP limit of {}", num(pl.col("_limit")))
    above = (
        pl.when(pl.col("_over_limit") & pl.col("_over_usual"))
        .then(pl.format("{} and {}", limit_txt, usual_txt))
        .when(pl.col("_over_limit"))
        .then(limit_txt)
        .otherwise(usual_txt)
    )
    out = over.join(last_ok, on=keys, how="left", nulls_equal=True)
    return out.select(
        pl.lit(None, pl.String).alias("item_id"),
        pl.lit(None, pl.String).alias("key"),
        pl.lit(None, pl.String).alias("url"),
        "team",
        "organisation",
        pl.format(
            "Team {} has {} items in progress, above {}: stop starting, finish work first",
            "team",
            "_wip",
            above,
        ).alias("message"),
        pl.col("_since").alias("since"),
        pl.when(pl.col("_over_limit") & pl.col("_over_usual"))
        .then(pl.lit("finding_wip_overload_both"))
        .when(pl.col("_over_limit"))
        .then(pl.lit("finding_wip_overload_limit"))
        .otherwise(pl.lit("finding_wip_overload_usual"))
        .alias("message_key"),
        params(
            team=pl.col("team"),
            wip=pl.col("_wip"),
            limit=pl.col("_limit").round(1),
            percentile=pl.lit(pct),
            days=pl.lit(n_days),
            usual=pl.col("_p").round(1),
        ).alias("message_params"),
        pl.when(pl.col("_over_limit"))
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning"))
        .alias("severity"),
    )


def _day_floor(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _daily_wip(ctx: RuleContext, items: pl.DataFrame, n_days: int) -> pl.DataFrame:
    """(organisation, team, _k, _v): items in progress at the end of each of the last n days.

    Day k (0..n-1) is measured at t_k = floor(as_of) - n days + (k+1) days. Each in-progress
    interval [at, next change) adds +1 at its first covered day and -1 after its last (a
    difference array), so the cost is per interval, not per interval-day. A team's series starts
    at the first day-end after its first recorded status change.
    """
    keys = ["organisation", "team"]
    day0 = _day_floor(ctx.as_of) - timedelta(days=n_days)
    d0 = lit_ts(day0)
    # items by row number (``_row`` of ctx.items): the sort groups each item's changes without
    # comparing id strings; team keys go only onto the few rows that need them
    team_of = (
        ctx.items.select("item_id")
        .with_row_index("_row")
        .join(items.select("item_id", *keys), on="item_id", how="inner")
        .drop("item_id")
    )
    changes = (
        ctx.status_changes.select("_row", "at", "change_id", "to_category")
        .join(team_of.select("_row"), on="_row", how="semi")
        .sort("_row", "at", "change_id")
        .with_columns(  # the item's next change (sorted, so a shift, not a window per item)
            pl.when(pl.col("_row").shift(-1) == pl.col("_row"))
            .then(pl.col("at").shift(-1))
            .alias("_next")
        )
    )

    def first_k(col: str) -> pl.Expr:
        """Index of the first day-end at or after the moment in ``col`` (0 at the earliest)."""
        return (days_between(d0, col).ceil() - 1).clip(0, None).cast(pl.Int64)

    intervals = (
        changes.filter(pl.col("to_category") == "in_progress")
        .with_columns(
            first_k("at").alias("_a"),
            pl.when(pl.col("_next").is_null())
            .then(pl.lit(n_days - 1, pl.Int64))
            .otherwise((days_between(d0, "_next").ceil() - 2).cast(pl.Int64))
            .clip(None, n_days - 1)
            .alias("_b"),
        )
        .filter(pl.col("_a") <= pl.col("_b"))
        .join(team_of, on="_row", how="inner", maintain_order="left")
    )
    deltas = pl.concat(
        [
            intervals.select(*keys, pl.col("_a").alias("_k"), pl.lit(1, pl.Int64).alias("_d")),
            intervals.filter(pl.col("_b") < n_days - 1).select(
                *keys, (pl.col("_b") + 1).alias("_k"), pl.lit(-1, pl.Int64).alias("_d")
            ),
        ]
    )
    starts = (
        changes.filter(pl.col("_row").is_first_distinct())  # each item's earliest change
        .join(team_of, on="_row", how="inner")
        .group_by(keys)
        .agg(pl.col("at").min().alias("_first"))
        .with_columns(first_k("_first").alias("_k0"))
        .filter(pl.col("_k0") <= n_days - 1)
    )
    grid = starts.select(*keys, "_k0").join(
        pl.DataFrame({"_k": pl.int_range(0, n_days, eager=True).cast(pl.Int64)}), how="cross"
    )
    summed = deltas.group_by(*keys, "_k").agg(pl.col("_d").sum())
    return (
        grid.join(summed, on=[*keys, "_k"], how="left", nulls_equal=True)
        .sort(*keys, "_k")
        .with_columns(pl.col("_d").fill_null(0).cum_sum().over(keys).alias("_v"))
        .filter(pl.col("_k") >= pl.col("_k0"))
        .select(*keys, "_k", "_v")
    )
