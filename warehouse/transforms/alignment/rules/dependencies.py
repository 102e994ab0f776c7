"""Dependencies between teams: priority inversions and dependent work planned before its blocker
(over the edges of warehouse/transforms/dependencies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from pmolens.warehouse.transforms.alignment.context import RuleContext
from pmolens.warehouse.transforms.alignment.contract import rule
from pmolens.warehouse.transforms.alignment.text import (
    fmt_date,
    join_list,
    label,
    labelled,
    listed,
    params,
    txt,
)
from pmolens.warehouse.transforms.dependencies.timing import RED_LINES, is_red_line


def _open_edges(ctx: RuleContext) -> pl.LazyFrame:
    """Resolved edges with both ends known and open (neither end done); lazy, so a rule's own
    filter runs in the same pass and only the rows it keeps are copied."""
    return ctx.edges.lazy().filter(
        pl.col("dependent_id").is_not_null()
        & ~pl.col("unresolved").fill_null(False)
        & (pl.col("blocker_category").is_not_null() & (pl.col("blocker_category") != "done"))
        & (pl.col("dependent_category") != "done").fill_null(True)
    )


def _priority_label(col: str) -> pl.Expr:
    return (
        pl.when(pl.col(col).is_null())
        .then(pl.lit("unprioritised"))
        .otherwise(pl.format("P{}", pl.col(col)))
    )


def _priority_param(col: str) -> pl.Expr:
    """The priority as a parameter: "P2", or the reader's word for unprioritised."""
    return labelled(
        pl.when(pl.col(col).is_null()).then(pl.lit("finding_unprioritised")),
        _priority_label(col),
    )


def _sentence(sentence_key: str, **fields: pl.Expr) -> pl.Expr:
    """A parameter that is itself a sentence of the catalogue (reports/decision_text.py)."""
    return pl.struct(
        pl.lit(sentence_key).alias("sentence"),
        pl.struct(*[e.alias(n) for n, e in fields.items()]).alias("params"),
    )


@rule(
    "priority_inversion",
    "High-priority work waits on lower-priority work of another team",
    "Backlogs must respect dependencies: when team A's top item needs team B's item, B's item "
    "must be at least as important, or A waits (MetaScrum ordering).",
    "warning",
    "Chief PO",
)
def priority_inversion(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: blockers of open cross-team edges that rank below the work waiting on them (top
    ``max_rank`` only); one finding per blocker. Why: the important team waits. Who acts: the
    Chief PO."""
    lower = pl.col("blocker_priority_rank") > pl.col("dependent_priority_rank")
    if t["unprioritised_is_low"]:
        lower = lower | pl.col("blocker_priority_rank").is_null()
    edges = (
        _open_edges(ctx)
        .filter(
            pl.col("cross_team").fill_null(False)
            & (pl.col("dependent_priority_rank") <= t["max_rank"])
            & lower.fill_null(False)
        )
        .collect()
    )
    created = ctx.items.select("item_id", "created")
    edges = edges.join(
        created.rename({"item_id": "dependent_id", "created": "_dc"}), on="dependent_id", how="left"
    ).join(created.rename({"item_id": "blocker_id", "created": "_bc"}), on="blocker_id", how="left")
    per_blocker = (
        edges.sort("dependent_priority_rank", "dependent_key")
        .group_by("blocker_id")
        .agg(
            pl.col("blocker_key", "blocker_url", "blocker_title", "blocker_team", "blocker_org")
            .first()
            .name.keep(),
            pl.col("blocker_priority_rank").first(),
            pl.format(
                "{} ({}, {})",
                txt("dependent_key"),
                _priority_label("dependent_priority_rank"),
                txt("dependent_team"),
            )
            .unique(maintain_order=True)
            .alias("_deps"),
            _sentence(
                "finding_waiting_entry",
                key=txt("dependent_key"),
                priority=_priority_param("dependent_priority_rank"),
                team=txt("dependent_team"),
            )
            .unique(maintain_order=True)
            .alias("_dep_params"),
            pl.col("_bc").first(),
            pl.col("_dc").min(),
        )
    )
    return per_blocker.select(
        pl.col("blocker_id").alias("item_id"),
        pl.col("blocker_key").alias("key"),
        pl.col("blocker_url").alias("url"),
        pl.col("blocker_team").alias("team"),
        pl.col("blocker_org").alias("organisation"),
        pl.format(
            "{} ({}, {}) blocks higher-priority work of other teams: {}; raise its priority or "
            "re-plan the dependent work",
            label("blocker_key", "blocker_title", "blocker_id"),
            _priority_label("blocker_priority_rank"),
            txt("blocker_team"),
            join_list("_deps"),
        ).alias("message"),
        pl.max_horizontal("_bc", "_dc").alias("since"),
        pl.lit("finding_priority_inversion").alias("message_key"),
        params(
            item=label("blocker_key", "blocker_title", "blocker_id"),
            priority=_priority_param("blocker_priority_rank"),
            team=txt("blocker_team"),
            waiting=listed("_dep_params"),
        ).alias("message_params"),
    )


@rule(
    "dependency_timing_conflict",
    "Waiting work with a red line",
    "Integrated planning: an item planned to finish before the item it depends on, whose blocker "
    "is not planned at all, or planned in the same sprint without slack, will likely slip; the "
    "Scrum of Scrums must re-plan one of them. Jira Plans and Delivery Plans draw these as red "
    "lines.",
    "warning",
    "SoS Master",
)
def dependency_timing_conflict(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: every dependent item with at least one red line (``timing.is_red_line``: an open
    edge in conflict, with an unscheduled blocker or at risk); one finding per dependent, its
    worst red line named, "(+k more)" for the others, so the findings count the waiting items
    of the red-line headline and 1 + k summed over them is its red-line count. Severity from
    the worst state: critical for a conflict of ``critical_slip_days`` or more, warning for
    another conflict or an unscheduled blocker, info for at risk. ``unscheduled_blocker`` off
    leaves those red lines out (a subset). Why: one of the two will slip. Who acts: the SoS
    Master when a red line crosses teams, else the team PO."""
    states = [s for s in RED_LINES if s != "unscheduled_blocker" or t["unscheduled_blocker"]]
    state_order = pl.col("timing").replace_strict(
        {s: i for i, s in enumerate(RED_LINES)}, default=None, return_dtype=pl.Int8
    )
    edges = (
        ctx.edges.lazy()
        .filter(
            pl.col("dependent_id").is_not_null() & is_red_line() & pl.col("timing").is_in(states)
        )
        .with_columns(
            pl.when(
                (pl.col("timing") == "conflict")
                & (pl.col("slip_days") >= t["critical_slip_days"]).fill_null(False)
            )
            .then(2)
            .when(pl.col("timing") == "at_risk")
            .then(0)
            .otherwise(1)
            .alias("_sev"),
            state_order.alias("_state"),
        )
        # only the columns the message needs: the per-dependent "first" below moves them all
        .select(
            "_sev",
            "_state",
            "timing",
            "slip_days",
            "cross_team",
            *(
                f"dependent_{c}"
                for c in ("id", "key", "url", "title", "team", "org", "planned_end")
            ),
            *(f"blocker_{c}" for c in ("id", "key", "team", "org", "planned_end")),
        )
        .collect()
    )
    created = ctx.items.select("item_id", "created")
    edges = edges.join(
        created.rename({"item_id": "dependent_id", "created": "_dc"}), on="dependent_id", how="left"
    ).join(created.rename({"item_id": "blocker_id", "created": "_bc"}), on="blocker_id", how="left")
    worst = (
        edges.sort(
            ["dependent_id", "_sev", "_state", "slip_days", "blocker_key"],
            descending=[False, True, False, True, False],
            nulls_last=True,
        )
        .group_by("dependent_id", maintain_order=True)
        .agg(
            pl.all().first(),
            pl.len().alias("_n"),
            pl.col("cross_team").fill_null(False).any().alias("_cross"),
            pl.max_horizontal("_bc", "_dc").min().alias("_since"),
        )
    )
    blocker = pl.format("{} ({}, {})", txt("blocker_key"), txt("blocker_team"), txt("blocker_org"))
    more = (
        pl.when(pl.col("_n") > 1)
        .then(pl.format(" (+{} more)", pl.col("_n") - 1))
        .otherwise(pl.lit(""))
    )
    conflict = pl.format(
        "{} is planned to finish {}, {} days before its blocker {} is planned to finish {}: "
        "re-plan one of them{}",
        label("dependent_key", "dependent_title", "dependent_id"),
        fmt_date("dependent_planned_end"),
        txt("slip_days"),
        blocker,
        fmt_date("blocker_planned_end"),
        more,
    )
    unscheduled = pl.format(
        "{} is planned to finish {} but its blocker {} is not planned at all: get it scheduled{}",
        label("dependent_key", "dependent_title", "dependent_id"),
        fmt_date("dependent_planned_end"),
        blocker,
        more,
    )
    at_risk = pl.format(
        "{} is planned to finish {}, in the same sprint as or on the same day as its blocker {}: "
        "no slack, agree the order in the Scrum of Scrums{}",
        label("dependent_key", "dependent_title", "dependent_id"),
        fmt_date("dependent_planned_end"),
        blocker,
        more,
    )
    return worst.select(
        pl.col("dependent_id").alias("item_id"),
        pl.col("dependent_key").alias("key"),
        pl.col("dependent_url").alias("url"),
        pl.col("dependent_team").alias("team"),
        pl.col("dependent_org").alias("organisation"),
        pl.when(pl.col("timing") == "conflict")
        .then(conflict)
        .when(pl.col("timing") == "unscheduled_blocker")
        .then(unscheduled)
        .otherwise(at_risk)
        .alias("message"),
        pl.col("_since").alias("since"),
        pl.format("finding_timing_{}", "timing").alias("message_key"),
        params(
            item=label("dependent_key", "dependent_title", "dependent_id"),
            planned=fmt_date("dependent_planned_end"),
            slip=pl.col("slip_days"),
            blocker=blocker,
            blocker_planned=fmt_date("blocker_planned_end"),
            more=pl.struct(
                pl.when(pl.col("_n") > 1).then(pl.lit("finding_more_suffix")).alias("sentence"),
                pl.struct((pl.col("_n") - 1).alias("n")).alias("params"),
                pl.lit("").alias("text"),
            ),
        ).alias("message_params"),
        pl.col("_sev")
        .replace_strict({2: "critical", 1: "warning", 0: "info"}, return_dtype=pl.String)
        .alias("severity"),
        pl.when(pl.col("_cross"))
        .then(pl.lit("SoS Master"))
        .otherwise(pl.lit("Team PO"))
        .alias("owner_role"),
    )
