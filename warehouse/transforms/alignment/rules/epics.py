"""Epics: status that contradicts their items, open work spread over too many teams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext
from pmolens.warehouse.transforms.alignment.contract import ITEM_COLUMNS, rule
from pmolens.warehouse.transforms.alignment.text import join_list, label, listed, params


@rule(
    "done_but_open",
    "Epic status contradicts its items",
    "Transparency: a closed epic with open items hides remaining work; an open epic whose items "
    "are all done inflates WIP and hides delivered value.",
    "warning",
    "Chief PO",
)
def done_but_open(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: closed epics with open items (warning), open epics whose items are all done (info).
    Why: the first hides remaining work, the second inflates WIP. Who acts: the Chief PO."""
    children = (
        ctx.epic_of.join(
            ctx.items.select("item_id", "key", "_open", "resolved", "updated"),
            on="item_id",
            how="inner",
        )
        .sort("key")
        .group_by("epic_id")
        .agg(
            pl.len().alias("_n"),
            pl.col("_open").sum().alias("_n_open"),
            pl.col("key").filter(pl.col("_open")).alias("_open_keys"),
            pl.coalesce("resolved", "updated").filter(~pl.col("_open")).max().alias("_last_done"),
        )
    )
    epics = ctx.items.filter(pl.col("level") == "epic").join(
        children, left_on="item_id", right_on="epic_id", how="inner"
    )
    closed = epics.filter(~pl.col("_open") & (pl.col("_n_open") > 0)).select(
        *ITEM_COLUMNS,
        pl.format(
            "Epic {} is closed but {} of its {} items are still open ({}): reopen the epic or "
            "close or move the items",
            label(),
            "_n_open",
            "_n",
            join_list("_open_keys"),
        ).alias("message"),
        pl.coalesce("resolved", "updated").alias("since"),
        pl.lit("finding_done_but_open_closed").alias("message_key"),
        params(
            item=label(), open=pl.col("_n_open"), items=pl.col("_n"), keys=listed("_open_keys")
        ).alias("message_params"),
        pl.lit("warning").alias("severity"),
    )
    finished = epics.filter(pl.col("_open") & (pl.col("_n_open") == 0)).select(
        *ITEM_COLUMNS,
        pl.format(
            "Epic {} is still open although all {} of its items are done: close it or add the "
            "remaining work",
            label(),
            "_n",
        ).alias("message"),
        pl.col("_last_done").alias("since"),
        pl.lit("finding_done_but_open_finished").alias("message_key"),
        params(item=label(), items=pl.col("_n")).alias("message_params"),
        pl.lit("info").alias("severity"),
    )
    return pl.concat([closed, finished])


@rule(
    "epic_spread",
    "Epic spread over too many teams",
    "Team autonomy and dependencies: an epic whose open work sits in many teams needs constant "
    "coordination; slice it along team lines or give it one lead team.",
    "warning",
    "Chief PO",
)
def epic_spread(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open epics whose open work sits in more than ``max_teams`` teams. Why: such an epic
    needs constant coordination. Who acts: the Chief PO."""
    teams = (
        ctx.epic_of.join(
            ctx.items.filter(pl.col("_open") & pl.col("team").is_not_null()).select(
                "item_id", pl.col("team").alias("_t")
            ),
            on="item_id",
            how="inner",
        )
        .group_by("epic_id")
        .agg(pl.col("_t").unique().sort().alias("_teams"))
        .with_columns(pl.col("_teams").list.len().alias("_n"))
        .filter(pl.col("_n") > t["max_teams"])
    )
    return (
        ctx.items.filter((pl.col("level") == "epic") & pl.col("_open"))
        .join(teams, left_on="item_id", right_on="epic_id", how="inner")
        .select(
            *ITEM_COLUMNS,
            pl.format(
                "Epic {} has open work in {} teams ({}), more than {}: slice it along team lines "
                "or name one lead team",
                label(),
                "_n",
                join_list("_teams", 6),
                pl.lit(t["max_teams"]),
            ).alias("message"),
            pl.col("created").alias("since"),
            pl.lit("finding_epic_spread").alias("message_key"),
            params(
                item=label(),
                teams=pl.col("_n"),
                names=listed("_teams", 6),
                max_teams=pl.lit(t["max_teams"]),
            ).alias("message_params"),
        )
    )
