"""Portfolio overview: the hierarchy initiative -> epic -> feature -> story with progress per node.

Progress of a node counts its *work* descendants (items with no children of their own, i.e. the
stories, bugs and tasks under it), by count and by estimate. A leaf node reports itself.
"""

from __future__ import annotations

import polars as pl

MAX_DEPTH = 8  # deeper trees are cut here; real trackers stop at 4-5 levels


def ancestors(work_items: pl.DataFrame) -> pl.DataFrame:
    """(item_id, ancestor_id, distance) for every item and each ancestor, itself at distance 0.

    Iterative joins over parent_id (one join per level, never per row); cycles in bad data stop
    at MAX_DEPTH.
    """
    parents = work_items.select("item_id", "parent_id").lazy()
    level = work_items.select(
        pl.col("item_id"), pl.col("item_id").alias("ancestor_id"), pl.lit(0).alias("distance")
    ).lazy()
    frames = [level]
    for _ in range(MAX_DEPTH):
        level = (
            level.join(parents, left_on="ancestor_id", right_on="item_id", how="inner")
            .filter(pl.col("parent_id").is_not_null())
            .select(
                "item_id",
                pl.col("parent_id").alias("ancestor_id"),
                (pl.col("distance") + 1).alias("distance"),
            )
        )
        frames.append(level)
    return pl.concat(frames).collect()


def portfolio_tree(work_items: pl.DataFrame) -> pl.DataFrame:
    """One row per item with roll-up progress of the work below it (see module doc)."""
    items = work_items.select(
        "item_id",
        "key",
        "url",
        "title",
        "level",
        "team",
        "organisation",
        "source",
        "parent_id",
        "status_category",
        "assignee",
        "estimate",
        "due_date",
        "rank",
    )
    has_children = (
        items.filter(pl.col("parent_id").is_not_null())
        .select(pl.col("parent_id").alias("item_id"))
        .unique()
        .with_columns(pl.lit(True).alias("has_children"))
    )
    leaves = (
        items.join(has_children, on="item_id", how="left")
        .filter(pl.col("has_children").is_null())
        .select(
            "item_id",
            (pl.col("status_category") == "done").alias("done"),
            pl.col("estimate").fill_null(0.0),
        )
    )
    rolled = (
        ancestors(work_items)
        .join(leaves, on="item_id", how="inner")
        .group_by("ancestor_id")
        .agg(
            pl.len().alias("items_total"),
            pl.col("done").sum().alias("items_done"),
            pl.col("estimate").sum().alias("estimate_total"),
            pl.col("estimate").filter(pl.col("done")).sum().alias("estimate_done"),
        )
        .rename({"ancestor_id": "item_id"})
    )
    depth = ancestors(work_items).group_by("item_id").agg(pl.col("distance").max().alias("depth"))
    return (
        items.join(rolled, on="item_id", how="left")
        .join(depth, on="item_id", how="left")
        .with_columns(
            pl.col("items_total").fill_null(0).cast(pl.Int64),
            pl.col("items_done").fill_null(0).cast(pl.Int64),
            pl.col("estimate_total").fill_null(0.0),
            pl.col("estimate_done").fill_null(0.0),
        )
        .with_columns(
            _ratio("items_done", "items_total").alias("progress_count"),
            _ratio("estimate_done", "estimate_total").alias("progress_estimate"),
        )
        .sort("organisation", "team", "level", "rank", "key", nulls_last=True)
    )


def portfolio_by(tree: pl.DataFrame, by: str, level: str = "epic") -> pl.DataFrame:
    """Progress of the ``level`` nodes rolled up per team or organisation."""
    return (
        tree.filter(pl.col("level") == level)
        .group_by(by)
        .agg(
            pl.len().alias(f"{level}s"),
            (pl.col("status_category") == "done").sum().alias(f"{level}s_done"),
            pl.col("items_total").sum(),
            pl.col("items_done").sum(),
            pl.col("estimate_total").sum(),
            pl.col("estimate_done").sum(),
        )
        .with_columns(
            _ratio("items_done", "items_total").alias("progress_count"),
            _ratio("estimate_done", "estimate_total").alias("progress_estimate"),
        )
        .sort(by, nulls_last=True)
    )


def _ratio(done: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total) > 0).then(pl.col(done) / pl.col(total)).otherwise(None).round(4)
