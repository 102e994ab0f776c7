"""Walking the work item hierarchy by row number: shared by the portfolio, flow, dependency and
alignment transforms, so a walk up is one numpy gather per level instead of a join on ids."""

from __future__ import annotations

import numpy as np
import polars as pl


def parent_rows(items: pl.DataFrame) -> np.ndarray:
    """Row of each item's parent in ``items`` (-1: no parent, or it is not in ``items``)."""
    return (
        items.select(pl.col("parent_id").alias("_id"))
        .join(
            items.select(pl.col("item_id").alias("_id")).with_row_index("_p"),
            on="_id",
            how="left",
            maintain_order="left",
        )["_p"]
        .cast(pl.Int64)
        .fill_null(-1)
        .to_numpy()
    )


def first_ancestor_where(parent: np.ndarray, is_level: np.ndarray, max_depth: int) -> np.ndarray:
    """Row of the first ancestor (the row itself included) where ``is_level``; -1 if none.

    At most ``max_depth`` parents up (parent cycles in bad data end there); a parent outside the
    frame ends the walk. One vectorised gather per level walked, never a loop per row.
    """
    n = len(parent)
    found = np.full(n, -1, dtype=np.int64)
    cur = np.arange(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    for depth in range(max_depth + 1):
        hit = active & is_level[cur]
        found[hit] = cur[hit]
        active &= ~hit
        if depth == max_depth or not active.any():
            break
        nxt = np.where(active, parent[cur], -1)
        active &= nxt >= 0
        cur = np.where(active, nxt, 0)
    return found
