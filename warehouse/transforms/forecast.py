"""Monte Carlo forecasts: when will an epic (or initiative) land, and how much will a team finish.

Model (docs/forecast.md has the full story and the caveats):

- Each team's future daily throughput is sampled from its own history: the number of delivery items
  it finished on each of the last ``window_days`` full UTC days, zero days included. Calendar days,
  so weekends and holidays are in the sample as they were in the past.
- An epic's remaining work is its open delivery items, per team (an item without a team is the
  epic's team's work). An open epic with no delivery items at all counts as one item.
- A team serves its epics in backlog order (rank, then due date, then key): an epic's work in a team is done when
  the team's cumulative throughput reaches the remaining items of this epic *and every epic ranked
  before it* in that team. Work that belongs to no epic is not in the queue (so forecasts are
  optimistic when teams spend much time outside epics), except open items that block something,
  which join the queue as one-item units so that they can be forecast as blockers.
- The epic lands when its last team is done, and never before any open blocker: per trial,
  finish = max(own finish, finish of each blocking epic or item), computed in topological order
  of the blocker graph. Cycles are broken by dropping edges between members of one cycle only
  (every edge into or out of a cycle is kept); the members are reported.

Everything is vectorised over trials (``TeamStream``): per team a pool of sampled stretches of
days, per trial a sequence of stretches, one ``searchsorted`` for all targets at once and a table
lookup for the day inside the stretch. Only the loops over teams, over chunks of stretches and
over graph nodes are Python loops; none runs per trial.
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.settings_analytics import ForecastParams
from pmolens.warehouse.transforms.flow import NO_GROUP, FlowData, as_of_date

#: Sentinel "finish day" for trials that do not finish within the horizon.
NEVER = 100_000_000
PERCENTILES = (50, 85, 95)
TARGET_CHUNK = 2048  # targets per crossing matrix (trials x chunk int32)
POOL_BLOCKS = 2048  # simulated stretches of days drawn per team
POOL_DAYS = 16  # days per stretch
CHUNK_BLOCKS = 8  # stretches drawn per step for every trial (fixed: streams never depend on work)
MAX_TABLE = 4096  # items per stretch up to which the day lookup is one table gather
#: The order a team serves its epics in, and the order epics are picked for the forecast.
BACKLOG_ORDER = ("rank", "due_date", "key", "node_id")


# --------------------------------------------------------------------------- sampling


def team_rng(seed: int, team: str) -> np.random.Generator:
    """One random stream per team: a team's simulated days do not depend on other teams."""
    return np.random.default_rng([seed, zlib.crc32(team.encode("utf-8"))])


def crossings_sorted(cum: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(rows x len(targets)) int32 first column where each row of ``cum`` (non-decreasing)
    reaches each ascending target; NEVER if it does not.

    ``c[t, d]`` = how many targets row t has reached by column d (one searchsorted over the whole
    matrix); the targets first reached in column d are then ``c[t, d] - c[t, d-1]`` consecutive
    ones, so repeating each column label by that count writes the answer row by row, already
    dense. Work: O(rows x columns x log(targets) + rows x targets), no per-row loop.
    """
    rows, width = cum.shape
    k = len(targets)
    reached = np.searchsorted(np.asarray(targets, dtype=np.int64), cum, side="right")
    counts = np.empty((rows, width + 1), dtype=np.int64)
    counts[:, 0] = reached[:, 0]
    np.subtract(reached[:, 1:], reached[:, :-1], out=counts[:, 1:width])
    counts[:, width] = k - reached[:, -1]
    labels = np.append(np.arange(width, dtype=np.int32), np.int32(NEVER))
    return np.repeat(np.tile(labels, rows), counts.ravel()).reshape(rows, k)


def crossings_few(cum: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Same answer as ``crossings_sorted``, cheaper when there are fewer targets than columns:
    each row is lifted by row x span (span > any value), so the flattened matrix is one sorted
    array and one searchsorted finds every (row, target); a target a row never reaches lands at
    the start of the next row, i.e. column == width -> NEVER. Work: O(rows x targets x log)."""
    rows, width = cum.shape
    k = len(targets)
    targets = np.asarray(targets, dtype=np.int64)
    span = max(int(cum[:, -1].max()), int(targets[-1])) + 1
    lift = np.arange(rows, dtype=np.int64)[:, None] * span
    flat = (cum + lift).ravel()
    pos = np.searchsorted(flat, (targets[None, :] + lift).ravel(), side="left").reshape(rows, k)
    pos -= np.arange(rows, dtype=np.int64)[:, None] * width
    return np.where(pos < width, pos, NEVER).astype(np.int32)


class TeamStream:
    """One team's simulated future, the same for every question asked of it.

    Two-stage bootstrap: ``POOL_BLOCKS`` stretches of ``POOL_DAYS`` days are drawn from the
    team's daily throughput history (zero days included); each trial's future is a sequence of
    stretches drawn from that pool. A trial's days are then iid draws from the history, as in a
    plain day-by-day simulation, but the work per trial is one number per stretch instead of one
    per day, and the day a target is reached is a table lookup inside the stretch. Stretch ids
    come in fixed chunks from the team's own stream, so day d of trial t never depends on how
    much work is asked for (more work never finishes earlier; a later date never counts fewer).
    """

    def __init__(self, samples: np.ndarray, trials: int, rng: np.random.Generator) -> None:
        values = np.asarray(samples, dtype=np.int64)
        self.trials = trials
        self.rng = rng
        self.empty = len(values) == 0 or int(values.max()) <= 0
        pool = (
            np.zeros((1, POOL_DAYS), dtype=np.int64)
            if self.empty
            else values[rng.integers(0, len(values), size=(POOL_BLOCKS, POOL_DAYS))]
        )
        #: (pool x days + 1) items after day k of each stretch; column 0 = 0
        self.pool_cum = np.concatenate(
            [np.zeros((len(pool), 1), dtype=np.int64), np.cumsum(pool, axis=1)], axis=1
        )
        self.totals = np.ascontiguousarray(self.pool_cum[:, -1])
        top = int(self.totals.max())
        #: first day (1..POOL_DAYS) of each stretch by which r items are done, r = 0..top
        self.first_day: np.ndarray | None = None
        if not self.empty and top <= MAX_TABLE:
            self.first_day = np.zeros((len(pool), top + 1), dtype=np.int16)
            self.first_day[:, 1:] = crossings_sorted(self.pool_cum, np.arange(1, top + 1))
        #: stretch ids as drawn, chunk-major: (chunks x trials x CHUNK_BLOCKS) per draw
        self.parts: list[np.ndarray] = []
        self._all_ids: np.ndarray | None = None
        self.cum = np.zeros((trials, 1), dtype=np.int64)  # items after each whole stretch
        self.col_min = np.zeros(1, dtype=np.int64)  # least of each column of cum (slowest trial)

    @property
    def blocks(self) -> int:
        return self.cum.shape[1] - 1

    def _extend(self, blocks: int = CHUNK_BLOCKS) -> None:
        """Draw at least ``blocks`` more stretches per trial, in whole chunks.

        One draw of (chunks x trials x CHUNK_BLOCKS) consumes the team's stream in the same order
        as that many one-chunk draws, so how fast the horizon grows never changes a trial's days.
        """
        chunks = max(1, -(-blocks // CHUNK_BLOCKS))
        size = (chunks, self.trials, CHUNK_BLOCKS)
        drawn = self.rng.integers(0, len(self.pool_cum), size=size, dtype=np.int32)
        self.parts.append(drawn)
        self._all_ids = None
        old = self.cum.shape[1]
        cum = np.empty((self.trials, old + chunks * CHUNK_BLOCKS), dtype=np.int64)
        cum[:, :old] = self.cum
        step = cum[:, old:]
        # gather in drawn order, write trial-major: no separate transpose or concatenate copies
        step.reshape(self.trials, chunks, CHUNK_BLOCKS).transpose(1, 0, 2)[...] = self.totals[drawn]
        np.cumsum(step, axis=1, out=step)
        step += cum[:, old - 1 : old]
        self.cum = cum
        self.col_min = np.concatenate([self.col_min, step.min(axis=0)])

    def _blocks_for(self, items: int) -> int:
        """Stretches every trial needs for ``items`` more, estimated from the pool (mean minus
        4 standard deviations of a sum of stretches, ~ the slowest of 10,000 trials) so that a
        long horizon is drawn in one or two steps instead of chunk by chunk."""
        mean, sd = float(self.totals.mean()), float(self.totals.std())
        if mean <= 0:  # a pool of zero stretches never gets there: up to the horizon
            return 1 << 40
        root = (4 * sd + np.sqrt(16 * sd * sd + 4 * mean * items)) / (2 * mean)
        return int(np.ceil(root * root))

    def _chunks(self) -> np.ndarray:
        """Every stretch id drawn so far: (chunks x trials x CHUNK_BLOCKS)."""
        if self._all_ids is None:
            many = len(self.parts) > 1
            self._all_ids = np.concatenate(self.parts, axis=0) if many else self.parts[0]
        return self._all_ids

    def _ids(self, block: np.ndarray) -> np.ndarray:
        """Stretch id of each trial (row) at 0-based stretch index ``block`` (trials x k)."""
        rows = np.arange(self.trials, dtype=np.int64)[:, None]
        chunk, inside = np.divmod(block, CHUNK_BLOCKS)
        return self._chunks().ravel()[(chunk * self.trials + rows) * CHUNK_BLOCKS + inside]

    def finish_days(self, targets: np.ndarray, max_days: int) -> np.ndarray:
        """(trials x len(targets)) int32 simulated day (1-based) on which the team's cumulative
        throughput first reaches each ascending target (>= 1); NEVER beyond ``max_days``."""
        targets = np.asarray(targets, dtype=np.int64)
        out = np.full((self.trials, len(targets)), NEVER, dtype=np.int32)
        if self.empty or len(targets) == 0:
            return out
        last = int(targets[-1])
        limit = -(-max_days // POOL_DAYS)  # stretches covering max_days
        while int(self.col_min[-1]) < last and self.blocks < limit:
            want = max(self._blocks_for(last - int(self.col_min[-1])), self.blocks)  # >= doubling
            self._extend(min(want, limit - self.blocks))
        if self.blocks == 0:
            return out
        # every trial reaches the last target by this column: later ones change no crossing
        width = int(np.searchsorted(self.col_min, last, side="left")) + 1
        # first whole stretch that reaches the target
        used = self.cum[:, : min(width, self.cum.shape[1])]
        cross = crossings_few if len(targets) < used.shape[1] else crossings_sorted
        col = cross(used, targets)
        found = col < NEVER
        before = np.where(found, col - 1, 0)  # stretches fully done before the crossing one
        rows = np.arange(self.trials, dtype=np.int64)[:, None]
        residual = targets[None, :] - self.cum.ravel()[rows * self.cum.shape[1] + before]
        block = self._ids(before)
        if self.first_day is not None:
            width = self.first_day.shape[1]
            offset = self.first_day.ravel()[block * width + np.minimum(residual, width - 1)]
        else:  # very bulky days: compare against the stretch's days instead of a table
            offset = (self.pool_cum[block, 1:] < residual[..., None]).sum(axis=-1) + 1
        days = before * POOL_DAYS + offset
        return np.where(found & (days <= max_days), days, NEVER).astype(np.int32)

    def items_by(self, day: int) -> np.ndarray:
        """(trials,) items finished in simulated days 1..``day``."""
        if self.empty or day <= 0:
            return np.zeros(self.trials, dtype=np.int64)
        if self.blocks * POOL_DAYS < day:
            self._extend(-(-day // POOL_DAYS) - self.blocks)
        whole, rest = divmod(day, POOL_DAYS)
        total = self.cum[:, whole].copy()
        if rest:
            chunk, inside = divmod(whole, CHUNK_BLOCKS)
            total += self.pool_cum[self._chunks()[chunk, :, inside], rest]
        return total


# --------------------------------------------------------------------------- planning


@dataclass
class Plan:
    """What is simulated: nodes (epics and blocking items), their queue targets, the graph."""

    nodes: pl.DataFrame  # node_id, kind, key, title, url, team, organisation, rank, due_date
    queue: pl.DataFrame  # node_id, team, remaining, target (cumulative in the team's rank order)
    edges: pl.DataFrame  # blocker_node, dependent_node: open, distinct, no self loops
    unforecast: dict[str, int]  # dependent node -> open blockers that cannot be forecast
    samples: dict[str, np.ndarray]  # team -> daily throughput over the window
    as_of_day: date
    #: node -> fixed finish day in every trial (a what-if pin); empty for the forecast itself
    pins: dict[str, int] = field(default_factory=dict)


def _edge_ends(edges: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """blocker_id, dependent_id and each end's status category and epic.

    The dependency_edges frame already carries them (blocker_category, blocker_epic, ...; same
    epic rule as flow.item_frame), which spares two joins of millions of links on string ids;
    a frame with the ids only gets them from ``items``.
    """
    wanted = ["blocker_category", "blocker_epic", "dependent_category", "dependent_epic"]
    if all(c in edges.columns for c in wanted):
        return edges.select("blocker_id", "dependent_id", *wanted)
    ends = items.select("item_id", pl.col("status_category").alias("category"), "epic_id")
    out = edges.select("blocker_id", "dependent_id")
    for side in ("blocker", "dependent"):
        out = out.join(
            ends.rename(
                {
                    "item_id": f"{side}_id",
                    "category": f"{side}_category",
                    "epic_id": f"{side}_epic",
                }
            ),
            on=f"{side}_id",
            how="left",
        )
    return out


def _open_edges(edges: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """The edges that still count: both ends known, the dependent open, the blocker not done."""
    return _edge_ends(edges, items).filter(
        pl.col("blocker_id").is_not_null()
        & pl.col("dependent_id").is_not_null()
        & (pl.col("blocker_category") != "done").fill_null(True)
        & (pl.col("dependent_category") != "done").fill_null(False)
    )


def _node_edges(open_edges: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """Open edges whose dependent is a node, with both ends' nodes (an end's node is its epic,
    else the item itself when it is a standalone node) and ``_known`` = the blocker's node is
    forecast. Item ids stay, so a what-if can drop one link of many between two nodes."""
    node_set = nodes["node_id"].implode()
    return (
        open_edges.with_columns(
            pl.coalesce("dependent_epic", "dependent_id").alias("dependent_node"),
            pl.coalesce("blocker_epic", "blocker_id").alias("blocker_node"),
        )
        .filter(pl.col("dependent_node").is_in(node_set))
        .with_columns(pl.col("blocker_node").is_in(node_set).alias("_known"))
    )


def _node_graph(mapped: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """The node graph (blocker_node, dependent_node; distinct, no self loops) and per dependent
    node the open blockers that cannot be forecast."""
    unforecast = (
        mapped.filter(~pl.col("_known"))
        .group_by("dependent_node")
        .agg(pl.col("blocker_id").n_unique().alias("n"))
    )
    graph = (
        mapped.filter(pl.col("_known") & (pl.col("blocker_node") != pl.col("dependent_node")))
        .select("blocker_node", "dependent_node")
        .unique()
        .sort("dependent_node", "blocker_node")
    )
    return graph, dict(unforecast.iter_rows())


def plan(data: FlowData, edges: pl.DataFrame, daily: pl.DataFrame) -> Plan:
    """Build the simulation input: nodes, per-team queues, the blocker graph, the samples.

    ``data`` is flow.prepare's output, ``edges`` needs blocker_id and dependent_id (the
    dependency_edges frame), ``daily`` is flow.daily_throughput per team (zero days included).
    An edge counts while both ends are open: a done dependent no longer waits, a done blocker no
    longer holds anything up; a blocker not in the warehouse counts as open.
    """
    items = data.items
    open_ = pl.col("status_category") != "done"
    delivery = items.filter(pl.col("delivery"))
    epic_rows = items.filter(pl.col("level") == "epic")

    # blocking items outside any epic become one-item nodes
    open_edges = _open_edges(edges, items)
    blocking_ids = open_edges.select(pl.col("blocker_id").alias("item_id")).unique()
    standalone = delivery.filter(open_ & pl.col("epic_id").is_null()).join(
        blocking_ids, on="item_id", how="semi"
    )

    remaining = (
        delivery.filter(open_ & pl.col("epic_id").is_not_null())
        .join(
            epic_rows.select(pl.col("item_id").alias("epic_id"), pl.col("team").alias("_et")),
            on="epic_id",
            how="left",
        )
        .select(
            pl.col("epic_id").alias("node_id"),
            pl.coalesce("team", "_et").fill_null(NO_GROUP).alias("team"),
        )
        .group_by("node_id", "team")
        .agg(pl.len().cast(pl.Int64).alias("remaining"))
    )
    has_delivery = delivery.filter(pl.col("epic_id").is_not_null()).select("epic_id").unique()
    open_epics = epic_rows.filter(open_).select("item_id")
    epic_ids = pl.concat(
        [open_epics, remaining.select(pl.col("node_id").alias("item_id"))]
    ).unique()
    undecomposed = (
        epic_rows.join(epic_ids, on="item_id", how="semi")
        .join(has_delivery, left_on="item_id", right_on="epic_id", how="anti")
        .select(
            pl.col("item_id").alias("node_id"),
            pl.col("team").fill_null(NO_GROUP),
            pl.lit(1, pl.Int64).alias("remaining"),
        )
    )
    lone = standalone.select(
        pl.col("item_id").alias("node_id"),
        pl.col("team").fill_null(NO_GROUP),
        pl.lit(1, pl.Int64).alias("remaining"),
    )
    node_cols = ["item_id", "key", "title", "url", "team", "organisation", "rank", "due_date"]
    nodes = pl.concat(
        [
            epic_rows.join(epic_ids, on="item_id", how="semi")
            .select(node_cols)
            .with_columns(pl.lit("epic").alias("kind")),
            standalone.select(node_cols).with_columns(pl.lit("item").alias("kind")),
        ]
    ).rename({"item_id": "node_id"})
    queue = (
        pl.concat([remaining, undecomposed, lone])
        .join(nodes.select(*BACKLOG_ORDER), on="node_id", how="inner")
        .sort(["team", *BACKLOG_ORDER], nulls_last=True)
        .with_columns(pl.col("remaining").cum_sum().over("team").alias("target"))
        .select("node_id", "team", "remaining", "target")
    )

    graph, unforecast = _node_graph(_node_edges(open_edges, nodes))

    teams = set(queue["team"].to_list())
    samples = {
        team: group["items"].to_numpy().astype(np.int64)
        for (team,), group in daily.filter(pl.col("team").is_in(list(teams))).group_by("team")
    }
    return Plan(
        nodes=nodes,
        queue=queue,
        edges=graph,
        unforecast=unforecast,
        samples=samples,
        as_of_day=as_of_date(data.as_of),
    )


# --------------------------------------------------------------------------- simulation


@dataclass
class Simulation:
    """Per-trial finish days (1-based simulated day; 0 = nothing left; NEVER = beyond horizon).

    ``own`` and ``final`` are (trials x nodes) int32, column-major so a node's trials are contiguous.
    """

    node_ids: list[str]
    own: np.ndarray  # trials x nodes: own teams only
    final: np.ndarray  # trials x nodes: with blockers
    blockers: dict[str, list[str]]  # node -> blocker nodes used (after cycle breaking)
    broken: list[tuple[str, str]]  # (blocker, dependent) edges dropped to break cycles
    driven_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)  # node -> blocker nodes not simulated
    #: nodes in a cycle of the simulated graph (whose dates therefore ignore a broken edge)
    in_cycle: set[str] = field(default_factory=set)

    def index(self, node_id: str) -> int:
        return self.node_ids.index(node_id)


def strong_components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Strongly connected component label per node 0..n-1 of the edges ``src[i] -> dst[i]``
    (scipy, linear time): two nodes share a label when each waits, directly or through others,
    on the other."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.zeros(0, dtype=np.int64)
    matrix = csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    return connected_components(matrix, directed=True, connection="strong")[1].astype(np.int64)


def _break_cycle(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Edge positions to drop so that one strongly connected component (nodes 0..n-1 in id order,
    edges ``src -> dst`` all inside it) has no cycle left.

    Kahn peels the nodes whose blockers are all done. When only cycles are left, the victim is
    a waiting node whose unfinished blockers all lie in its own cycle of what is left (recomputed
    each time, so a dropped edge is always on a cycle), with the fewest unfinished blockers, then
    the smallest id; it loses exactly those incoming edges. Edges from members already done are
    kept. Vectorised per round: O(rounds x edges of the component).
    """
    waiting = np.ones(n, dtype=bool)
    kept = np.ones(len(src), dtype=bool)
    while waiting.any():
        live = kept & waiting[src] & waiting[dst]
        pending = np.bincount(dst[live], minlength=n)
        ready = waiting & (pending == 0)
        if ready.any():
            waiting &= ~ready
            continue
        labels = strong_components(n, src[live], dst[live])
        crossing = np.zeros(n, dtype=bool)  # waits on a waiting node outside its own cycle
        crossing[dst[live][labels[src[live]] != labels[dst[live]]]] = True
        candidates = np.flatnonzero(waiting & ~crossing)  # never empty: a source cycle exists
        victim = candidates[np.argmin(pending[candidates])]  # first = smallest id on ties
        kept &= ~(live & (dst == victim))
    return np.flatnonzero(~kept)


def topological_order(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]]
) -> tuple[list[str], list[tuple[str, str]], set[str]]:
    """Blockers before dependents (Kahn, smallest id first among the ready ones).

    Cycles are broken inside their strongly connected component only (``_break_cycle``): every
    edge between two different components is kept, so a node never comes before a blocker that
    is not in its own cycle. Returns the order, the dropped (blocker, dependent) edges, and the
    members of the cycles (components of two or more nodes): their dates ignore at least one
    edge of their cycle, directly or through another member.
    """
    names = sorted(set(nodes))
    pos = {name: i for i, name in enumerate(names)}
    pairs = sorted({(pos[b], pos[d]) for b, d in edges if b in pos and d in pos and b != d})
    src = np.array([b for b, _ in pairs], dtype=np.int64)
    dst = np.array([d for _, d in pairs], dtype=np.int64)
    labels = strong_components(len(names), src, dst)
    in_cycle = np.bincount(labels, minlength=len(names))[labels] > 1
    inside = labels[src] == labels[dst]
    drop = np.zeros(len(pairs), dtype=bool)
    for label in np.unique(labels[in_cycle]):
        members = np.flatnonzero(labels == label)  # ascending: id order
        local = np.full(len(names), -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        at = np.flatnonzero(inside & (labels[src] == label))
        drop[at[_break_cycle(local[src[at]], local[dst[at]], len(members))]] = True
    broken = [(names[src[i]], names[dst[i]]) for i in np.flatnonzero(drop)]

    outgoing: dict[int, list[int]] = {i: [] for i in range(len(names))}
    pending = [0] * len(names)
    for i in np.flatnonzero(~drop):
        outgoing[int(src[i])].append(int(dst[i]))
        pending[int(dst[i])] += 1
    ready = [i for i in range(len(names)) if pending[i] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(names[node])
        for d in outgoing[node]:
            pending[d] -= 1
            if pending[d] == 0:
                heapq.heappush(ready, d)
    if len(order) != len(names):  # cannot happen: every cycle lost an edge
        raise AssertionError("blocker graph still has a cycle after breaking")
    cycle_members = {names[i] for i in np.flatnonzero(in_cycle)}
    return order, broken, cycle_members


def _closure(selected: set[str], graph: pl.DataFrame, max_nodes: int | None = None) -> set[str]:
    """``selected`` plus the nodes that block them, transitively, nearest first (breadth first,
    by id within a level), until ``max_nodes`` nodes are taken; blockers beyond the cap are left
    out (the forecast counts them as unforecast blockers). The selected nodes are always in."""
    seen = set(selected)
    level = sorted(selected)
    cap = max_nodes if max_nodes is not None else graph.height + len(seen) + 1
    while level and len(seen) < cap:
        found = graph.filter(pl.col("dependent_node").is_in(level))["blocker_node"].unique()
        fresh = sorted(set(found.to_list()) - seen)[: cap - len(seen)]
        seen.update(fresh)
        level = fresh
    return seen


def simulate(
    p: Plan,
    trials: int = 10_000,
    seed: int = 0,
    max_horizon_days: int = 3650,
    node_ids: Sequence[str] | None = None,
    max_nodes: int | None = None,
) -> Simulation:
    """Run the trials for ``node_ids`` (default: every node) and their transitive blockers
    (at most ``max_nodes`` nodes in all, nearest blockers first)."""
    all_nodes = p.nodes["node_id"].to_list()
    known = set(all_nodes)
    start = set(node_ids) if node_ids is not None else known
    wanted = _closure(start & known, p.edges, max_nodes) & known
    inside = pl.col("dependent_node").is_in(list(wanted))
    sub = p.edges.filter(inside & pl.col("blocker_node").is_in(list(wanted)))
    left_out = dict(
        p.edges.filter(inside & ~pl.col("blocker_node").is_in(list(wanted)))
        .group_by("dependent_node")
        .len()
        .iter_rows()
    )
    graph: list[tuple[str, str]] = list(sub.iter_rows())
    order_all, broken, in_cycle = topological_order(sorted(wanted), graph)
    index = {n: i for i, n in enumerate(order_all)}
    own = np.zeros((trials, len(order_all)), dtype=np.int32, order="F")
    queue = p.queue.filter(pl.col("node_id").is_in(list(wanted)))
    for (team,), group in queue.sort("team", "target").group_by("team", maintain_order=True):
        targets = group["target"].to_numpy().astype(np.int64)
        cols = np.array([index[n] for n in group["node_id"].to_list()], dtype=np.int64)
        stream = TeamStream(
            p.samples.get(team, np.zeros(0, dtype=np.int64)), trials, team_rng(seed, team)
        )
        for lo in range(0, len(targets), TARGET_CHUNK):  # bounds memory to trials x chunk
            part = slice(lo, lo + TARGET_CHUNK)
            own[:, cols[part]] = np.maximum(
                own[:, cols[part]], stream.finish_days(targets[part], max_horizon_days)
            )
    for node, day in p.pins.items():  # a what-if pin: this day in every trial
        if node in index:
            own[:, index[node]] = day
    final = own.copy(order="F")
    broken_set = set(broken)
    blockers: dict[str, list[str]] = {n: [] for n in order_all}
    for b, d in graph:
        if (b, d) not in broken_set:
            blockers[d].append(b)
    report = set(node_ids) if node_ids is not None else set(all_nodes)
    driven: dict[str, dict[str, int]] = {}
    for node in order_all:  # blockers first; each step is a vector op over all trials
        bl = sorted(set(blockers[node]))
        blockers[node] = bl
        if not bl:
            continue
        col = final[:, index[node]]
        if node in report:  # which blocker set the date, trial by trial (first one on ties)
            stack = final[:, [index[b] for b in bl]]
            latest = stack.max(axis=1)
            later = latest > col
            counts = np.bincount(stack.argmax(axis=1)[later], minlength=len(bl))
            driven[node] = {b: int(c) for b, c in zip(bl, counts, strict=True) if c}
        for b in bl:
            np.maximum(col, final[:, index[b]], out=col)
    return Simulation(order_all, own, final, blockers, broken, driven, left_out, in_cycle)


def _percentile_days(matrix: np.ndarray, q: Any) -> np.ndarray:
    if matrix.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.percentile(matrix, q, axis=0, method="inverted_cdf").astype(np.int64)


def _day_to_date(day0: date, days: np.ndarray) -> list[date | None]:
    return [None if d >= NEVER else day0 + timedelta(days=int(d)) for d in days]


# --------------------------------------------------------------------------- public forecasts


EPIC_SCHEMA: dict[str, Any] = {
    "epic_id": pl.String,
    "key": pl.String,
    "title": pl.String,
    "url": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "teams": pl.List(pl.String),
    "backlog_position": pl.Int64,  # 1 = first open epic in backlog order
    "remaining_items": pl.Int64,
    "p50": pl.Date,
    "p85": pl.Date,
    "p95": pl.Date,
    "own_p85": pl.Date,
    "target_date": pl.Date,
    "p_on_time": pl.Float64,
    "driven_by": pl.String,
    "driven_by_key": pl.String,
    "driven_share": pl.Float64,
    "dependency_delay_days_p85": pl.Int64,
    "blockers": pl.List(pl.String),
    "unforecast_blockers": pl.Int64,
    "cycle_broken": pl.Boolean,
    "note": pl.String,  # in English; note_keys/note_params: the same notes for the catalogue
    "note_keys": pl.List(pl.String),
    "note_params": pl.List(pl.String),
}


@dataclass(frozen=True)
class Forecast:
    epics: pl.DataFrame  # EPIC_SCHEMA
    initiatives: pl.DataFrame  # INITIATIVE_SCHEMA


def forecast(
    data: FlowData,
    edges: pl.DataFrame,
    daily: pl.DataFrame,
    params: ForecastParams | None = None,
    *,
    epic_ids: Sequence[str] | None = None,
) -> Forecast:
    """When each open epic and each initiative lands (P50/P85/P95 dates), dependency-aware.

    One simulation serves both: an initiative's finish per trial is the latest of its open epics.
    ``data`` = flow.prepare, ``daily`` = flow.daily_throughput per team over ``window_days``,
    ``edges`` = dependency_edges (blocker_id, dependent_id). ``epic_ids`` limits the epics
    reported (their blockers are simulated too).
    """
    p = params or ForecastParams()
    pl_plan = plan(data, edges, daily)
    selected = selection(pl_plan, p, epic_ids)
    sim = simulate(pl_plan, p.trials, p.seed, p.max_horizon_days, selected, p.max_nodes)
    return Forecast(
        _epic_frame(pl_plan, sim, selected), _initiative_frame(data.items, pl_plan, sim, selected)
    )


def selection(p: Plan, params: ForecastParams, epic_ids: Sequence[str] | None = None) -> list[str]:
    """The epics a forecast reports, in backlog order: the first ``max_epics`` open epics, or
    the open ones among ``epic_ids``."""
    epic_nodes = (
        p.nodes.filter(pl.col("kind") == "epic")
        .sort(list(BACKLOG_ORDER), nulls_last=True)["node_id"]
        .to_list()
    )
    if epic_ids is None:
        return epic_nodes[: params.max_epics]
    asked = set(epic_ids)
    return [e for e in epic_nodes if e in asked]


def _epic_frame(p: Plan, sim: Simulation, selected: Sequence[str]) -> pl.DataFrame:
    if not selected:
        return pl.DataFrame(schema=EPIC_SCHEMA)
    index = {n: i for i, n in enumerate(sim.node_ids)}
    cols = [index[n] for n in selected]
    final = sim.final[:, cols]
    own = sim.own[:, cols]
    day0 = p.as_of_day
    pct = {q: _percentile_days(final, q) for q in PERCENTILES}
    own85 = _percentile_days(own, 85)
    delay = np.where(final >= NEVER, NEVER, final - np.minimum(own, final))
    delay85 = _percentile_days(delay, 85)
    info = {r["node_id"]: r for r in p.nodes.iter_rows(named=True)}
    work = (
        p.queue.group_by("node_id")
        .agg(pl.col("team").sort(), pl.col("remaining").sum())
        .rows_by_key("node_id", named=True, unique=True)
    )
    rows: list[dict[str, Any]] = []
    trials = final.shape[0]
    for j, node in enumerate(selected):
        meta = info[node]
        target = meta["due_date"]
        p_on_time = None
        if target is not None:
            p_on_time = _p_on_time(final[:, j], day0, target)
        counts = sim.driven_counts.get(node, {})
        driver = max(sorted(counts), key=lambda b: counts[b]) if counts else None
        teams = work.get(node, {}).get("team", [])
        notes: list[str] = []
        keyed: list[tuple[str, dict[str, Any]]] = []  # the same notes for the reader's language
        for team in teams:
            if p.samples.get(team) is None or int(p.samples[team].sum()) == 0:
                notes.append(f"team {team} finished nothing in the window: no forecast possible")
                keyed.append(("fc_note_team_idle", {"team": team}))
        if node not in work:
            notes.append("no open work left: close the epic?")
            keyed.append(("fc_note_no_open_work", {}))
        elif final[:, j].max() >= NEVER and not notes:
            notes.append("some trials do not finish within the horizon")
            keyed.append(("fc_note_beyond_horizon", {}))
        rows.append(
            {
                "epic_id": node,
                "key": meta["key"],
                "title": meta["title"],
                "url": meta["url"],
                "team": meta["team"],
                "organisation": meta["organisation"],
                "teams": teams,
                "backlog_position": j + 1,
                "remaining_items": int(work.get(node, {}).get("remaining", 0)),
                "p50": _day_to_date(day0, pct[50][j : j + 1])[0],
                "p85": _day_to_date(day0, pct[85][j : j + 1])[0],
                "p95": _day_to_date(day0, pct[95][j : j + 1])[0],
                "own_p85": _day_to_date(day0, own85[j : j + 1])[0],
                "target_date": target,
                "p_on_time": p_on_time,
                "driven_by": driver,
                "driven_by_key": info[driver]["key"] if driver in info else None,
                "driven_share": counts[driver] / trials if driver else None,
                "dependency_delay_days_p85": None if delay85[j] >= NEVER else int(delay85[j]),
                "blockers": sim.blockers.get(node, []),
                "unforecast_blockers": int(p.unforecast.get(node, 0) + sim.left_out.get(node, 0)),
                "cycle_broken": node in sim.in_cycle,
                "note": "; ".join(notes) or None,
                "note_keys": [k for k, _ in keyed],
                "note_params": [json.dumps(v) for _, v in keyed],
            }
        )
    return pl.DataFrame(rows, schema=EPIC_SCHEMA).sort("p85", "key", nulls_last=True)


INITIATIVE_SCHEMA: dict[str, Any] = {
    "initiative_id": pl.String,
    "key": pl.String,
    "title": pl.String,
    "url": pl.String,
    "organisation": pl.String,
    "epics": pl.Int64,
    "remaining_items": pl.Int64,
    "p50": pl.Date,
    "p85": pl.Date,
    "p95": pl.Date,
    "target_date": pl.Date,
    "p_on_time": pl.Float64,
    "driven_by": pl.String,
    "driven_by_key": pl.String,
    "driven_share": pl.Float64,
}


def _initiative_frame(
    items: pl.DataFrame, p: Plan, sim: Simulation, selected: Sequence[str]
) -> pl.DataFrame:
    """Per initiative: per trial the latest of its forecast epics; driven_by = the epic that was
    last most often (only when there are two or more)."""
    under = (
        items.filter(pl.col("initiative_id").is_not_null() & pl.col("item_id").is_in(selected))
        .select("item_id", "initiative_id")
        .sort("initiative_id", "item_id")
    )
    if under.height == 0:
        return pl.DataFrame(schema=INITIATIVE_SCHEMA)
    index = {n: i for i, n in enumerate(sim.node_ids)}
    remaining = dict(p.queue.group_by("node_id").agg(pl.col("remaining").sum()).iter_rows())
    meta = items.filter(pl.col("level").is_in(["initiative", "epic"])).rows_by_key(
        "item_id", named=True, unique=True
    )
    day0 = p.as_of_day
    rows = []
    for (initiative,), group in under.group_by("initiative_id", maintain_order=True):
        epics = group["item_id"].to_list()
        stack = sim.final[:, [index[e] for e in epics]]
        finish = stack.max(axis=1)
        last = np.bincount(stack.argmax(axis=1), minlength=len(epics))
        top = int(np.argmax(last))
        info = meta[initiative]
        target = info["due_date"]
        several = len(epics) > 1
        pct = _percentile_days(finish[:, None], np.array(PERCENTILES))
        rows.append(
            {
                "initiative_id": initiative,
                "key": info["key"],
                "title": info["title"],
                "url": info["url"],
                "organisation": info["organisation"],
                "epics": len(epics),
                "remaining_items": int(sum(remaining.get(e, 0) for e in epics)),
                **{f"p{q}": _day_to_date(day0, pct[i])[0] for i, q in enumerate(PERCENTILES)},
                "target_date": target,
                "p_on_time": None if target is None else _p_on_time(finish, day0, target),
                "driven_by": epics[top] if several else None,
                "driven_by_key": meta[epics[top]]["key"] if several else None,
                "driven_share": float(last[top] / len(finish)) if several else None,
            }
        )
    return pl.DataFrame(rows, schema=INITIATIVE_SCHEMA).sort("p85", "key", nulls_last=True)


def _p_on_time(finish: np.ndarray, day0: date, target: date) -> float:
    """Share of trials done on or before ``target`` (day d of the simulation = day0 + d)."""
    return float((finish <= (target - day0).days).mean())


# --------------------------------------------------------------------------- what-if


class WhatIfError(ValueError):
    """A what-if that cannot be run as asked. ``code`` names the reason (unknown_epic,
    unknown_team, not_forecast, pin_self, pin_twice, not_a_blocker,
    no_such_dependency, malformed_pin, malformed_drop, ambiguous_key), so a caller can say it in
    its own words and language; ``subject`` is the id or text it is about."""

    def __init__(self, code: str, message: str, subject: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.subject = subject


@dataclass(frozen=True)
class WhatIf:
    """A change to try on one epic's forecast; nothing in the warehouse changes.

    ``pins``: (blocker, day): that blocker finishes on that day in every trial and no longer
    waits on its own blockers; an item id stands for its node (its epic, or the item itself
    when it is a blocking item outside any epic). Its team's queue is unchanged: the pin moves
    the date, not the capacity.
    ``drop``: (blocker, dependent) pairs of item ids or node ids: the open dependency links
    between them are ignored (node ids: every link between those two nodes).
    ``team``: the epic's remaining work moves to this team's queue, in its backlog order, and is
    done at that team's throughput; the teams it leaves serve their other epics sooner.
    """

    pins: tuple[tuple[str, date], ...] = ()
    drop: tuple[tuple[str, str], ...] = ()
    team: str | None = None

    @property
    def empty(self) -> bool:
        return not self.pins and not self.drop and self.team is None


WHAT_IF_SCHEMA: dict[str, Any] = {
    "run": pl.String,  # current | scenario
    **{k: v for k, v in EPIC_SCHEMA.items() if k != "backlog_position"},
}


def what_if_plan(
    p: Plan,
    data: FlowData,
    edges: pl.DataFrame,
    daily: pl.DataFrame,
    epic_id: str,
    change: WhatIf,
) -> Plan:
    """``p`` with ``change`` applied for epic ``epic_id`` (ids, not keys); ``p`` itself is not
    touched. Every part of the change must be able to move this epic's date, else WhatIfError:
    a pin or dropped link off the epic's chain of blockers is most likely a wrong id, and a
    shared what-if must not suggest that it mattered."""
    kinds = dict(p.nodes.select("node_id", "kind").iter_rows())
    if kinds.get(epic_id) != "epic":
        raise WhatIfError("unknown_epic", f"no open epic {epic_id!r} to forecast", epic_id)
    if change.empty:
        return p
    graph, unforecast = p.edges, p.unforecast
    if change.drop:
        mapped = _node_edges(_open_edges(edges, data.items), p.nodes)
        upstream = list(_closure({epic_id}, p.edges))
        keep = pl.lit(True)
        for blocker, dependent in change.drop:
            hit = (
                ((pl.col("blocker_id") == blocker) | (pl.col("blocker_node") == blocker))
                & ((pl.col("dependent_id") == dependent) | (pl.col("dependent_node") == dependent))
                & pl.col("dependent_node").is_in(upstream)
            )
            if mapped.filter(hit).height == 0:
                raise WhatIfError(
                    "no_such_dependency",
                    f"no open dependency {blocker} -> {dependent} on the way to epic {epic_id}",
                    f"{blocker}={dependent}",
                )
            keep = keep & ~hit
        graph, unforecast = _node_graph(mapped.filter(keep))
    pins: dict[str, int] = {}
    if change.pins:
        upstream_now = _closure({epic_id}, graph) - {epic_id}
        epic_of = dict(
            data.items.filter(pl.col("item_id").is_in([i for i, _ in change.pins]))
            .select("item_id", "epic_id")
            .iter_rows()
        )
        for ident, day in change.pins:
            node = ident if ident in kinds else epic_of.get(ident)
            if node is None or node not in kinds:
                raise WhatIfError(
                    "not_forecast", f"{ident} is not open work that the forecast simulates", ident
                )
            if node == epic_id:
                raise WhatIfError(
                    "pin_self",
                    f"{ident} is epic {epic_id}'s own work: pin one of its blockers",
                    ident,
                )
            if node not in upstream_now:
                raise WhatIfError(
                    "not_a_blocker",
                    f"{ident} does not block epic {epic_id}, directly or through others: "
                    "a pin there cannot move its date",
                    ident,
                )
            day = day.date() if isinstance(day, datetime) else day
            finish = max(0, (day - p.as_of_day).days)
            if pins.get(node, finish) != finish:
                raise WhatIfError("pin_twice", f"{node} is pinned to two different days", node)
            pins[node] = finish
        graph = graph.filter(~pl.col("dependent_node").is_in(list(pins)))  # pinned: no waiting
    nodes, queue, samples = p.nodes, p.queue, p.samples
    if change.team is not None:
        known = sorted(set(daily["team"].to_list()) - {NO_GROUP})
        if change.team not in known:
            shown = ", ".join(known[:30]) + (
                f" and {len(known) - 30} more" if len(known) > 30 else ""
            )
            raise WhatIfError(
                "unknown_team", f"unknown team {change.team!r}; known teams: {shown}", change.team
            )
        nodes, queue, samples = _move_epic(p, epic_id, change.team, daily)
    return replace(
        p, nodes=nodes, queue=queue, edges=graph, unforecast=unforecast, samples=samples, pins=pins
    )


def _move_epic(
    p: Plan, epic_id: str, team: str, daily: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, np.ndarray]]:
    """Nodes, queue and samples with the epic's remaining work (summed over its teams) in
    ``team``'s queue at its backlog position; every team's targets recomputed as plan does."""
    nodes = p.nodes.with_columns(
        pl.when(pl.col("node_id") == epic_id)
        .then(pl.lit(team))
        .otherwise(pl.col("team"))
        .alias("team")
    )
    mine = p.queue.filter(pl.col("node_id") == epic_id)
    if mine.height == 0:  # nothing left to move
        return nodes, p.queue, p.samples
    moved = pl.DataFrame(
        {"node_id": [epic_id], "team": [team], "remaining": [int(mine["remaining"].sum())]},
        schema={"node_id": pl.String, "team": pl.String, "remaining": pl.Int64},
    )
    queue = (
        pl.concat([p.queue.filter(pl.col("node_id") != epic_id).select(moved.columns), moved])
        .join(p.nodes.select(*BACKLOG_ORDER), on="node_id", how="inner")
        .sort(["team", *BACKLOG_ORDER], nulls_last=True)
        .with_columns(pl.col("remaining").cum_sum().over("team").alias("target"))
        .select("node_id", "team", "remaining", "target")
    )
    samples = dict(p.samples)
    if team not in samples:  # same order as plan takes it: the daily frame's own
        samples[team] = daily.filter(pl.col("team") == team)["items"].to_numpy().astype(np.int64)
    return nodes, queue, samples


def what_if_forecast(
    data: FlowData,
    edges: pl.DataFrame,
    daily: pl.DataFrame,
    params: ForecastParams | None,
    epic_id: str,
    change: WhatIf,
    *,
    base: Plan | None = None,
    current: Simulation | None = None,
) -> pl.DataFrame:
    """Epic ``epic_id`` forecast as it is (run "current") and with ``change`` (run "scenario"):
    two rows of WHAT_IF_SCHEMA, the EPIC_SCHEMA columns without backlog_position.

    Both runs simulate what the forecast simulates (its ``selection`` of epics, plus this epic
    when it is beyond ``max_epics``) with the same seed, so "current" is bit-identical to the
    epic's row in ``forecast()`` (the same blockers fall within ``max_nodes``) and the runs
    differ by the change alone. ``base`` = the plan already built from the same inputs (plan is
    the costly step on a large warehouse); ``current`` = ``simulate(base, ...)`` over
    ``selection(base, params)`` already run (the same for every epic of the selection).
    """
    p = params or ForecastParams()
    before = base if base is not None else plan(data, edges, daily)
    after = what_if_plan(before, data, edges, daily, epic_id, change)
    nodes = selection(before, p)
    if epic_id not in nodes:
        nodes, current = [*nodes, epic_id], None
    frames = []
    for run, run_plan in (("current", before), ("scenario", after)):
        if run == "current" and current is not None:
            sim = current
        elif run == "current" or run_plan is not before:
            sim = simulate(run_plan, p.trials, p.seed, p.max_horizon_days, nodes, p.max_nodes)
        row = _epic_frame(run_plan, sim, [epic_id]).drop("backlog_position")
        frames.append(row.select(pl.lit(run).alias("run"), pl.all()))
    return pl.concat(frames)


HOW_MANY_SCHEMA: dict[str, Any] = {
    "team": pl.String,
    "target_date": pl.Date,
    "days": pl.Int64,
    "items_p50": pl.Int64,
    "items_p85": pl.Int64,
    "items_p95": pl.Int64,
    "items_mean": pl.Float64,
    "window_days": pl.Int64,
    "zero_day_share": pl.Float64,
}


def forecast_how_many(
    daily: pl.DataFrame,
    as_of: datetime,
    target_dates: Sequence[date],
    trials: int = 10_000,
    seed: int = 0,
    teams: Sequence[str] | None = None,
) -> pl.DataFrame:
    """How many delivery items each team finishes from the day after ``as_of`` up to and
    including each target date (one row per team and date).

    ``daily`` = flow.daily_throughput per team. Same per-team streams as the "when" forecast, so
    a later date never forecasts fewer items in a trial. items_p85 = "at least this many with
    85 % confidence" (the 15th percentile of the simulated totals); items_p50 / items_p95 alike.
    zero_day_share = share of sampled days with nothing finished.
    """
    day0 = as_of_date(as_of)
    horizons = sorted({max(0, (d - day0).days) for d in target_dates})
    window = int(daily.select(pl.col("date").n_unique()).item()) if daily.height else 0
    rows = []
    wanted = daily if teams is None else daily.filter(pl.col("team").is_in(list(teams)))
    for (team,), group in wanted.sort("team", "date").group_by("team", maintain_order=True):
        samples = group["items"].to_numpy().astype(np.int64)
        stream = TeamStream(samples, trials, team_rng(seed, team))
        for days in horizons:
            total = stream.items_by(days)
            q = {p: int(np.percentile(total, 100 - p, method="inverted_cdf")) for p in PERCENTILES}
            rows.append(
                {
                    "team": team,
                    "target_date": day0 + timedelta(days=days),
                    "days": days,
                    "items_p50": q[50],
                    "items_p85": q[85],
                    "items_p95": q[95],
                    "items_mean": float(total.mean()),
                    "window_days": window,
                    "zero_day_share": float((samples == 0).mean()) if len(samples) else None,
                }
            )
    return pl.DataFrame(rows, schema=HOW_MANY_SCHEMA).sort("team", "target_date")
