"""Sprint work: committed items without an estimate, active-sprint items without an assignee."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext, lit_ts
from pmolens.warehouse.transforms.alignment.contract import ITEM_COLUMNS, rule
from pmolens.warehouse.transforms.alignment.text import label, labelled, params, txt


def _delivery(ctx: RuleContext, levels: Sequence[str]) -> pl.DataFrame:
    """Items of ``levels`` whose parent is not itself of ``levels`` (sub-tasks excluded)."""
    parents = ctx.items.select(pl.col("item_id").alias("parent_id"), pl.col("level").alias("_pl"))
    return (
        ctx.items.filter(pl.col("level").is_in(list(levels)))
        .join(parents, on="parent_id", how="left")
        .filter(~pl.col("_pl").is_in(list(levels)).fill_null(False))
        .drop("_pl")
    )


@rule(
    "unestimated_committed",
    "Committed work without an estimate",
    "Sprint planning: items taken into an active or upcoming sprint need an estimate, or the "
    "forecast and velocity of the team mean nothing.",
    "warning",
    "Team PO",
)
def unestimated_committed(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open delivery items without an estimate in a sprint of ``sprint_states``. Why: without
    estimates forecast and velocity mean nothing. Who acts: the team PO (warning in an active
    sprint, info in a future one)."""
    states = [s.lower() for s in t["sprint_states"]]
    sprints = (
        ctx.sprints.filter(pl.col("_state").is_in(states))
        .select(
            "sprint_id", pl.col("name").alias("_sprint"), pl.col("start").alias("_start"), "_state"
        )
        .unique("sprint_id", keep="first", maintain_order=True)  # once, whichever teams it serves
    )
    items = (
        _delivery(ctx, t["levels"])
        .filter(pl.col("_open") & pl.col("estimate").is_null())
        .join(sprints, on="sprint_id", how="inner")
    )
    return items.select(
        *ITEM_COLUMNS,
        pl.format(
            "{} {} is in {} sprint '{}' without an estimate: estimate it in refinement",
            "_type",
            label(),
            "_state",
            txt("_sprint"),
        ).alias("message"),
        pl.min_horizontal("_start", lit_ts(ctx.as_of)).alias("since"),
        pl.lit("finding_unestimated_committed").alias("message_key"),
        params(
            type=pl.col("_type"),
            item=label(),
            state=labelled(pl.format("finding_sprint_{}", "_state"), pl.col("_state")),
            sprint=txt("_sprint"),
        ).alias("message_params"),
        pl.when(pl.col("_state") == "active")
        .then(pl.lit("warning"))
        .otherwise(pl.lit("info"))
        .alias("severity"),
    )


@rule(
    "unassigned_in_active_sprint",
    "Sprint work without an assignee",
    "Sprint transparency: work in progress without a name cannot be asked about; a sprint "
    "backlog whose items nobody picks up is not a plan.",
    "warning",
    "Team PO",
)
def unassigned_in_active_sprint(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: open items of ``levels`` and ``categories`` in an active sprint without an assignee.
    Why: work without a name cannot be asked about. Who acts: the team PO (warning in progress,
    info to do)."""
    active = (
        ctx.sprints.filter(pl.col("_state") == "active")
        .select("sprint_id", pl.col("name").alias("_sprint"), pl.col("start").alias("_start"))
        .unique("sprint_id", keep="first", maintain_order=True)  # once, whichever teams it serves
    )
    items = ctx.items.filter(
        pl.col("_open")
        & pl.col("level").is_in(list(t["levels"]))
        & pl.col("status_category").is_in(list(t["categories"]))
        & (pl.col("assignee").is_null() | (pl.col("assignee").str.strip_chars() == ""))
    ).join(active, on="sprint_id", how="inner")
    return items.select(
        *ITEM_COLUMNS,
        pl.format(
            "{} {} is {} in active sprint '{}' without an assignee: someone should pick it up",
            "_type",
            label(),
            pl.col("status_category").str.replace("_", " "),
            txt("_sprint"),
        ).alias("message"),
        pl.col("_start").alias("since"),
        pl.lit("finding_unassigned_in_active_sprint").alias("message_key"),
        params(
            type=pl.col("_type"),
            item=label(),
            category=labelled(
                pl.format("finding_category_{}", "status_category"),
                pl.col("status_category").str.replace("_", " "),
            ),
            sprint=txt("_sprint"),
        ).alias("message_params"),
        pl.when(pl.col("status_category") == "in_progress")
        .then(pl.lit("warning"))
        .otherwise(pl.lit("info"))
        .alias("severity"),
    )
