"""The waiting graph and its condensation: resolved edges whose blocker and dependent are both
not done, on integer nodes, with strongly connected components contracted (scipy) and the
components in topological levels. Shared by cycles, chains and bottlenecks so they build it once
(and look nodes up by number, never by joining on the string ids again).

The signals on it are linear in its size: one vectorised numpy step per level, never a loop per
node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import _with_extras


@dataclass(frozen=True)
class Graph:
    """The waiting graph on integer nodes: ``ids[i]`` is node i (ids sorted); edges
    ``src[j] -> dst[j]`` (blocker -> dependent), distinct, without self loops.

    Per row of the edges frame it was built from (so the other signals look nodes up by
    number, never by joining on the string ids again): ``row_b`` / ``row_d``, the node of each
    end (-1: not a node); ``row_bu`` / ``row_du``, the code of each end among all ends of
    waiting edges, self loops included (-1: none)."""

    ids: pl.Series
    src: np.ndarray
    dst: np.ndarray
    row_b: np.ndarray
    row_d: np.ndarray
    row_bu: np.ndarray
    row_du: np.ndarray
    #: node tables already gathered from the edges (chains and bottlenecks share them)
    memo: dict[Any, tuple[pl.DataFrame, pl.DataFrame]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def n(self) -> int:
        return len(self.ids)


def waiting_graph(edges: pl.DataFrame) -> Graph:
    edges = _with_extras(edges)
    w = edges["waiting"].fill_null(False).to_numpy()
    ends = edges.select("blocker_id", "dependent_id")
    waiting_ends = ends.filter(pl.Series(w))
    universe = (
        pl.concat([waiting_ends["blocker_id"], waiting_ends["dependent_id"]])
        .drop_nulls()
        .unique()
        .sort()
    )
    index = pl.DataFrame({"_id": universe, "_u": np.arange(len(universe), dtype=np.int64)})

    def code(col: str) -> np.ndarray:
        return (
            ends.select(pl.col(col).alias("_id"))
            .join(index, on="_id", how="left", maintain_order="left")["_u"]
            .fill_null(-1)
            .to_numpy()
        )

    bu, du = code("blocker_id"), code("dependent_id")
    n_u = max(len(universe), 1)
    pair = w & (bu >= 0) & (du >= 0) & (bu != du)
    codes = _distinct(bu[pair] * n_u + du[pair])
    s_u, d_u = codes // n_u, codes % n_u
    in_graph = np.zeros(len(universe), dtype=bool)
    in_graph[s_u] = True
    in_graph[d_u] = True
    node_of = np.where(in_graph, np.cumsum(in_graph) - 1, -1)
    ids = universe.filter(pl.Series(in_graph)).rename("item_id")
    return Graph(
        ids,
        node_of[s_u],
        node_of[d_u],
        np.where(bu >= 0, node_of[bu], -1),
        np.where(du >= 0, node_of[du], -1),
        bu,
        du,
    )


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort + neighbour compare: faster than np.unique's hashing)."""
    values = np.sort(values)
    if values.size:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """Per code 0..n-1: the first row holding it (-1: none)."""
    rows = np.full(n, len(codes), dtype=np.int64)
    valid = np.flatnonzero(codes >= 0)
    np.minimum.at(rows, codes[valid], valid)
    return np.where(rows < len(codes), rows, -1)


_ABOUT = ("key", "url", "title", "team", "org")


def _node_attrs(
    edges: pl.DataFrame, g: Graph, cols: Sequence[str], first: str = "dependent"
) -> pl.DataFrame:
    """Per node (node order): ``cols`` from the first edge row where the node is the ``first``
    end (dependent / blocker), else from the first row where it is the other end. Memoised on
    the graph per edges frame (the graph's rows refer to that frame)."""
    key = (id(edges), tuple(cols), first)
    if key not in g.memo:  # the edges are kept with the table, so their id stays theirs
        g.memo[key] = (edges, _gather_attrs(edges, g, cols, first))
    return g.memo[key][1]


def _gather_attrs(edges: pl.DataFrame, g: Graph, cols: Sequence[str], first: str) -> pl.DataFrame:
    other = "blocker" if first == "dependent" else "dependent"
    first_rows = _first_rows(g.row_d if first == "dependent" else g.row_b, g.n)
    other_rows = _first_rows(g.row_b if first == "dependent" else g.row_d, g.n)
    # both sides stacked, one gather: row r of the first side, or height + r of the other
    stacked = pl.concat(
        [edges.select([pl.col(f"{side}_{c}").alias(c) for c in cols]) for side in (first, other)],
        rechunk=False,
    )
    at = np.where(first_rows >= 0, first_rows, edges.height + np.maximum(other_rows, 0))
    return stacked.gather(pl.Series(at)).with_columns(pl.Series("item_id", g.ids))


def _node_table(edges: pl.DataFrame, g: Graph) -> pl.DataFrame:
    """Per graph node (node order): item_id, key, team, org, epic, epic_key, planned_end,
    estimate from the first edge that describes it (as dependent, else as blocker), and value:
    its business value from the first edge where it is a dependent with one."""
    cols = ("key", "team", "org", "epic", "epic_key", "planned_end", "estimate")
    nodes = _node_attrs(edges, g, cols, "dependent").select("item_id", *cols)
    has_value = edges["dependent_business_value"].is_not_null().to_numpy()
    rows = _first_rows(np.where(has_value, g.row_d, -1), g.n)
    value = edges["dependent_business_value"].gather(pl.Series(np.where(rows >= 0, rows, 0)))
    return nodes.with_columns(pl.when(pl.Series(rows >= 0)).then(value).alias("value"))


def _scc(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Component label per node (strongly connected components, linear time)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.zeros(0, dtype=np.int64)
    matrix = csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    return labels.astype(np.int64)


def _csr(n: int, key: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, neighbours) of the edges grouped by ``key``."""
    order = np.argsort(key, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n), out=indptr[1:])
    return indptr, other[order]


def _gather(indptr: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) of every CSR entry of ``nodes``: one vectorised gather."""
    starts = indptr[nodes]
    lens = indptr[nodes + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return np.repeat(np.arange(len(nodes)), lens), offsets + np.arange(total)


def _topological_levels(n: int, src: np.ndarray, dst: np.ndarray) -> list[np.ndarray]:
    """Nodes of a DAG in levels (Kahn): a node's level is after all its predecessors'."""
    indeg = np.bincount(dst, minlength=n).astype(np.int64)
    indptr, succ = _csr(n, src, dst)
    frontier = np.flatnonzero(indeg == 0)
    levels = []
    while frontier.size:
        levels.append(frontier)
        _, pos = _gather(indptr, frontier)
        if pos.size == 0:
            break
        targets, counts = np.unique(succ[pos], return_counts=True)
        indeg[targets] -= counts
        frontier = targets[indeg[targets] == 0]
    return levels


@dataclass(frozen=True)
class Condensed:
    """The waiting graph with its strongly connected components contracted to one node."""

    graph: Graph
    comp: np.ndarray  # component of each node
    size: np.ndarray  # items per component
    csrc: np.ndarray  # condensed edges, distinct, no self loops
    cdst: np.ndarray
    levels: list[np.ndarray]  # components in topological levels

    @property
    def c(self) -> int:
        return len(self.size)


def condense(graph: Graph) -> Condensed:
    comp = _scc(graph.n, graph.src, graph.dst)
    c = int(comp.max()) + 1 if comp.size else 0
    size = np.bincount(comp, minlength=c).astype(np.int64)
    cs, cd = comp[graph.src], comp[graph.dst]
    keep = cs != cd
    code = _distinct(cs[keep] * max(c, 1) + cd[keep])
    csrc, cdst = code // max(c, 1), code % max(c, 1)
    return Condensed(graph, comp, size, csrc, cdst, _topological_levels(c, csrc, cdst))
