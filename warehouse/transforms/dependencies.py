"""Cross-team and cross-organisation dependency analytics over the ``blocks`` links.

``dependency_edges`` turns every ``blocks`` link (stored blocker -> dependent, see
warehouse/model.py) into one row with both ends' team, organisation, epic, status, sprint and
planned end, the cross-team / cross-organisation / open / unresolved flags and the timing verdict.
Everything else is computed from that frame: the team and organisation matrices, the timing
conflicts ("red lines"), cycles (strongly connected components), chains and the critical path,
bottlenecks (transitive waiting work), age and blocked time, the Scrum of Scrums view and the
trend snapshot.

The graph signals run on the *waiting* graph: resolved edges whose blocker and dependent are
both not done. They are linear in its size: SCCs with scipy's strongly connected components,
longest paths and reachability sketches level by level over the condensation (one vectorised
numpy step per level, never a loop per node). Definitions: docs/dependencies.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from warehouse.model import SCHEMAS, UTC_TS
from warehouse.settings_analytics import DependencyParams
from warehouse.transforms.flow import days_between, live
from warehouse.transforms.hierarchy import first_ancestor_where, parent_rows

# --------------------------------------------------------------------------- contract

_END_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("key", pl.String),
    ("url", pl.String),
    ("title", pl.String),
    ("team", pl.String),
    ("org", pl.String),
    ("epic", pl.String),  # item_id of the nearest epic (the item itself when it is an epic)
    ("category", pl.String),
    ("sprint", pl.String),  # sprint_id
    ("planned_end", pl.Date),
    ("estimate", pl.Float64),
    ("priority_rank", pl.Int32),
)

#: Columns of ``dependency_edges``: the shared contract (alignment, impediments, forecast, backlog).
EDGES_SCHEMA: dict[str, Any] = {
    "blocker_id": pl.String,
    "dependent_id": pl.String,
    "link_id": pl.String,
    "source": pl.String,
    "raw_type": pl.String,
    **{f"blocker_{c}": t for c, t in _END_COLUMNS},
    **{f"dependent_{c}": t for c, t in _END_COLUMNS},
    "dependent_business_value": pl.Float64,
    "cross_team": pl.Boolean,
    "cross_org": pl.Boolean,
    "open": pl.Boolean,
    "unresolved": pl.Boolean,
    "timing": pl.String,
    "slip_days": pl.Int64,
}
#: Added after the contract columns (consumers may ignore them).
EDGE_EXTRA_SCHEMA: dict[str, Any] = {
    "blocker_epic_key": pl.String,
    "dependent_epic_key": pl.String,
    "waiting": pl.Boolean,  # resolved, blocker not done and dependent not done
    "age_days": pl.Float64,  # as_of - the later creation of the two known ends
}
FULL_EDGES_SCHEMA: dict[str, Any] = {**EDGES_SCHEMA, **EDGE_EXTRA_SCHEMA}

TIMINGS = ("conflict", "at_risk", "unscheduled_blocker", "on_track", "unplanned", "done")
#: The "red lines", worst first.
RED_LINES = ("conflict", "unscheduled_blocker", "at_risk")
DAY_US = 86_400_000_000
NO_TEAM = "(no team)"


def _utc(as_of: datetime) -> datetime:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC)


def _frame(frames: Mapping[str, pl.DataFrame], name: str) -> pl.DataFrame:
    got = frames.get(name)
    return got if got is not None else pl.DataFrame(schema=SCHEMAS[name])


# --------------------------------------------------------------------------- 1. edges


def _ends(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per live item with the columns an edge end carries (unprefixed)."""
    items = live(_frame(frames, "work_items"))
    sprints = (
        _frame(frames, "sprints")
        .select("sprint_id", pl.col("end").dt.date().alias("_sprint_end"))
        .unique("sprint_id", keep="first")
    )
    epic = _epic_rows(items)
    has_epic = pl.Series(epic >= 0)
    at = pl.Series(np.maximum(epic, 0))
    return (
        items.select(
            "item_id",
            "key",
            "url",
            "title",
            "team",
            pl.col("organisation").alias("org"),
            pl.col("status_category").alias("category"),
            pl.col("sprint_id").alias("sprint"),
            "due_date",
            "estimate",
            "priority_rank",
            "business_value",
            "created",
            pl.when(has_epic).then(pl.col("item_id").gather(at)).alias("epic"),
            pl.when(has_epic).then(pl.col("key").gather(at)).alias("epic_key"),
        )
        .join(sprints, left_on="sprint", right_on="sprint_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("due_date", "_sprint_end").alias("planned_end"),
            pl.lit(True).alias("found"),
        )
        .drop("due_date", "_sprint_end")
    )


def _epic_rows(items: pl.DataFrame, max_depth: int = 6) -> np.ndarray:
    """Row of each item's nearest epic, itself included, at most ``max_depth`` parents up (a
    parent that is not a live item ends the walk); -1: none."""
    is_epic = (items["level"] == "epic").fill_null(False).to_numpy()
    return first_ancestor_where(parent_rows(items), is_epic, max_depth)


def _timing(dp: pl.Expr, bp: pl.Expr) -> pl.Expr:
    """The timing verdict of one edge (docs/dependencies.md, "Timing")."""
    dep_done = (pl.col("dependent_category") == "done").fill_null(False)
    blk_done = (pl.col("blocker_category") == "done").fill_null(False)
    same_sprint = (pl.col("blocker_sprint") == pl.col("dependent_sprint")).fill_null(False)
    return (
        pl.when(dep_done)
        .then(pl.lit("done"))
        .when(blk_done)
        .then(pl.lit("on_track"))
        .when(dp.is_null() & bp.is_null())
        .then(pl.lit("unplanned"))
        .when(bp.is_null())
        .then(pl.lit("unscheduled_blocker"))
        .when(dp.is_null())
        .then(pl.lit("on_track"))
        .when(dp < bp)
        .then(pl.lit("conflict"))
        .when(same_sprint | (dp == bp))
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("on_track"))
    )


def dependency_edges(frames: Mapping[str, pl.DataFrame], as_of: datetime) -> pl.DataFrame:
    """Every ``blocks`` link as blocker -> dependent with both ends described and flagged.

    Columns: ``EDGES_SCHEMA`` (the shared contract) then ``EDGE_EXTRA_SCHEMA``. An end that is
    null or not a live item leaves its columns null and makes the edge ``unresolved``; its id is
    kept as read. Ordered by source and link id.
    """
    now = pl.lit(_utc(as_of), dtype=UTC_TS)
    ends = _ends(frames)
    # sort the slim links first, then look each end up by row number once and gather its
    # columns (a gather, not a join that hashes and copies the wide columns twice)
    links = (
        _frame(frames, "links")
        .filter(pl.col("kind") == "blocks")
        .select(
            pl.col("from_item").alias("blocker_id"),
            pl.col("to_item").alias("dependent_id"),
            "link_id",
            "source",
            "raw_type",
        )
        .sort("source", "link_id", "blocker_id", "dependent_id", nulls_last=True)
    )
    index = ends.select("item_id").with_row_index("_ix")
    attrs = ends.drop("item_id")

    def side(prefix: str, id_col: str) -> pl.DataFrame:
        rows = links.select(pl.col(id_col).alias("item_id")).join(
            index, on="item_id", how="left", maintain_order="left"
        )["_ix"]
        return attrs.gather(rows).rename({c: f"{prefix}_{c}" for c in attrs.columns})

    edges = pl.concat(
        [links, side("blocker", "blocker_id"), side("dependent", "dependent_id")],
        how="horizontal",
    )
    both = pl.col("blocker_found").fill_null(False) & pl.col("dependent_found").fill_null(False)
    other_org = pl.col("blocker_org").ne_missing(pl.col("dependent_org"))
    other_team = pl.col("blocker_team").ne_missing(pl.col("dependent_team"))
    bp, dp = pl.col("blocker_planned_end"), pl.col("dependent_planned_end")
    not_done = (
        (pl.col("blocker_category") != "done").fill_null(True),
        (pl.col("dependent_category") != "done").fill_null(True),
    )
    edges = edges.with_columns(
        pl.when(both).then(other_org | other_team).alias("cross_team"),
        pl.when(both).then(other_org).alias("cross_org"),
        (not_done[0] | not_done[1]).alias("open"),
        (~both).alias("unresolved"),
        _timing(dp, bp).alias("timing"),
        (both & not_done[0] & not_done[1]).alias("waiting"),
        days_between(pl.max_horizontal("blocker_created", "dependent_created"), now).alias(
            "age_days"
        ),
    ).with_columns(
        pl.when(pl.col("timing") == "conflict")
        .then((bp - dp).dt.total_days())
        .cast(pl.Int64)
        .alias("slip_days")
    )
    return edges.select([pl.col(c).cast(t) for c, t in FULL_EDGES_SCHEMA.items()])


def empty_edges() -> pl.DataFrame:
    return pl.DataFrame(schema=FULL_EDGES_SCHEMA)


def _with_extras(edges: pl.DataFrame) -> pl.DataFrame:
    """Contract-only edges (hand-built, or from another producer) get the extra columns."""
    missing = [c for c in EDGE_EXTRA_SCHEMA if c not in edges.columns]
    if not missing:
        return edges
    add = {
        "blocker_epic_key": pl.lit(None, pl.String),
        "dependent_epic_key": pl.lit(None, pl.String),
        "waiting": (
            ~pl.col("unresolved").fill_null(False)
            & (pl.col("blocker_category") != "done").fill_null(True)
            & (pl.col("dependent_category") != "done").fill_null(True)
        ),
        "age_days": pl.lit(None, pl.Float64),
    }
    return edges.with_columns([add[c].alias(c) for c in missing])


# --------------------------------------------------------------------------- 2. matrix


def _team(prefix: str) -> pl.Expr:
    return pl.col(f"{prefix}_team").fill_null(NO_TEAM)


MATRIX_SCHEMA: dict[str, Any] = {
    "blocker_org": pl.String,
    "blocker_team": pl.String,
    "dependent_org": pl.String,
    "dependent_team": pl.String,
    "open": pl.Int64,
    "waiting": pl.Int64,
    "conflicts": pl.Int64,
    "at_risk": pl.Int64,
    "unscheduled_blockers": pl.Int64,
    "max_slip_days": pl.Int64,
    "link_ids": pl.List(pl.String),
}


def dependency_matrix(edges: pl.DataFrame, by: str = "team") -> pl.DataFrame:
    """Open cross-team dependencies per (blocker, dependent) team pair, or organisation pair.

    ``by="team"``: one row per ordered pair of (organisation, team); ``by="organisation"``: the
    same edges rolled up to organisation pairs (the diagonal holds cross-team dependencies within
    an organisation). Either way the ``open`` column sums to the number of open cross-team edges.
    ``link_ids`` is the drill-down to the edges. A missing team counts as ``(no team)``.
    """
    if by not in ("team", "organisation"):
        raise ValueError("by must be 'team' or 'organisation'")
    edges = _with_extras(edges)
    keys = ["blocker_org", "dependent_org"]
    if by == "team":
        keys = ["blocker_org", "blocker_team", "dependent_org", "dependent_team"]
    timing = pl.col("timing")
    out = (
        edges.lazy()  # lazy: only the columns used are filtered, not all ~50
        .filter(pl.col("open").fill_null(False) & pl.col("cross_team").fill_null(False))
        .with_columns(
            _team("blocker").alias("blocker_team"), _team("dependent").alias("dependent_team")
        )
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("open"),
            pl.col("waiting").sum().cast(pl.Int64).alias("waiting"),
            (timing == "conflict").sum().cast(pl.Int64).alias("conflicts"),
            (timing == "at_risk").sum().cast(pl.Int64).alias("at_risk"),
            (timing == "unscheduled_blocker").sum().cast(pl.Int64).alias("unscheduled_blockers"),
            pl.col("slip_days").max().cast(pl.Int64).alias("max_slip_days"),
            pl.col("link_id").sort().alias("link_ids"),
        )
        .sort(keys, nulls_last=True)
        .collect()
    )
    schema = {k: v for k, v in MATRIX_SCHEMA.items() if k in keys or k not in _TEAM_KEYS}
    return out.select([pl.col(c).cast(t) for c, t in schema.items()])


_TEAM_KEYS = ("blocker_org", "blocker_team", "dependent_org", "dependent_team")


# --------------------------------------------------------------------------- 3. conflicts


def dependency_conflicts(edges: pl.DataFrame) -> pl.DataFrame:
    """The red lines: open edges whose timing is conflict, unscheduled_blocker or at_risk.

    Ordered by kind (conflict, unscheduled blocker, at risk), then slip days (largest first),
    then the dependent's planned end and keys.
    """
    order = pl.col("timing").replace_strict(
        {t: i for i, t in enumerate(RED_LINES)}, default=None, return_dtype=pl.Int8
    )
    return (
        _with_extras(edges)
        .filter(pl.col("open").fill_null(False) & pl.col("timing").is_in(list(RED_LINES)))
        .with_columns(order.alias("_order"))
        .sort(
            ["_order", "slip_days", "dependent_planned_end", "dependent_key", "blocker_key"],
            descending=[False, True, False, False, False],
            nulls_last=True,
        )
        .drop("_order")
    )


# --------------------------------------------------------------------------- graph helpers


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


# --------------------------------------------------------------------------- 4. cycles

CYCLES_SCHEMA: dict[str, Any] = {
    "level": pl.String,  # item / team
    "cycle": pl.Int64,  # 1.. per level, largest first
    "size": pl.Int64,
    "members": pl.List(pl.String),  # item keys, or team names
    "member_ids": pl.List(pl.String),  # item ids, or "organisation/team"
    "teams": pl.List(pl.String),
    "organisations": pl.List(pl.String),
    "edges": pl.Int64,  # waiting edges inside the cycle
    "cross_org": pl.Boolean,
}


def _cycle_rows(
    level: str, nodes: pl.DataFrame, labels: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> pl.DataFrame:
    """Components of >= 2 nodes as cycle rows; ``nodes`` has member, member_id, team, org."""
    inside = labels[src] == labels[dst]
    internal = pl.DataFrame({"_c": labels[src[inside]]}).group_by("_c").len("edges")
    rows = (
        nodes.with_columns(pl.Series("_c", labels))
        .with_columns(pl.len().over("_c").alias("size"))
        .filter(pl.col("size") >= 2)
        .sort("member", "member_id")
        .group_by("_c")
        .agg(
            pl.len().cast(pl.Int64).alias("size"),
            pl.col("member"),
            pl.col("member_id"),
            pl.col("team").drop_nulls().unique().sort().alias("teams"),
            pl.col("org").drop_nulls().unique().sort().alias("organisations"),
        )
        .join(internal, on="_c", how="left")
        .sort(["size", "member"], descending=[True, False])
        .with_columns(
            pl.lit(level).alias("level"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("cycle"),
            (pl.col("organisations").list.len() > 1).alias("cross_org"),
        )
        .rename({"member": "members", "member_id": "member_ids"})
    )
    return rows.select([pl.col(c).cast(t) for c, t in CYCLES_SCHEMA.items()])


def dependency_cycles(edges: pl.DataFrame, condensed: Condensed | None = None) -> pl.DataFrame:
    """Strongly connected components of the waiting graph with >= 2 members, at item level and
    at team level (a team cycle: each team waits, through some chain of items, on the next)."""
    edges = _with_extras(edges)
    cond = condensed if condensed is not None else condense(waiting_graph(edges))
    g = cond.graph
    nodes = _node_attrs(edges, g, _ABOUT, "blocker").select(
        pl.col("item_id").alias("member_id"), pl.col("key").alias("member"), "team", "org"
    )
    items = _cycle_rows("item", nodes, cond.comp, g.src, g.dst)

    team_pairs = (
        edges.lazy()
        .filter(pl.col("waiting").fill_null(False) & pl.col("cross_team").fill_null(False))
        .select(
            pl.format("{}/{}", pl.col("blocker_org").fill_null(""), _team("blocker")).alias("b"),
            pl.format("{}/{}", pl.col("dependent_org").fill_null(""), _team("dependent")).alias(
                "d"
            ),
            pl.col("blocker_org").alias("bo"),
            _team("blocker").alias("bt"),
            pl.col("dependent_org").alias("do"),
            _team("dependent").alias("dt"),
        )
        .unique(["b", "d"])
        .collect()
    )
    team_nodes = (
        pl.concat(
            [
                team_pairs.select(
                    pl.col("b").alias("member_id"),
                    pl.col("bt").alias("team"),
                    pl.col("bo").alias("org"),
                ),
                team_pairs.select(
                    pl.col("d").alias("member_id"),
                    pl.col("dt").alias("team"),
                    pl.col("do").alias("org"),
                ),
            ]
        )
        .unique("member_id")
        .sort("member_id")
        .with_columns(
            pl.col("team").alias("member"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_ix")
        )
    )
    coded = team_pairs.join(
        team_nodes.select(pl.col("member_id").alias("b"), pl.col("_ix").alias("s")), on="b"
    ).join(team_nodes.select(pl.col("member_id").alias("d"), pl.col("_ix").alias("t")), on="d")
    tsrc, tdst = coded["s"].to_numpy(), coded["t"].to_numpy()
    teams = _cycle_rows(
        "team",
        team_nodes.select("member", "member_id", "team", "org"),
        _scc(team_nodes.height, tsrc, tdst),
        tsrc,
        tdst,
    )
    return pl.concat([items, teams])


# --------------------------------------------------------------------------- 5. chains

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


# --------------------------------------------------------------------------- 6. bottlenecks

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


# --------------------------------------------------------------------------- 7. age / blocked

BLOCKED_SCHEMA: dict[str, Any] = {
    "item_id": pl.String,
    "blocked_days": pl.Float64,  # flagged or in a blocked status, up to as_of (overlaps once)
    "blocked_now": pl.Boolean,
    "blocked_since": UTC_TS,  # start of the current blocked period
}
DEFAULT_BLOCKED = ("Blocked", "Impeded", "On Hold")


def _flag_on(col: str) -> pl.Expr:
    return pl.col(col).is_not_null() & ~pl.col(col).str.strip_chars().str.to_lowercase().is_in(
        ["", "false", "no", "0", "none"]
    )


def blocked_time(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    item_ids: pl.Series | None,
    as_of: datetime,
    blocked_statuses: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """Per item (``item_ids``, default all): time flagged or in a blocked status, from history.

    Intervals: a "flagged" change turning the flag on until the next flagged change; a status
    change into a blocked status (per source, else ``DEFAULT_BLOCKED``) until the next status
    change. Open intervals end at ``as_of``. Overlapping intervals count once. Items whose
    current state is flagged / blocked with no history for it count from ``updated``.
    """
    now = _utc(as_of)
    nowl = pl.lit(now, dtype=UTC_TS)
    items = live(work_items)
    if item_ids is not None:
        items = items.filter(pl.col("item_id").is_in(item_ids.implode()))
    items = items.select(
        "item_id", "source", "flagged", "raw_status", "updated", "created"
    ).with_row_index("ix")
    per_source = pl.DataFrame(
        {
            "source": list((blocked_statuses or {}).keys()),
            "_bs": [[s.strip().lower() for s in v] for v in (blocked_statuses or {}).values()],
        },
        schema={"source": pl.String, "_bs": pl.List(pl.String)},
    )

    def is_blocked(col: str) -> pl.Expr:
        status = pl.col(col).str.strip_chars().str.to_lowercase()
        return (
            pl.when(pl.col("_bs").is_not_null())
            .then(pl.col("_bs").list.contains(status))
            .otherwise(status.is_in([s.lower() for s in DEFAULT_BLOCKED]))
            .fill_null(False)
        )

    changes = (
        status_changes.select("item_id", "source", "at", "field", "to_status")
        .filter(pl.col("at").is_not_null() & (pl.col("at") <= nowl))
        .join(items.select("item_id", "ix"), on="item_id", how="inner")
    )
    # the few distinct (source, status) values decide blocked / flag-on once, joined back
    kinds = (
        changes.select("source", "to_status")
        .unique()
        .join(per_source, on="source", how="left")
        .with_columns(is_blocked("to_status").alias("_blk"), _flag_on("to_status").alias("_fon"))
        .drop("_bs")
    )
    flag = (pl.col("field") == "flagged").fill_null(False)
    same = (pl.col("ix").shift(-1) == pl.col("ix")) & (pl.col("_f").shift(-1) == pl.col("_f"))
    changes = (
        changes.join(kinds, on=["source", "to_status"], how="left", nulls_equal=True)
        .select(
            "ix",
            flag.cast(pl.Int8).alias("_f"),
            "at",
            pl.when(flag)
            .then(pl.col("_fon"))
            .otherwise(pl.col("_blk"))
            .fill_null(False)
            .alias("_on"),
        )
        .sort("ix", "_f", "at")
        .with_columns(pl.when(same).then(pl.col("at").shift(-1)).alias("_next"))
    )
    on = changes.filter(pl.col("_on"))
    # current state without history behind it: from updated (else created)
    current = (
        items.join(per_source, on="source", how="left")
        .filter(pl.col("flagged").fill_null(False) | is_blocked("raw_status"))
        .join(on.select("ix").unique(), on="ix", how="anti")
        .select(
            "ix",
            pl.coalesce("updated", "created").alias("at"),
            pl.lit(None, UTC_TS).alias("_next"),
        )
    )
    intervals = (
        pl.concat([on.select("ix", "at", "_next"), current])
        .with_columns(
            pl.coalesce("_next", nowl).alias("_end"), pl.col("_next").is_null().alias("_open")
        )
        .filter(pl.col("_end") >= pl.col("at"))
        .sort("ix", "at", "_end")
    )
    intervals = (
        intervals.with_columns(pl.Series("_run", _merged_runs(intervals)))
        .group_by("ix", "_run")
        .agg(
            pl.col("at").min().alias("_s"),
            pl.col("_end").max().alias("_e"),
            pl.col("_open").any().alias("_open"),
        )
    )
    per_item = intervals.group_by("ix").agg(
        days_between("_s", "_e").sum().alias("blocked_days"),
        pl.col("_open").any().alias("blocked_now"),
        pl.col("_s").filter(pl.col("_open")).max().alias("blocked_since"),
    )
    return (
        items.select("ix", "item_id")
        .join(per_item, on="ix", how="left")
        .with_columns(
            pl.col("blocked_days").fill_null(0.0).round(6),
            pl.col("blocked_now").fill_null(False),
        )
        .select([pl.col(c).cast(t) for c, t in BLOCKED_SCHEMA.items()])
        .sort("item_id")
    )


def _merged_runs(intervals: pl.DataFrame) -> np.ndarray:
    """Run number of each interval (sorted by ix, at, _end): a new merged period starts when an
    interval begins after every earlier interval of its item has ended. The running latest end
    per item is one cumulative max over (item, rank of the end), so no window per item."""
    ix = intervals["ix"].to_numpy()
    at = intervals["at"].to_physical().to_numpy()
    end = intervals["_end"].to_physical().to_numpy()
    if len(ix) == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.ones(len(ix), dtype=bool)
    first[1:] = ix[1:] != ix[:-1]
    ends = _distinct(end)
    seg = np.cumsum(first) - 1
    key = seg * len(ends) + np.searchsorted(ends, end)
    reach = ends[np.maximum.accumulate(key) - seg * len(ends)]
    prev = np.empty_like(reach)
    prev[1:] = reach[:-1]
    return np.cumsum(first | (at > prev))


def with_blocked_time(edges: pl.DataFrame, blocked: pl.DataFrame) -> pl.DataFrame:
    """Edges plus the dependent's ``dependent_blocked_days`` / ``_blocked_now`` / ``_blocked_since``."""
    return edges.join(
        blocked.rename({c: f"dependent_{c}" for c in blocked.columns if c != "item_id"}).rename(
            {"item_id": "dependent_id"}
        ),
        on="dependent_id",
        how="left",
        maintain_order="left",
    )


# --------------------------------------------------------------------------- 8. Scrum of Scrums

SOS_SCHEMA: dict[str, Any] = {
    "organisation": pl.String,
    "team": pl.String,
    "open_items": pl.Int64,
    # (1) does my team hinder others?
    "hindering": pl.Int64,  # waiting edges where the team is the blocker and the dependent is
    "hindering_red_lines": pl.Int64,  # of which conflict / unscheduled blocker / at risk
    # (2) what impediments does my team have?
    "impeded_items": pl.Int64,  # the team's open items waiting on another team / organisation
    "impeded_cross_org": pl.Int64,
    # (3) how interdependent are we?
    "items_with_external": pl.Int64,
    "interdependence": pl.Float64,  # items_with_external / open_items
    "in_degree": pl.Int64,  # distinct other teams the team waits on
    "out_degree": pl.Int64,  # distinct other teams waiting on the team
    "partners": pl.List(pl.String),  # "team (organisation)" in either direction
}


def _external() -> pl.Expr:
    """Waiting on / for another team; an unresolved end counts as external (it usually is)."""
    return pl.col("cross_team").fill_null(True)


def _open_by_team(edges: pl.DataFrame) -> pl.DataFrame:
    """Open edges that involve another team, with the team-side columns both ways."""
    return edges.filter(
        pl.col("open").fill_null(False)
        & (pl.col("blocker_category") != "done").fill_null(True)
        & (pl.col("dependent_category") != "done").fill_null(True)
        & _external()
    )


def scrum_of_scrums(work_items: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """One row per team with the Scrum of Scrums' three questions in figures (``SOS_SCHEMA``)."""
    sides = [
        f"{p}_{c}" for p in ("blocker", "dependent") for c in ("id", "team", "org", "category")
    ]
    edges = _open_by_team(
        _with_extras(edges).select(*sides, "open", "cross_team", "cross_org", "timing")
    )
    items = live(work_items).filter(pl.col("team").is_not_null())
    open_items = (
        items.filter((pl.col("status_category") != "done").fill_null(True))
        .group_by("organisation", "team")
        .agg(pl.len().cast(pl.Int64).alias("open_items"))
    )
    red = pl.col("timing").is_in(list(RED_LINES))
    out_side = edges.filter(pl.col("blocker_team").is_not_null()).select(
        pl.col("blocker_org").alias("organisation"),
        pl.col("blocker_team").alias("team"),
        pl.col("blocker_id").alias("_item"),
        pl.format("{} ({})", _team("dependent"), pl.col("dependent_org").fill_null("?")).alias(
            "_partner"
        ),
        pl.lit("out").alias("_dir"),
        red.alias("_red"),
        pl.col("cross_org").fill_null(True).alias("_xorg"),
        pl.col("dependent_team").is_not_null().alias("_known"),
    )
    in_side = edges.filter(pl.col("dependent_team").is_not_null()).select(
        pl.col("dependent_org").alias("organisation"),
        pl.col("dependent_team").alias("team"),
        pl.col("dependent_id").alias("_item"),
        pl.format("{} ({})", _team("blocker"), pl.col("blocker_org").fill_null("?")).alias(
            "_partner"
        ),
        pl.lit("in").alias("_dir"),
        red.alias("_red"),
        pl.col("cross_org").fill_null(True).alias("_xorg"),
        pl.col("blocker_team").is_not_null().alias("_known"),
    )
    both = pl.concat([out_side, in_side])
    out = pl.col("_dir") == "out"
    inn = pl.col("_dir") == "in"
    stats = both.group_by("organisation", "team").agg(
        out.sum().cast(pl.Int64).alias("hindering"),
        (out & pl.col("_red")).sum().cast(pl.Int64).alias("hindering_red_lines"),
        pl.col("_item").filter(inn).n_unique().cast(pl.Int64).alias("impeded_items"),
        pl.col("_item")
        .filter(inn & pl.col("_xorg"))
        .n_unique()
        .cast(pl.Int64)
        .alias("impeded_cross_org"),
        pl.col("_item").n_unique().cast(pl.Int64).alias("items_with_external"),
        pl.col("_partner")
        .filter(inn & pl.col("_known"))
        .n_unique()
        .cast(pl.Int64)
        .alias("in_degree"),
        pl.col("_partner")
        .filter(out & pl.col("_known"))
        .n_unique()
        .cast(pl.Int64)
        .alias("out_degree"),
        pl.col("_partner").filter(pl.col("_known")).unique().sort().alias("partners"),
    )
    zero = ["hindering", "hindering_red_lines", "impeded_items", "impeded_cross_org"]
    zero += ["items_with_external", "in_degree", "out_degree"]
    return (
        open_items.join(
            stats, on=["organisation", "team"], how="full", coalesce=True, nulls_equal=True
        )
        .with_columns(
            pl.col("open_items").fill_null(0),
            *[pl.col(c).fill_null(0) for c in zero],
            pl.col("partners").fill_null([]),
        )
        .with_columns(
            pl.when(pl.col("open_items") > 0)
            .then((pl.col("items_with_external") / pl.col("open_items")).round(4))
            .alias("interdependence")
        )
        .select([pl.col(c).cast(t) for c, t in SOS_SCHEMA.items()])
        .sort("organisation", "team", nulls_last=True)
    )


def team_hindering(edges: pl.DataFrame, team: str, organisation: str | None = None) -> pl.DataFrame:
    """SoS question 1 for one team: its open external dependencies as blocker, red lines first."""
    rows = _open_by_team(_with_extras(edges)).filter(pl.col("blocker_team") == team)
    if organisation is not None:
        rows = rows.filter(pl.col("blocker_org") == organisation)
    return _red_first(rows)


def team_impediments(
    edges: pl.DataFrame, team: str, organisation: str | None = None
) -> pl.DataFrame:
    """SoS question 2 for one team: its open items waiting on other teams / organisations."""
    rows = _open_by_team(_with_extras(edges)).filter(pl.col("dependent_team") == team)
    if organisation is not None:
        rows = rows.filter(pl.col("dependent_org") == organisation)
    return _red_first(rows)


def _red_first(rows: pl.DataFrame) -> pl.DataFrame:
    order = pl.col("timing").replace_strict(
        {t: i for i, t in enumerate(RED_LINES)}, default=len(RED_LINES), return_dtype=pl.Int8
    )
    return (
        rows.with_columns(order.alias("_o"))
        .sort(
            ["_o", "slip_days", "dependent_planned_end", "dependent_key", "blocker_key"],
            descending=[False, True, False, False, False],
            nulls_last=True,
        )
        .drop("_o")
    )


# --------------------------------------------------------------------------- 9. trend

TREND_METRICS = (
    "open",
    "waiting",
    "cross_team_open",
    "cross_org_open",
    "cross_org_share",
    "conflicts",
    "at_risk",
    "unscheduled_blockers",
    "unresolved_open",
    "item_cycles",
    "team_cycles",
)


def trend_snapshot(edges: pl.DataFrame, cycles: pl.DataFrame) -> pl.DataFrame:
    """(metric, scope, value) rows for this sync: counts over open edges, for "all" and per
    organisation (an edge counts for each organisation it touches).

    cross_org_share = cross_org_open / cross_team_open (null when there is no cross-team edge).
    """
    edges = (
        _with_extras(edges)
        .select(
            "open",
            "blocker_org",
            "dependent_org",
            "waiting",
            "cross_team",
            "cross_org",
            "timing",
            "unresolved",
        )
        .filter(pl.col("open").fill_null(False))
    )
    timing = pl.col("timing")

    def counts(frame: Any) -> pl.DataFrame:
        return frame.agg(
            pl.len().cast(pl.Float64).alias("open"),
            pl.col("waiting").sum().cast(pl.Float64).alias("waiting"),
            pl.col("cross_team").fill_null(False).sum().cast(pl.Float64).alias("cross_team_open"),
            pl.col("cross_org").fill_null(False).sum().cast(pl.Float64).alias("cross_org_open"),
            (timing == "conflict").sum().cast(pl.Float64).alias("conflicts"),
            (timing == "at_risk").sum().cast(pl.Float64).alias("at_risk"),
            (timing == "unscheduled_blocker").sum().cast(pl.Float64).alias("unscheduled_blockers"),
            pl.col("unresolved").fill_null(False).sum().cast(pl.Float64).alias("unresolved_open"),
        )

    slim = edges.select(
        "blocker_org", "dependent_org", "waiting", "cross_team", "cross_org", "timing", "unresolved"
    )
    whole = counts(slim.with_columns(pl.lit("all").alias("scope")).group_by("scope"))
    # each organisation an edge touches once: the blocker's, plus the dependent's when it differs
    touched = pl.concat(
        [
            slim.filter(pl.col("blocker_org").is_not_null()).with_columns(
                pl.col("blocker_org").alias("_org")
            ),
            slim.filter(
                pl.col("dependent_org").is_not_null()
                & pl.col("dependent_org").ne_missing(pl.col("blocker_org"))
            ).with_columns(pl.col("dependent_org").alias("_org")),
        ]
    )
    per_org = counts(touched.group_by("_org")).select(
        pl.format("organisation:{}", "_org").alias("scope"), pl.exclude("_org")
    )
    cyc = cycles.group_by("level").len()
    n_cycles = dict(zip(cyc["level"].to_list(), cyc["len"].to_list(), strict=True))
    wide = pl.concat([whole, per_org]).with_columns(
        pl.when(pl.col("cross_team_open") > 0)
        .then((pl.col("cross_org_open") / pl.col("cross_team_open")).round(6))
        .alias("cross_org_share"),
        pl.when(pl.col("scope") == "all").then(float(n_cycles.get("item", 0))).alias("item_cycles"),
        pl.when(pl.col("scope") == "all").then(float(n_cycles.get("team", 0))).alias("team_cycles"),
    )
    if edges.height == 0:
        wide = pl.DataFrame(
            {"scope": ["all"], **{m: [0.0] for m in TREND_METRICS}},
        ).with_columns(pl.lit(None, pl.Float64).alias("cross_org_share"))
    return (
        wide.unpivot(
            index="scope", on=list(TREND_METRICS), variable_name="metric", value_name="value"
        )
        .filter(pl.col("value").is_not_null())
        .select("metric", "scope", pl.col("value").cast(pl.Float64))
        .sort("scope", "metric")
    )
