"""Structure and ownership: work that traces to no epic, epics under no initiative, big work
without an owner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext
from pmolens.warehouse.transforms.alignment.contract import ITEM_COLUMNS, rule
from pmolens.warehouse.transforms.alignment.text import label, params, txt


@rule(
    "orphan_work",
    "Work with no path up to an epic",
    "Alignment: every feature and story should serve an epic (and through it a goal); work that "
    "hangs loose cannot be prioritised against the strategy.",
    "warning",
    "Team PO",
)
def orphan_work(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open items of ``levels`` with no epic or initiative above them (done ones too with
    ``include_done``). Why: loose work cannot be prioritised against the strategy. Who acts: the
    team PO."""
    items = ctx.items.filter(pl.col("level").is_in(list(t["levels"])))
    if not t["include_done"]:
        items = items.filter(pl.col("_open"))
    anchored = ctx.ancestors.filter(pl.col("anc_level").is_in(["epic", "initiative"]))
    return items.join(anchored.select("item_id").unique(), on="item_id", how="anti").select(
        *ITEM_COLUMNS,
        pl.format(
            "{} {} has no path up to an epic or initiative: link it to the epic it serves or stop it",
            "_type",
            label(),
        ).alias("message"),
        pl.col("created").alias("since"),
        pl.lit("finding_orphan_work").alias("message_key"),
        params(type=pl.col("_type"), item=label()).alias("message_params"),
    )


@rule(
    "epic_without_strategic_parent",
    "Epic not under an initiative",
    "Strategic alignment: where an organisation steers with initiatives, each epic should trace "
    "to one, or the portfolio cannot show what the strategy gets.",
    "warning",
    "Chief PO",
)
def epic_without_strategic_parent(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open epics with no initiative above them, only in organisations that use initiatives.
    Why: the portfolio cannot show what the strategy gets. Who acts: the Chief PO."""
    uses = ctx.items.filter(pl.col("level") == "initiative").select("organisation").unique()
    epics = ctx.items.filter(pl.col("level") == "epic").join(uses, on="organisation", how="semi")
    if not t["include_done"]:
        epics = epics.filter(pl.col("_open"))
    under = ctx.ancestors.filter(pl.col("anc_level") == "initiative").select("item_id").unique()
    return epics.join(under, on="item_id", how="anti").select(
        *ITEM_COLUMNS,
        pl.format(
            "Epic {} is not under an initiative, while {} steers with initiatives: "
            "link it to the initiative it serves",
            label(),
            txt("organisation"),
        ).alias("message"),
        pl.col("created").alias("since"),
        pl.lit("finding_epic_without_strategic_parent").alias("message_key"),
        params(item=label(), organisation=txt("organisation")).alias("message_params"),
    )


@rule(
    "no_owner",
    "Epic or feature without an owner",
    "Ownership: a large piece of work nobody owns is nobody's priority; someone must answer for "
    "its scope and progress.",
    "warning",
    "Chief PO",
)
def no_owner(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open items of ``levels`` (epics, features) without an assignee. Why: work nobody owns
    is nobody's priority. Who acts: the Chief PO for epics, the team PO otherwise."""
    items = ctx.items.filter(
        pl.col("level").is_in(list(t["levels"]))
        & (pl.col("assignee").is_null() | (pl.col("assignee").str.strip_chars() == ""))
    )
    if not t["include_done"]:
        items = items.filter(pl.col("_open"))
    return items.select(
        *ITEM_COLUMNS,
        pl.format("{} {} has no assignee: name an owner", "_type", label()).alias("message"),
        pl.col("created").alias("since"),
        pl.lit("finding_no_owner").alias("message_key"),
        params(type=pl.col("_type"), item=label()).alias("message_params"),
        pl.when(pl.col("level") == "epic")
        .then(pl.lit("Chief PO"))
        .otherwise(pl.lit("Team PO"))
        .alias("owner_role"),
    )
