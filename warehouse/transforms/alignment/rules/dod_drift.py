"""Definition of Done: workflows that drift between the teams of one product, done items that
skipped a required state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import polars as pl

from pmolens.warehouse.model import UTC_TS
from pmolens.warehouse.transforms.alignment.context import RuleContext, lit_ts
from pmolens.warehouse.transforms.alignment.contract import ITEM_COLUMNS, rule, team_hits
from pmolens.warehouse.transforms.alignment.text import fmt_date, label, labelled, params


@rule(
    "dod_drift",
    "Workflows (Definition of Done) drift between teams of one product",
    "One product, one Definition of Done: teams that build one product should follow the same "
    "workflow to done; items that skip a required state (e.g. review) are not done by that DoD.",
    "warning",
    "SoS Master",
)
def dod_drift(ctx: RuleContext, t: Mapping[str, Any]) -> pl.DataFrame:
    """What: teams of one product whose workflow (the status names their items use) differs from
    the majority's (team-level); with ``required_states``, done items that never passed one.
    Why: one product, one Definition of Done. Who acts: the SoS Master (skipped states: team PO)."""
    window_start = lit_ts(ctx.as_of - timedelta(days=t["window_days"]))
    levels = list(t["levels"])
    scoped = ctx.items.filter(pl.col("level").is_in(levels) & pl.col("team").is_not_null())
    recent = scoped.filter(pl.col("_open") | (pl.col("updated") >= window_start))
    # lazy and narrow: recent changes are never materialised with all their columns
    changes = (
        ctx.status_changes.lazy()
        .filter(pl.col("at") >= window_start)
        .select("item_id", "from_status", "to_status")
        .join(scoped.lazy().select("item_id", "organisation", "team"), on="item_id", how="inner")
    )
    seen = (
        pl.concat(
            [
                recent.lazy().select("organisation", "team", pl.col("raw_status").alias("_s")),
                changes.select("organisation", "team", pl.col("from_status").alias("_s")),
                changes.select("organisation", "team", pl.col("to_status").alias("_s")),
            ]
        )
        .unique()  # few distinct (team, status) pairs: normalise those, not every change
        .with_columns(pl.col("_s").str.strip_chars().str.to_lowercase())
        .filter(pl.col("_s").is_not_null() & (pl.col("_s") != ""))
        .collect()
    )
    counted = recent.group_by("organisation", "team").len().filter(pl.col("len") >= t["min_items"])
    products = {str(k): str(v) for k, v in t["products"].items()}
    sets = (
        seen.join(counted, on=["organisation", "team"], how="semi")
        .group_by("organisation", "team")
        .agg(pl.col("_s").unique().sort().alias("_set"))
        .with_columns(
            pl.col("team")
            .replace_strict(products, default=pl.col("organisation"), return_dtype=pl.String)
            .alias("_product"),
            pl.col("_set").list.join("|").alias("_sig"),
        )
        .with_columns(pl.len().over("_product").alias("_teams"))
        .filter(pl.col("_teams") >= 2)
    )
    counts = sets.group_by("_product", "_sig").agg(
        pl.len().alias("_n"), pl.col("_set").first().alias("_mset")
    )
    best = counts.filter(pl.col("_n") == pl.col("_n").max().over("_product"))
    majority = best.filter(pl.len().over("_product") == 1).select(
        "_product", pl.col("_sig").alias("_msig"), "_mset", pl.col("_n").alias("_mn")
    )
    variants = counts.group_by("_product").len().rename({"len": "_variants"})
    drift = (
        sets.join(majority, on="_product", how="left")
        .join(variants, on="_product", how="left")
        .filter(pl.col("_msig").is_null() | (pl.col("_sig") != pl.col("_msig")))
        .with_columns(
            pl.col("_set").list.set_difference("_mset").list.sort().alias("_extra"),
            pl.col("_mset").list.set_difference("_set").list.sort().alias("_missing"),
        )
    )
    level_name = "/".join(levels)
    message = (
        pl.when(pl.col("_msig").is_null())
        .then(
            pl.format(
                "Team {}: the {} teams of product {} use {} different {} workflows with no "
                "majority: agree one workflow and Definition of Done",
                "team",
                "_teams",
                "_product",
                "_variants",
                pl.lit(level_name),
            )
        )
        .otherwise(
            pl.format(
                "Team {} uses a {} workflow that differs from the one {} of {} teams of product {} "
                "share (extra: {}; missing: {}): align the Definition of Done",
                "team",
                pl.lit(level_name),
                "_mn",
                "_teams",
                "_product",
                pl.when(pl.col("_extra").list.len() > 0)
                .then(pl.col("_extra").list.join(", "))
                .otherwise(pl.lit("none")),
                pl.when(pl.col("_missing").list.len() > 0)
                .then(pl.col("_missing").list.join(", "))
                .otherwise(pl.lit("none")),
            )
        )
    )

    def states(col: str) -> pl.Expr:
        return labelled(
            pl.when(pl.col(col).list.len() == 0).then(pl.lit("finding_none")),
            pl.col(col).list.join(", "),
        )

    key = (
        pl.when(pl.col("_msig").is_null())
        .then(pl.lit("finding_dod_drift_no_majority"))
        .otherwise(pl.lit("finding_dod_drift"))
    )
    values = params(
        team=pl.col("team"),
        teams=pl.col("_teams"),
        product=pl.col("_product"),
        variants=pl.col("_variants"),
        levels=pl.lit(level_name),
        majority_teams=pl.col("_mn"),
        extra=states("_extra"),
        missing=states("_missing"),
    )
    team_level = team_hits(drift, message, pl.lit(None, UTC_TS), key, values).with_columns(
        pl.lit(None, pl.String).alias("owner_role")
    )
    required = [str(s) for s in t["required_states"]]
    if not required:
        return team_level
    return pl.concat([team_level, _skipped_required(ctx, scoped, required, window_start)])


def _skipped_required(
    ctx: RuleContext, scoped: pl.DataFrame, required: list[str], window_start: pl.Expr
) -> pl.DataFrame:
    """Done items (done within the window, with status history) that never passed a state."""
    history = ctx.status_changes.join(scoped.select("item_id"), on="item_id", how="semi")
    done_at = (
        history.filter(pl.col("to_category") == "done")
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_done_at"))
    )
    done = (
        scoped.filter(~pl.col("_open"))
        .join(history.select("item_id").unique(), on="item_id", how="semi")
        .join(done_at, on="item_id", how="left")
        .with_columns(pl.coalesce("_done_at", "resolved").alias("_done_at"))
        .filter(pl.col("_done_at") >= window_start)
    )
    visited = pl.concat(
        [
            history.select("item_id", pl.col("to_status").alias("_s")),
            history.select("item_id", pl.col("from_status").alias("_s")),
        ]
    ).with_columns(pl.col("_s").str.strip_chars().str.to_lowercase())
    missing = pl.concat(
        [
            done.select("item_id")
            .join(visited.filter(pl.col("_s") == state.strip().lower()), on="item_id", how="anti")
            .with_columns(pl.lit(state).alias("_state"))
            for state in required
        ]
    )
    per_item = missing.group_by("item_id").agg(pl.col("_state").sort().alias("_missing"))
    return (
        done.join(per_item, on="item_id", how="inner")
        .select(
            *ITEM_COLUMNS,
            pl.format(
                "{} {} reached done on {} without passing {}: check it against the Definition "
                "of Done",
                "_type",
                label(),
                fmt_date("_done_at"),
                pl.col("_missing").list.eval(pl.format("'{}'", pl.element())).list.join(", "),
            ).alias("message"),
            pl.col("_done_at").alias("since"),
            pl.lit("Team PO").alias("owner_role"),
            pl.lit("finding_dod_skipped").alias("message_key"),
            params(
                type=pl.col("_type"),
                item=label(),
                done=fmt_date("_done_at"),
                states=pl.col("_missing")
                .list.eval(pl.format("'{}'", pl.element()))
                .list.join(", "),
            ).alias("message_params"),
        )
        .select(*ITEM_COLUMNS, "message", "since", "message_key", "message_params", "owner_role")
    )
