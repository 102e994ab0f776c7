"""Stale work: items in progress nobody touches, epics whose items have stopped moving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext, days_between, lit_ts
from pmolens.warehouse.transforms.alignment.contract import ITEM_COLUMNS, rule
from pmolens.warehouse.transforms.alignment.text import fmt_date, label, params


@rule(
    "stale_work",
    "Stale work",
    "Flow and transparency: work in progress that nobody touches hides a blocker or a silent "
    "stop; an epic whose items have not moved for weeks is stalled, not progressing.",
    "warning",
    "Team PO",
)
def stale_work(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: items in progress without activity for ``stale_days``; open epics whose items have not
    changed status for ``epic_stale_days``. Why: untouched work hides a blocker or a silent stop.
    Who acts: the team PO (items), the Chief PO (epics)."""
    as_of = lit_ts(ctx.as_of)
    wip = (
        ctx.items.filter(
            pl.col("level").is_in(list(t["levels"])) & (pl.col("status_category") == "in_progress")
        )
        .join(ctx.last_change, on="item_id", how="left")
        .with_columns(pl.max_horizontal("updated", "last_change_at").alias("_last"))
        .with_columns(days_between("_last", as_of).alias("_age"))
        .filter(pl.col("_age") >= t["stale_days"])
    )
    items = wip.select(
        *ITEM_COLUMNS,
        pl.format(
            "{} {} has been in progress without an update for {} days (since {}): unblock it, "
            "finish it or put it back",
            "_type",
            label(),
            pl.col("_age").floor().cast(pl.Int64),
            fmt_date("_last"),
        ).alias("message"),
        pl.col("_last").alias("since"),
        pl.lit("Team PO").alias("owner_role"),
        pl.lit("finding_stale_work").alias("message_key"),
        params(
            type=pl.col("_type"),
            item=label(),
            days=pl.col("_age").floor().cast(pl.Int64),
            last=fmt_date("_last"),
        ).alias("message_params"),
    )
    children = ctx.epic_of.join(
        ctx.items.select("item_id", "status_category"), on="item_id", how="inner"
    )
    progress = (  # the latest change per item is already known: max of those per epic
        ctx.last_change.join(ctx.epic_of, on="item_id", how="inner")
        .group_by("epic_id")
        .agg(pl.col("last_change_at").max().alias("_child_at"))
    )
    started = (
        children.filter(pl.col("status_category") != "todo").select("epic_id").unique()
    ).with_columns(pl.lit(True).alias("_started"))
    epics = (
        ctx.items.filter((pl.col("level") == "epic") & pl.col("_open"))
        .join(progress, left_on="item_id", right_on="epic_id", how="left")
        .join(started, left_on="item_id", right_on="epic_id", how="left")
        .with_columns(pl.coalesce("_child_at", "created").alias("_last"))
        .with_columns(days_between("_last", as_of).alias("_age"))
        .filter(pl.col("_age") >= t["epic_stale_days"])
    )
    if not t["include_todo_epics"]:
        epics = epics.filter(
            (pl.col("status_category") == "in_progress") | pl.col("_started").fill_null(False)
        )
    stalled = epics.select(
        *ITEM_COLUMNS,
        pl.when(pl.col("_child_at").is_null())
        .then(
            pl.format(
                "Epic {} is open and none of its items has changed status in the {} days since "
                "it was created: decide to start, re-plan or stop it",
                label(),
                pl.col("_age").floor().cast(pl.Int64),
            )
        )
        .otherwise(
            pl.format(
                "Epic {} has had no status change in any of its items for {} days (last {}): "
                "it has stalled; re-plan or stop it",
                label(),
                pl.col("_age").floor().cast(pl.Int64),
                fmt_date("_child_at"),
            )
        )
        .alias("message"),
        pl.col("_last").alias("since"),
        pl.lit("Chief PO").alias("owner_role"),
        pl.when(pl.col("_child_at").is_null())
        .then(pl.lit("finding_stale_epic_untouched"))
        .otherwise(pl.lit("finding_stale_epic"))
        .alias("message_key"),
        params(
            item=label(),
            days=pl.col("_age").floor().cast(pl.Int64),
            last=fmt_date("_child_at"),
        ).alias("message_params"),
    )
    return pl.concat([items, stalled])
