"""Chains and the critical path: the longest waiting chain overall and per epic, in items and
planned days, with its head, tail and path (cycles contracted, one member marked "+n").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import NO_TEAM, _utc, _with_extras
from pmolens.warehouse.transforms.dependencies.graph import (
    Condensed,
    _csr,
    _gather,
    _node_table,
    condense,
    waiting_graph,
)

CHAINS_SCHEMA: dict[str, Any] = {
    "scope": pl.String,  # all / epic
    "epic_id": pl.String,
    "epic_key": pl.String,
    "chain_items": pl.Int64,  # items on the chain, head and tail included
    "planned_days": pl.Int64,  # as_of -> latest planned end on the chain (>= 0); null: none
    "chain_end": pl.Date,
    "unplanned_items": pl.Int64,
    "head_id": pl.String,
    "head_key": pl.String,
    "head_team": pl.String,
    "head_org": pl.String,
    "tail_id": pl.String,
    "tail_key": pl.String,
    "tail_team": pl.String,
    "teams": pl.Int64,  # distinct teams on the chain
    "path": pl.List(pl.String),  # keys from head to tail (cycles: one member, marked "+n")
    "path_truncated": pl.Boolean,
}
MAX_PATH = 100
_NO_DAY = np.iinfo(np.int64).min


def _longest_chains(cond: Condensed, planned: np.ndarray) -> dict[str, np.ndarray]:
    """Per component: items on the longest waiting chain ending there (component sizes add up),
    its head component, the chosen predecessor, the latest planned day and unplanned count."""
    c = cond.c
    dist = cond.size.copy()
    head = np.arange(c, dtype=np.int64)
    pred = np.full(c, -1, dtype=np.int64)
    end = planned.copy()
    indptr, preds = _csr(c, cond.cdst, cond.csrc)
    for level in cond.levels[1:]:
        owner, pos = _gather(indptr, level)
        if pos.size == 0:
            continue
        cand = preds[pos]
        order = np.lexsort((cand, -dist[cand], owner))
        owner, cand = owner[order], cand[order]
        first = np.ones(len(owner), dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        nodes, best = level[owner[first]], cand[first]
        dist[nodes] = cond.size[nodes] + dist[best]
        head[nodes] = head[best]
        pred[nodes] = best
        end[nodes] = np.maximum(planned[nodes], end[best])
    return {"dist": dist, "head": head, "pred": pred, "end": end}


def dependency_chains(
    edges: pl.DataFrame, as_of: datetime, condensed: Condensed | None = None
) -> pl.DataFrame:
    """The longest waiting chain overall (scope "all") and per epic (the longest chain ending at
    an item of the epic): length in items, planned days, head and tail (``CHAINS_SCHEMA``).

    A chain is a path in the waiting graph with cycles contracted (a cycle counts all its items).
    Ties: the later planned end, then the smaller tail key. Only chains of >= 2 items.
    """
    day0 = _utc(as_of).date()
    edges = _with_extras(edges)
    cond = condensed if condensed is not None else condense(waiting_graph(edges))
    g = cond.graph
    nodes = _node_table(edges, g).with_columns(pl.Series("_comp", cond.comp))
    if cond.c == 0:
        return pl.DataFrame(schema=CHAINS_SCHEMA)
    # per component: representative (smallest key), latest planned day, unplanned members
    pe = nodes["planned_end"].cast(pl.Int64).fill_null(_NO_DAY).to_numpy()
    planned = np.full(cond.c, _NO_DAY, dtype=np.int64)
    np.maximum.at(planned, cond.comp, pe)
    res = _longest_chains(cond, planned)
    dist, head, pred, end = res["dist"], res["head"], res["pred"], res["end"]
    # representative: the member with the smallest key (only cycles need a sort)
    multi = cond.size[cond.comp] > 1
    rep = np.zeros(cond.c, dtype=np.int64)
    rep[cond.comp[~multi]] = np.flatnonzero(~multi)
    if multi.any():
        firsts = (
            nodes.with_row_index("_row")
            .filter(pl.Series(multi))
            .sort("key", "item_id", nulls_last=True)
            .unique("_comp", keep="first")
        )
        rep[firsts["_comp"].to_numpy()] = firsts["_row"].to_numpy()
    unpl = np.bincount(cond.comp, weights=(pe == _NO_DAY).astype(np.float64), minlength=cond.c)
    # candidates: the tail component of each chain; per epic, items of the epic
    comp_rows = pl.DataFrame(
        {
            "_comp": np.arange(cond.c),
            "chain_items": dist,
            "_end": end,
            "_head": head,
        }
    )
    tails = nodes.select("item_id", "key", "team", "epic", "epic_key", "_comp").join(
        comp_rows, on="_comp", how="left"
    )
    tails = tails.filter(pl.col("chain_items") >= 2).sort(
        ["chain_items", "_end", "key", "item_id"],
        descending=[True, True, False, False],
        nulls_last=True,
    )
    best_all = tails.head(1).with_columns(
        pl.lit("all").alias("scope"),
        pl.lit(None, pl.String).alias("epic"),
        pl.lit(None, pl.String).alias("epic_key"),
    )
    best_epic = (
        tails.filter(pl.col("epic").is_not_null())
        .unique("epic", keep="first", maintain_order=True)
        .with_columns(pl.lit("epic").alias("scope"))
        .sort("chain_items", "epic_key", descending=[True, False], nulls_last=True)
    )
    chosen = pl.concat([best_all, best_epic])
    if chosen.height == 0:
        return pl.DataFrame(schema=CHAINS_SCHEMA)
    # walk the chosen chains back from their tails, all at once (one step per chain link)
    tail_comp = chosen["_comp"].to_numpy()
    steps = [tail_comp]
    cur = tail_comp
    truncated = np.zeros(len(cur), dtype=bool)
    for _ in range(MAX_PATH - 1):
        cur = np.where(cur >= 0, pred[np.maximum(cur, 0)], -1)
        if not (cur >= 0).any():
            break
        steps.append(cur)
    else:
        truncated = pred[np.maximum(cur, 0)] >= 0
    walk = np.stack(steps[::-1], axis=1)  # head ... tail, -1 padding on the left
    # path labels and team counts: one long frame (chain row, step) -> joins, no Python loop
    r_ix, s_ix = np.nonzero(walk >= 0)  # row-major: head to tail within each chain
    long = pl.DataFrame({"_r": r_ix, "_comp": walk[r_ix, s_ix]})
    size_s = pl.Series(cond.size)
    labels = pl.DataFrame(
        {"_comp": np.arange(cond.c), "_key": nodes["key"].fill_null(nodes["item_id"]).gather(rep)}
    ).with_columns(
        pl.when(pl.lit(size_s) > 1)
        .then(pl.format("{} +{}", "_key", pl.lit(size_s) - 1))
        .otherwise(pl.col("_key"))
        .alias("_label")
    )
    paths = (
        long.join(labels, on="_comp", how="left", maintain_order="left")
        .group_by("_r", maintain_order=True)
        .agg(pl.col("_label").alias("path"))
    )
    member_teams = nodes.select("_comp", pl.col("team").fill_null(NO_TEAM), "org").unique()
    team_counts = (
        long.join(member_teams, on="_comp", how="inner")
        .group_by("_r")
        .agg(pl.struct("org", "team").n_unique().alias("teams"))
    )
    per_row = (
        pl.DataFrame({"_r": np.arange(len(walk))})
        .join(paths, on="_r", how="left", maintain_order="left")
        .join(team_counts, on="_r", how="left", maintain_order="left")
    )
    path_col = per_row["path"]
    team_count = per_row["teams"].fill_null(0)
    head_rows = rep[chosen["_head"].to_numpy()]
    chain_end = chosen["_end"].to_numpy()
    unplanned = _chain_sum(pred, unpl, tail_comp)
    return (
        chosen.select(
            "scope",
            pl.col("epic").alias("epic_id"),
            "epic_key",
            pl.col("chain_items").cast(pl.Int64),
            pl.col("item_id").alias("tail_id"),
            pl.col("key").alias("tail_key"),
            pl.col("team").alias("tail_team"),
        )
        .with_columns(
            pl.Series("_end", chain_end),
            pl.Series("head_id", g.ids.gather(head_rows)),
            pl.Series("head_key", nodes["key"].gather(head_rows)),
            pl.Series("head_team", nodes["team"].gather(head_rows)),
            pl.Series("head_org", nodes["org"].gather(head_rows)),
            pl.Series("unplanned_items", unplanned, dtype=pl.Int64),
            pl.Series("teams", team_count, dtype=pl.Int64),
            pl.Series("path", path_col, dtype=pl.List(pl.String)),
            pl.Series("path_truncated", truncated),
        )
        .with_columns(
            pl.when(pl.col("_end") != _NO_DAY)
            .then(pl.col("_end").cast(pl.Int32).cast(pl.Date))
            .alias("chain_end")
        )
        .with_columns(
            (pl.col("chain_end") - pl.lit(day0)).dt.total_days().clip(0, None).alias("planned_days")
        )
        .select([pl.col(c).cast(t) for c, t in CHAINS_SCHEMA.items()])
    )


def _chain_sum(pred: np.ndarray, weight: np.ndarray, tails: np.ndarray) -> np.ndarray:
    """Sum of ``weight`` over each chain (tail back to head), walked for all tails at once."""
    total = np.zeros(len(tails), dtype=np.float64)
    cur = tails.copy()
    while (cur >= 0).any():
        live_ = cur >= 0
        total[live_] += weight[cur[live_]]
        cur = np.where(live_, pred[np.maximum(cur, 0)], -1)
    return total.astype(np.int64)


def epic_chain(
    edges: pl.DataFrame, epic_id: str, direction: str = "upstream", max_depth: int = 12
) -> pl.DataFrame:
    """The epics one epic waits on (``upstream``) or that wait on it (``downstream``), through
    open dependencies, each with its distance in steps and the worst timing on the way in.

    Epic level: an item-level edge counts between its ends' epics (items without an epic are
    left out); a cycle ends the walk where it closes. Columns: epic_id, epic_key, depth, links,
    red_lines.
    """
    near, far = (
        ("dependent_epic", "blocker_epic")
        if direction == "upstream"
        else ("blocker_epic", "dependent_epic")
    )
    far_key = far + "_key"
    pairs = (
        edges.filter(
            pl.col("open")
            & pl.col(near).is_not_null()
            & pl.col(far).is_not_null()
            & (pl.col(near) != pl.col(far))
        )
        .group_by(near, far)
        .agg(
            pl.col(far_key).first().alias("epic_key"),
            pl.len().cast(pl.Int64).alias("links"),
            pl.col("timing")
            .is_in(["conflict", "unscheduled_blocker", "at_risk"])
            .sum()
            .cast(pl.Int64)
            .alias("red_lines"),
        )
    )
    seen = {epic_id}
    frontier = [epic_id]
    found: list[pl.DataFrame] = []
    for depth in range(1, max_depth + 1):
        step = (
            pairs.filter(pl.col(near).is_in(frontier) & ~pl.col(far).is_in(list(seen)))
            .group_by(far)
            .agg(pl.col("epic_key").first(), pl.col("links").sum(), pl.col("red_lines").sum())
            .rename({far: "epic_id"})
            .with_columns(pl.lit(depth, pl.Int64).alias("depth"))
        )
        if step.height == 0:
            break
        found.append(step)
        frontier = step["epic_id"].to_list()
        seen.update(frontier)
    columns = ["epic_id", "epic_key", "depth", "links", "red_lines"]
    if not found:
        schema = {"epic_id": pl.String, "epic_key": pl.String, "depth": pl.Int64}
        return pl.DataFrame(schema={**schema, "links": pl.Int64, "red_lines": pl.Int64})
    return pl.concat(found).select(columns).sort("depth", "epic_key")
