"""Portfolio overview: the hierarchy initiative -> epic -> feature -> story with progress per node.

Progress of a node counts its *work* descendants (items with no children of their own, i.e. the
stories, bugs and tasks under it), by count and by estimate. A leaf node reports itself.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pmolens.warehouse.transforms.hierarchy import parent_rows

MAX_DEPTH = 8  # deeper trees are cut here; real trackers stop at 4-5 levels


def _walk(work_items: pl.DataFrame) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Walk up by parent row number (one numpy gather per level, never a join or a loop per row).

    Returns the parent row of each row (-1: none, or not in ``work_items``) and, per distance
    1..MAX_DEPTH, ``(rows, via)``: the ancestor of row ``rows[i]`` at that distance is the
    parent_id of row ``via[i]``. A parent missing from ``work_items`` is the last ancestor; a
    cycle in bad data stops at MAX_DEPTH.
    """
    parent = parent_rows(work_items)
    if parent.size != work_items.height:
        raise ValueError("work_items: item_id must be unique (a parent id occurs twice)")
    has_parent = work_items["parent_id"].is_not_null().to_numpy()
    rows = via = np.flatnonzero(work_items["item_id"].is_not_null().to_numpy())  # null: no walk
    levels = []
    for _ in range(MAX_DEPTH):
        keep = has_parent[via]
        rows, via = rows[keep], via[keep]
        levels.append((rows, via))
        keep = parent[via] >= 0
        rows, via = rows[keep], parent[via[keep]]
    return parent, levels


def ancestors(work_items: pl.DataFrame) -> pl.DataFrame:
    """(item_id, ancestor_id, distance) for every item and each ancestor, itself at distance 0
    (see ``_walk``: a parent_id is listed even when that parent is not in ``work_items``)."""
    ids, parent_ids = work_items["item_id"], work_items["parent_id"]
    everyone = np.arange(work_items.height, dtype=np.int64)
    found = [(everyone, ids, everyone), *((r, parent_ids, v) for r, v in _walk(work_items)[1])]
    schema = {"item_id": pl.String, "ancestor_id": pl.String, "distance": pl.Int32}
    return pl.concat(
        pl.DataFrame(
            {
                "item_id": ids.gather(rows),
                "ancestor_id": anc.gather(via),
                "distance": np.full(rows.size, distance, dtype=np.int32),
            },
            schema=schema,
        )
        for distance, (rows, anc, via) in enumerate(found)
    )


def portfolio_tree(work_items: pl.DataFrame) -> pl.DataFrame:
    """One row per item with roll-up progress of the work below it (see module doc).

    Rolls up along ``_walk`` with numpy sums per ancestor row (no frame of all ancestor pairs);
    a work item under a cycle counts once per time the walk passes an ancestor, as it always did.
    """
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
    n = items.height
    parent, levels = _walk(items)
    has_id = items["item_id"].is_not_null().to_numpy()
    leaf = has_id.copy()  # work: an item no other item names as parent
    leaf[parent[parent >= 0]] = False
    done = (items["status_category"] == "done").fill_null(False).to_numpy()
    estimate = items["estimate"].fill_null(0.0).cast(pl.Float64).to_numpy()
    depth = np.where(has_id, 0, -1).astype(np.int32)
    # distance 0: a leaf counts itself; distance d: rows[i] counts at the row of its ancestor
    pairs = [(np.flatnonzero(leaf), np.flatnonzero(leaf))]
    for distance, (rows, via) in enumerate(levels, start=1):
        depth[rows] = distance
        anc = parent[via]
        keep = leaf[rows] & (anc >= 0)
        pairs.append((rows[keep], anc[keep]))
    work = np.concatenate([r for r, _ in pairs])
    at = np.concatenate([a for _, a in pairs])
    work_done = done[work]
    return (
        items.with_columns(
            pl.Series("items_total", np.bincount(at, minlength=n), dtype=pl.Int64),
            pl.Series("items_done", np.bincount(at[work_done], minlength=n), dtype=pl.Int64),
            pl.Series("estimate_total", np.bincount(at, estimate[work], minlength=n)),
            pl.Series(
                "estimate_done",
                np.bincount(at[work_done], estimate[work[work_done]], minlength=n),
            ),
            pl.Series("depth", depth, dtype=pl.Int32).replace(-1, None),
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
