"""Bottlenecks: the items and teams that waiting work depends on, transitively, weighted by the
count, estimate and value of what waits. Counts are exact up to ``sketch_size`` waiting items per
set and estimated beyond it from bottom-k reachability sketches over the condensation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.settings_analytics import DependencyParams
from pmolens.warehouse.transforms.dependencies.contract import NO_TEAM, _team, _with_extras
from pmolens.warehouse.transforms.dependencies.graph import (
    _ABOUT,
    Condensed,
    _csr,
    _distinct,
    _gather,
    _node_attrs,
    _node_table,
    condense,
    waiting_graph,
)

BOTTLENECK_SCHEMA: dict[str, Any] = {
    "item_id": pl.String,
    "key": pl.String,
    "url": pl.String,
    "title": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "epic_id": pl.String,
    "epic_key": pl.String,
    "direct_dependents": pl.Int64,
    "dependents": pl.Int64,  # transitive, distinct, the item itself excluded
    "dependents_estimate": pl.Float64,
    "dependents_value": pl.Float64,
    "other_teams": pl.Int64,  # distinct other teams among the direct dependents
    "exact": pl.Boolean,  # False: estimated from the sketch (more than sketch_size waiting)
    "weight": pl.Float64,
}
TEAM_BOTTLENECK_SCHEMA: dict[str, Any] = {
    "organisation": pl.String,
    "team": pl.String,
    "blocking_items": pl.Int64,  # the team's items with waiting dependents
    "direct_dependents": pl.Int64,  # distinct items directly waiting on them
    "dependents": pl.Int64,  # distinct items waiting transitively, the blocking items excluded
    "dependents_estimate": pl.Float64,
    "dependents_value": pl.Float64,
    "exact": pl.Boolean,
    "weight": pl.Float64,
}


@dataclass(frozen=True)
class Sketches:
    """Bottom-k sketch of each component's reach set (itself and everything waiting on it):
    the k smallest node ranks, ``n`` (sentinel) padded; ``exact``: the sketch holds the whole
    set (then ``count`` is exact)."""

    rank_of: np.ndarray  # node -> rank
    node_of: np.ndarray  # rank -> node
    sketch: np.ndarray  # (components, k) ranks, ascending
    count: np.ndarray  # distinct ranks held
    exact: np.ndarray


def _bottom_k(
    owner: np.ndarray, vals: np.ndarray, groups: int, k: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per owner group: the k smallest distinct values (padded with n), how many are held, and
    whether there were more than k."""
    keep = vals < n
    # (owner, value) packed into one int64 by bit shift: shifts and masks are cheaper than
    # the division and modulo a multiplier would need
    bits = max(int(n).bit_length(), 1)
    code = np.sort((owner[keep].astype(np.int64) << bits) | vals[keep])
    if code.size:
        code = code[np.concatenate(([True], code[1:] != code[:-1]))]
    g = code >> bits
    distinct = np.bincount(g, minlength=groups)
    starts = np.cumsum(distinct) - distinct
    pos = np.arange(len(g)) - starts[g]
    out = np.full((groups, k), n, dtype=np.int64)
    take = np.flatnonzero(pos < k)
    out.ravel()[g[take] * k + pos[take]] = code[take] & ((1 << bits) - 1)
    return out, np.minimum(distinct, k), distinct > k


def _held(sketch: np.ndarray, count: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``rows``, rank) of the ranks the sketches of ``rows`` hold, padding left
    out (a sketch holds its ``count`` smallest ranks first), so merges sort only real ranks."""
    held = count[rows]
    width = int(held.max()) if held.size else 0
    block = sketch[rows, :width]
    return np.repeat(np.arange(len(rows)), held), block[np.arange(width) < held[:, None]]


def reach_sketches(cond: Condensed, k: int, seed: int) -> Sketches:
    """Bottom-k sketches over the condensation, sinks first (one vectorised step per level)."""
    n = cond.graph.n
    rng = np.random.default_rng(seed)
    node_of = rng.permutation(n).astype(np.int64)
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[node_of] = np.arange(n)
    c = cond.c
    own, own_count, own_more = _bottom_k(cond.comp, rank_of, c, k, n)
    sketch = own
    count = own_count
    exact = ~own_more
    indptr, succ = _csr(c, cond.csrc, cond.cdst)
    for level in reversed(cond.levels):
        owner, pos = _gather(indptr, level)
        if pos.size == 0:
            continue
        nxt = succ[pos]
        own_row, own_vals = _held(sketch, count, level)
        succ_row, succ_vals = _held(sketch, count, nxt)
        who = np.concatenate([own_row, owner[succ_row]])
        vals = np.concatenate([own_vals, succ_vals])
        merged, held, more = _bottom_k(who, vals, len(level), k, n)
        child_exact = np.ones(len(level), dtype=bool)
        np.logical_and.at(child_exact, owner, exact[nxt])
        sketch[level] = merged
        count[level] = held
        exact[level] = child_exact & ~more
    return Sketches(rank_of, node_of, sketch, count, exact)


def _estimate(
    sk: Sketches,
    rows: np.ndarray,
    held: np.ndarray,
    exact: np.ndarray,
    weights: list[np.ndarray],
    k: int,
) -> list[np.ndarray]:
    """Set size and weight sums from sketch rows: exact sums when exact, else the bottom-k
    estimate (k-1)/u_k for the size times the sample mean for the weights."""
    n = len(sk.rank_of)
    kth = rows[:, k - 1] if rows.shape[1] >= k else np.full(len(rows), n)
    size = np.where(exact, held, (k - 1) * (n + 1) / (kth + 1.0))
    out = [size]
    for w in weights:
        # weight by rank, 0 for the padding rank n: sketches hold small ranks, so this
        # gather stays in cache (the same values as gathering through the node)
        by_rank = np.append(w[sk.node_of], 0.0)
        total = by_rank[rows].sum(axis=1)
        mean = total / np.maximum(held, 1)
        out.append(np.where(exact, total, size * mean))
    return out


def dependency_bottlenecks(
    edges: pl.DataFrame,
    params: DependencyParams | None = None,
    condensed: Condensed | None = None,
    sketches: Sketches | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(items, teams) that waiting work depends on, heaviest first.

    Item: ``dependents`` = distinct items that wait on it through a chain of waiting edges (the
    item itself excluded; members of its cycle included); estimate and value sums over them.
    Team: the union over its blocking items, the blocking items themselves excluded. Counts are
    exact up to ``sketch_size`` waiting items per set, estimated beyond (``exact`` false).
    """
    p = params or DependencyParams()
    k = p.sketch_size
    edges = _with_extras(edges)
    cond = condensed if condensed is not None else condense(waiting_graph(edges))
    sk = sketches if sketches is not None else reach_sketches(cond, k, p.seed)
    g = cond.graph
    nodes = _node_table(edges, g)
    est = nodes["estimate"].fill_null(0.0).to_numpy()
    val = nodes["value"].fill_null(0.0).to_numpy()
    w = edges["waiting"].fill_null(False).to_numpy()
    # direct dependents by integer codes, distinct (blocker, dependent) pairs counted per
    # blocker in numpy (a null dependent id, code -1, counts once, as n_unique does)
    wb, wd = g.row_b[w], g.row_du[w]
    sel = wb >= 0
    span = int(wd.max()) + 2 if wd.size else 1
    pairs = _distinct(wb[sel] * span + (wd[sel] + 1))
    direct = np.bincount(pairs // span, minlength=g.n).astype(np.int64)
    cross = edges.select(
        pl.Series("_b", g.row_b),
        pl.col("dependent_org"),
        _team("dependent").alias("_dt"),
        (pl.col("waiting").fill_null(False) & pl.col("cross_team").fill_null(False)).alias("_x"),
    ).filter(pl.col("_x") & (pl.col("_b") >= 0))
    other = (
        cross.select("_b", "dependent_org", "_dt")
        .unique()
        .group_by("_b")
        .agg(pl.len().cast(pl.Int64).alias("other_teams"))
    )
    is_blocker = np.zeros(g.n, dtype=bool)
    is_blocker[g.src] = True
    blockers = np.flatnonzero(is_blocker)
    comps = cond.comp[blockers]
    size, s_est, s_val = _estimate(
        sk, sk.sketch[comps], sk.count[comps], sk.exact[comps], [est, val], k
    )
    info = nodes[blockers]
    about = _node_attrs(edges, g, _ABOUT, "blocker")[blockers]
    items = (
        pl.DataFrame(
            {
                "_b": blockers,
                "item_id": g.ids.gather(blockers),
                "dependents": np.rint(size - 1).astype(np.int64),
                "dependents_estimate": s_est - est[blockers],
                "dependents_value": s_val - val[blockers],
                "exact": sk.exact[comps],
                "direct_dependents": direct[blockers],
            }
        )
        .join(other, on="_b", how="left", maintain_order="left")
        .with_columns(
            pl.col("other_teams").fill_null(0),
            about["key"].alias("key"),
            about["url"].alias("url"),
            about["title"].alias("title"),
            about["team"].alias("team"),
            about["org"].alias("organisation"),
            info["epic"].alias("epic_id"),
            info["epic_key"].alias("epic_key"),
        )
    )
    items = (
        _weighted(items, p)
        .select([pl.col(c).cast(t) for c, t in BOTTLENECK_SCHEMA.items()])
        .sort(["weight", "dependents", "key"], descending=[True, True, False], nulls_last=True)
    )

    # teams: merge the sketches of each team's blocking items
    team_of = pl.DataFrame(
        {
            "organisation": info["org"],
            "team": info["team"].fill_null(NO_TEAM),
            "_comp": comps,
        }
    ).with_columns(pl.struct("organisation", "team").rank("dense").cast(pl.Int64).alias("_t") - 1)
    t_ix = team_of["_t"].to_numpy()
    n_teams = int(t_ix.max()) + 1 if t_ix.size else 0
    member, ranks = _held(sk.sketch, sk.count, comps)
    merged, held, more = _bottom_k(t_ix[member], ranks, n_teams, k, g.n)
    all_exact = np.ones(n_teams, dtype=bool)
    np.logical_and.at(all_exact, t_ix, sk.exact[comps])
    t_exact = all_exact & ~more
    t_size, t_est, t_val = _estimate(sk, merged, held, t_exact, [est, val], k)
    own_n = np.bincount(t_ix, minlength=n_teams)
    own_est = np.bincount(t_ix, weights=est[blockers], minlength=n_teams)
    own_val = np.bincount(t_ix, weights=val[blockers], minlength=n_teams)
    keys = team_of.unique("_t").sort("_t")
    team_direct = (
        edges.select(
            pl.col("blocker_org").alias("organisation"),
            _team("blocker").alias("team"),
            pl.Series("_d", g.row_du),
        )
        .filter(pl.Series(w))
        .group_by("organisation", "team")
        .agg(pl.col("_d").n_unique().cast(pl.Int64).alias("direct_dependents"))
    )
    teams = (
        keys.select("organisation", "team")
        .with_columns(
            pl.Series("blocking_items", own_n, dtype=pl.Int64),
            pl.Series("dependents", np.rint(t_size - own_n).astype(np.int64)),
            pl.Series("dependents_estimate", t_est - own_est),
            pl.Series("dependents_value", t_val - own_val),
            pl.Series("exact", t_exact),
        )
        .join(team_direct, on=["organisation", "team"], how="left", nulls_equal=True)
    )
    teams = (
        _weighted(teams, p)
        .select([pl.col(c).cast(t) for c, t in TEAM_BOTTLENECK_SCHEMA.items()])
        .sort(["weight", "dependents", "team"], descending=[True, True, False], nulls_last=True)
    )
    return items, teams


def _weighted(frame: pl.DataFrame, p: DependencyParams) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("dependents").clip(0, None),
        pl.col("dependents_estimate").clip(0.0, None).round(6),
        pl.col("dependents_value").clip(0.0, None).round(6),
    ).with_columns(
        (
            p.item_weight * pl.col("dependents")
            + p.estimate_weight * pl.col("dependents_estimate")
            + p.value_weight * pl.col("dependents_value")
        )
        .round(6)
        .alias("weight")
    )
