"""Monte Carlo forecasts: when will an epic (or initiative) land, and how much will a team finish.

Model (docs/forecast.md has the full story and the caveats):

- Each team's future daily throughput is sampled from its own history: the number of delivery items
  it finished on each of the last ``window_days`` full UTC days, zero days included. Calendar days,
  so weekends and holidays are in the sample as they were in the past.
- An epic's remaining work is its open delivery items, per team (an item without a team is the
  epic's team's work). An open epic with no delivery items at all counts as one item.
- A team serves its epics in rank order (rank, then key): an epic's work in a team is done when
  the team's cumulative throughput reaches the remaining items of this epic *and every epic ranked
  before it* in that team. Work that belongs to no epic is not in the queue (so forecasts are
  optimistic when teams spend much time outside epics), except open items that block something,
  which join the queue as one-item units so that they can be forecast as blockers.
- The epic lands when its last team is done, and never before any open blocker: per trial,
  finish = max(own finish, finish of each blocking epic or item), computed in topological order
  of the blocker graph (cycles are broken at one node and reported).

Everything is vectorised over trials: per team a (trials x block) matrix of sampled daily
throughput, cumulated, and one ``searchsorted`` over row-offset rows for all targets at once. Only
the loop over blocks of simulated days and the loop over graph nodes are Python loops.
"""

from __future__ import annotations

import heapq
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from warehouse.transforms.flow import (
    NO_GROUP,
    WORK_LEVELS,
    FlowData,
    FlowParams,
    as_of_date,
    cycle_times,
    daily_throughput,
    live,
    prepare,
)

#: Sentinel "finish day" for trials that do not finish within the horizon.
NEVER = 100_000_000
BLOCK_DAYS = 128  # simulated days drawn per step; fixed so streams do not depend on the work
PERCENTILES = (50, 85, 95)
TARGET_CHUNK = 2048  # targets per crossing matrix (trials x chunk int32)


# --------------------------------------------------------------------------- sampling


def team_rng(seed: int, team: str) -> np.random.Generator:
    """One random stream per team: a team's simulated days do not depend on other teams."""
    return np.random.default_rng([seed, zlib.crc32(team.encode("utf-8"))])


def throughput_blocks(
    samples: np.ndarray, trials: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Endless (trials x BLOCK_DAYS) int64 blocks of daily throughput drawn from ``samples``."""
    values = np.asarray(samples, dtype=np.int64)
    while True:
        yield values[rng.integers(0, len(values), size=(trials, BLOCK_DAYS))]


def cumulative_paths(
    samples: np.ndarray,
    need: int,
    trials: int,
    rng: np.random.Generator,
    max_horizon_days: int,
) -> np.ndarray:
    """(trials x (days + 1)) int64 cumulative throughput, column d = after simulated day d.

    Column 0 is the start (zeros). Blocks are drawn until every trial has reached ``need`` items or
    the horizon is hit, so the number of days depends on the work; the numbers drawn for day d
    never do (fixed block size, one stream per team).
    """
    parts = [np.zeros((trials, 1), dtype=np.int64)]
    if need <= 0 or len(samples) == 0 or int(np.max(samples)) <= 0:
        return parts[0]
    carried = parts[0][:, 0]
    day0 = 0
    for block in throughput_blocks(samples, trials, rng):
        width = min(BLOCK_DAYS, max_horizon_days - day0)
        if width <= 0:
            break
        cum = np.cumsum(block[:, :width], axis=1) + carried[:, None]
        parts.append(cum)
        carried = cum[:, -1]
        day0 += width
        if int(carried.min()) >= need:
            break
    return np.concatenate(parts, axis=1)


def crossings_sorted(cum: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(trials x len(targets)) int32 first day each ascending target is reached; NEVER if not.

    ``c[t, d]`` = how many targets trial t has reached by day d (one searchsorted over the whole
    path matrix); the targets first reached on day d are then ``c[t, d] - c[t, d-1]`` consecutive
    ones, so repeating each day label by that count writes the answer row by row, already dense.
    Work: O(trials x days x log(targets) + trials x targets), no per-trial loop.
    """
    trials, width = cum.shape
    k = len(targets)
    reached = np.searchsorted(np.asarray(targets, dtype=np.int64), cum, side="right")
    counts = np.empty((trials, width + 1), dtype=np.int64)
    counts[:, 0] = reached[:, 0]
    np.subtract(reached[:, 1:], reached[:, :-1], out=counts[:, 1:width])
    counts[:, width] = k - reached[:, -1]
    labels = np.append(np.arange(width, dtype=np.int32), np.int32(NEVER))
    return np.repeat(np.tile(labels, trials), counts.ravel()).reshape(trials, k)


def crossing_days(
    samples: np.ndarray,
    targets: np.ndarray,
    trials: int,
    rng: np.random.Generator,
    max_horizon_days: int,
) -> np.ndarray:
    """(trials x len(targets)): first simulated day (1-based) on which the team's cumulative
    throughput reaches each target (any order); 0 for targets <= 0; NEVER beyond the horizon.
    """
    targets = np.asarray(targets, dtype=np.int64)
    order = np.argsort(targets, kind="stable")
    need = int(targets.max()) if len(targets) else 0
    cum = cumulative_paths(samples, need, trials, rng, max_horizon_days)
    out = np.empty((trials, len(targets)), dtype=np.int32)
    out[:, order] = crossings_sorted(cum, targets[order])
    return out


# --------------------------------------------------------------------------- planning


@dataclass
class Plan:
    """What is simulated: nodes (epics and blocking items), their queue targets, the graph."""

    nodes: pl.DataFrame  # node_id, kind, key, title, url, team, organisation, rank, due_date
    queue: pl.DataFrame  # node_id, team, remaining, target (cumulative in the team's rank order)
    edges: list[tuple[str, str]]  # (blocker node, dependent node), open, distinct, no self loops
    unforecast: dict[str, int]  # dependent node -> open blockers that cannot be forecast
    samples: dict[str, np.ndarray]  # team -> daily throughput over the window
    as_of_day: date


def plan(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    edges: pl.DataFrame,
    as_of: datetime,
    window_days: int = 90,
    work_levels: Sequence[str] = WORK_LEVELS,
    cycles: pl.DataFrame | None = None,
    *,
    data: FlowData | None = None,
) -> Plan:
    """Build the simulation input from the canonical frames (pure, polars only)."""
    d = data if data is not None else prepare(work_items, status_changes, as_of, work_levels)
    items = d.items
    epics = items.select("item_id", "epic_id").filter(pl.col("epic_id").is_not_null())
    open_ = pl.col("status_category") != "done"
    delivery = items.filter(pl.col("delivery"))
    epic_rows = items.filter(pl.col("level") == "epic")

    # blocking items outside any epic become one-item nodes
    open_edges = (
        edges.filter(pl.col("blocker_id").is_not_null() & pl.col("dependent_id").is_not_null())
        .select("blocker_id", "dependent_id")
        .join(
            items.select(pl.col("item_id").alias("blocker_id"), "status_category"),
            on="blocker_id",
            how="left",
        )
        .filter((pl.col("status_category") != "done").fill_null(True))
        .drop("status_category")
    )
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
        .join(nodes.select("node_id", "rank", "key"), on="node_id", how="inner")
        .sort(["team", "rank", "key", "node_id"], nulls_last=True)
        .with_columns(pl.col("remaining").cum_sum().over("team").alias("target"))
        .select("node_id", "team", "remaining", "target")
    )

    # node graph: node_of(item) = its epic, else itself when it is a standalone node
    node_set = nodes["node_id"].implode()
    node_of = pl.concat(
        [
            epics.filter(pl.col("epic_id").is_in(node_set)),
            standalone.select("item_id", pl.col("item_id").alias("epic_id")),
        ]
    )
    node_ids = nodes.select(pl.col("node_id").alias("epic_id"))
    mapped = (
        open_edges.join(
            node_of.rename({"item_id": "dependent_id", "epic_id": "dependent_node"}),
            on="dependent_id",
            how="inner",
        )
        .join(node_ids.rename({"epic_id": "dependent_node"}), on="dependent_node", how="semi")
        .join(
            node_of.rename({"item_id": "blocker_id", "epic_id": "blocker_node"}),
            on="blocker_id",
            how="left",
        )
        .join(
            node_ids.with_columns(pl.lit(True).alias("_known")).rename({"epic_id": "blocker_node"}),
            on="blocker_node",
            how="left",
        )
    )
    unforecast = (
        mapped.filter(pl.col("_known").is_null())
        .group_by("dependent_node")
        .agg(pl.col("blocker_id").n_unique().alias("n"))
    )
    graph = (
        mapped.filter(
            pl.col("_known").is_not_null() & (pl.col("blocker_node") != pl.col("dependent_node"))
        )
        .select("blocker_node", "dependent_node")
        .unique()
        .sort("dependent_node", "blocker_node")
    )

    if cycles is None:
        cycles = cycle_times(
            work_items, status_changes, as_of, _flow_params(window_days, work_levels), data=d
        )
    teams = sorted(set(queue["team"].to_list()))
    daily = daily_throughput(cycles, as_of, window_days, "team", teams)
    samples = {
        team: group["items"].to_numpy().astype(np.int64)
        for (team,), group in daily.group_by("team")
        if team in set(teams)
    }
    return Plan(
        nodes=nodes,
        queue=queue,
        edges=list(graph.iter_rows()),
        unforecast=dict(unforecast.iter_rows()),
        samples=samples,
        as_of_day=as_of_date(as_of),
    )


def _flow_params(window_days: int, work_levels: Sequence[str]) -> FlowParams:
    return FlowParams(window_days=window_days, work_levels=tuple(work_levels))


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

    def index(self, node_id: str) -> int:
        return self.node_ids.index(node_id)


def topological_order(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Blockers before dependents (Kahn). When only cycles remain, the waiting node with the
    fewest unfinished blockers (then the smallest id) loses those incoming edges; they are
    returned as broken. A lazy heap keeps the victim choice O(log n), so dense graphs stay fast.
    """
    incoming: dict[str, set[str]] = {n: set() for n in nodes}
    outgoing: dict[str, set[str]] = {n: set() for n in nodes}
    for b, d in edges:
        if b in incoming and d in incoming and b != d:
            incoming[d].add(b)
            outgoing[b].add(d)
    pending = {n: len(incoming[n]) for n in nodes}
    ready = [n for n in nodes if pending[n] == 0]
    heapq.heapify(ready)
    candidates = [(pending[n], n) for n in nodes if pending[n] > 0]
    heapq.heapify(candidates)
    done: set[str] = set()
    order: list[str] = []
    broken: list[tuple[str, str]] = []
    while len(order) < len(pending):
        if not ready:
            while True:  # stale entries are skipped: pending only decreases, re-pushed on change
                count, victim = heapq.heappop(candidates)
                if victim not in done and count == pending[victim]:
                    break
            for b in sorted(incoming[victim] - done):
                broken.append((b, victim))
                outgoing[b].discard(victim)
            incoming[victim] &= done
            pending[victim] = 0
            ready.append(victim)
        node = heapq.heappop(ready)
        if node in done:
            continue
        done.add(node)
        order.append(node)
        for d in sorted(outgoing[node]):
            pending[d] -= 1
            if pending[d] == 0:
                heapq.heappush(ready, d)
            else:
                heapq.heappush(candidates, (pending[d], d))
    return order, broken


def _closure(selected: set[str], edges: Sequence[tuple[str, str]]) -> set[str]:
    """``selected`` plus every node that blocks one of them, transitively."""
    blockers_of: dict[str, set[str]] = {}
    for b, d in edges:
        blockers_of.setdefault(d, set()).add(b)
    seen = set(selected)
    stack = list(selected)
    while stack:
        for b in blockers_of.get(stack.pop(), ()):
            if b not in seen:
                seen.add(b)
                stack.append(b)
    return seen


def simulate(
    p: Plan,
    trials: int = 10_000,
    seed: int = 0,
    max_horizon_days: int = 3650,
    node_ids: Sequence[str] | None = None,
) -> Simulation:
    """Run the trials for ``node_ids`` (default: every node) and their transitive blockers."""
    all_nodes = p.nodes["node_id"].to_list()
    wanted = _closure(set(node_ids) if node_ids is not None else set(all_nodes), p.edges)
    wanted &= set(all_nodes)
    order_all, broken = topological_order(sorted(wanted), p.edges)
    index = {n: i for i, n in enumerate(order_all)}
    own = np.zeros((trials, len(order_all)), dtype=np.int32, order="F")
    queue = p.queue.filter(pl.col("node_id").is_in(list(wanted)))
    for (team,), group in queue.sort("team", "target").group_by("team", maintain_order=True):
        targets = group["target"].to_numpy().astype(np.int64)
        cols = np.array([index[n] for n in group["node_id"].to_list()], dtype=np.int64)
        cum = cumulative_paths(
            p.samples.get(team, np.zeros(0, dtype=np.int64)),
            int(targets[-1]),
            trials,
            team_rng(seed, team),
            max_horizon_days,
        )
        for lo in range(0, len(targets), TARGET_CHUNK):  # bounds memory to trials x chunk
            part = slice(lo, lo + TARGET_CHUNK)
            own[:, cols[part]] = np.maximum(
                own[:, cols[part]], crossings_sorted(cum, targets[part])
            )
    final = own.copy(order="F")
    broken_set = set(broken)
    blockers: dict[str, list[str]] = {n: [] for n in order_all}
    for b, d in p.edges:
        if b in index and d in index and (b, d) not in broken_set and b != d:
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
    return Simulation(order_all, own, final, blockers, broken, driven)


def _percentile_days(matrix: np.ndarray, q: float) -> np.ndarray:
    if matrix.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.percentile(matrix, q, axis=0, method="inverted_cdf").astype(np.int64)


def _day_to_date(day0: date, days: np.ndarray) -> list[date | None]:
    return [None if d >= NEVER else day0 + timedelta(days=int(d)) for d in days]


# --------------------------------------------------------------------------- public forecasts


EPIC_SCHEMA = {
    "epic_id": pl.String,
    "key": pl.String,
    "title": pl.String,
    "url": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "teams": pl.List(pl.String),
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
    "note": pl.String,
}


def forecast_epics(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    edges: pl.DataFrame,
    as_of: datetime,
    trials: int = 10_000,
    seed: int = 0,
    window_days: int = 90,
    *,
    epic_ids: Sequence[str] | None = None,
    max_horizon_days: int = 3650,
    work_levels: Sequence[str] = WORK_LEVELS,
    cycles: pl.DataFrame | None = None,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """When each open epic lands (P50/P85/P95 dates), dependency-aware.

    ``edges`` needs blocker_id and dependent_id (the dependency_edges frame). ``epic_ids`` limits
    the output (their blockers are simulated too); ``cycles`` (cycle_times) and ``data``
    (flow.prepare) reuse work already done on the same snapshot.
    Columns: epic_id, key, title, url, team (the epic's), organisation, teams (teams with
    remaining work), remaining_items, p50, p85, p95 (Date; null = not within max_horizon_days),
    own_p85 (ignoring blockers), target_date (the epic's due_date), p_on_time (share of trials
    finishing on or before it), driven_by (blocker node whose finish set the date in most trials;
    null when no blocker ever delayed it), driven_by_key, driven_share (share of trials it did),
    dependency_delay_days_p85 (P85 of per-trial finish - own finish), blockers (direct blocker
    nodes), unforecast_blockers (open blockers outside the warehouse or without work to forecast),
    cycle_broken (an incoming dependency was dropped to break a cycle), note.
    """
    pl_plan = plan(
        work_items, status_changes, edges, as_of, window_days, work_levels, cycles, data=data
    )
    epic_nodes = pl_plan.nodes.filter(pl.col("kind") == "epic")
    selected = (
        epic_nodes["node_id"].to_list()
        if epic_ids is None
        else [e for e in epic_ids if e in set(epic_nodes["node_id"].to_list())]
    )
    sim = simulate(pl_plan, trials, seed, max_horizon_days, selected)
    return _epic_frame(pl_plan, sim, selected, as_of)


def _epic_frame(p: Plan, sim: Simulation, selected: Sequence[str], as_of: datetime) -> pl.DataFrame:
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
    broken_targets = {d for _, d in sim.broken}
    rows: list[dict[str, Any]] = []
    trials = final.shape[0]
    for j, node in enumerate(selected):
        meta = info[node]
        target = meta["due_date"]
        p_on_time = None
        if target is not None:
            p_on_time = float((final[:, j] <= (target - day0).days).mean())
        counts = sim.driven_counts.get(node, {})
        driver = max(sorted(counts), key=lambda b: counts[b]) if counts else None
        teams = work.get(node, {}).get("team", [])
        notes = []
        for team in teams:
            if p.samples.get(team) is None or int(p.samples[team].sum()) == 0:
                notes.append(f"team {team} finished nothing in the window: no forecast possible")
        if final[:, j].max() >= NEVER and not notes:
            notes.append("some trials do not finish within the horizon")
        rows.append(
            {
                "epic_id": node,
                "key": meta["key"],
                "title": meta["title"],
                "url": meta["url"],
                "team": meta["team"],
                "organisation": meta["organisation"],
                "teams": teams,
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
                "unforecast_blockers": int(p.unforecast.get(node, 0)),
                "cycle_broken": node in broken_targets,
                "note": "; ".join(notes) or None,
            }
        )
    return pl.DataFrame(rows, schema=EPIC_SCHEMA).sort("p85", "key", nulls_last=True)


INITIATIVE_SCHEMA = {
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


def forecast_initiatives(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    edges: pl.DataFrame,
    as_of: datetime,
    trials: int = 10_000,
    seed: int = 0,
    window_days: int = 90,
    *,
    max_horizon_days: int = 3650,
    work_levels: Sequence[str] = WORK_LEVELS,
    cycles: pl.DataFrame | None = None,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """When each initiative (release / theme) lands: per trial, the latest of its open epics.

    Same simulation as forecast_epics (same seed = same trials). Columns: initiative_id, key,
    title, url, organisation, epics (open epics under it), remaining_items, p50, p85, p95,
    target_date (its due_date), p_on_time, driven_by (epic that finished last most often),
    driven_by_key, driven_share.
    """
    d = data if data is not None else prepare(work_items, status_changes, as_of, work_levels)
    items = d.items
    pl_plan = plan(
        work_items, status_changes, edges, as_of, window_days, work_levels, cycles, data=d
    )
    epic_nodes = pl_plan.nodes.filter(pl.col("kind") == "epic").select("node_id")
    under = (
        items.filter(pl.col("initiative_id").is_not_null())
        .select("item_id", "initiative_id")
        .join(epic_nodes, left_on="item_id", right_on="node_id", how="semi")
        .sort("initiative_id", "item_id")
    )
    if under.height == 0:
        return pl.DataFrame(schema=INITIATIVE_SCHEMA)
    sim = simulate(pl_plan, trials, seed, max_horizon_days, under["item_id"].unique().to_list())
    index = {n: i for i, n in enumerate(sim.node_ids)}
    remaining = dict(pl_plan.queue.group_by("node_id").agg(pl.col("remaining").sum()).iter_rows())
    meta = items.filter(pl.col("level").is_in(["initiative", "epic"])).rows_by_key(
        "item_id", named=True, unique=True
    )
    day0 = pl_plan.as_of_day
    rows = []
    for (initiative,), group in under.group_by("initiative_id", maintain_order=True):
        epics = group["item_id"].to_list()
        stack = sim.final[:, [index[e] for e in epics]]
        finish = stack.max(axis=1)
        last = np.bincount(stack.argmax(axis=1), minlength=len(epics))
        top = int(np.argmax(last))
        info = meta[initiative]
        target = info["due_date"]
        q = {p: np.percentile(finish, p, method="inverted_cdf") for p in PERCENTILES}
        rows.append(
            {
                "initiative_id": initiative,
                "key": info["key"],
                "title": info["title"],
                "url": info["url"],
                "organisation": info["organisation"],
                "epics": len(epics),
                "remaining_items": int(sum(remaining.get(e, 0) for e in epics)),
                **{f"p{p}": _day_to_date(day0, np.array([int(q[p])]))[0] for p in PERCENTILES},
                "target_date": target,
                "p_on_time": None
                if target is None
                else float((finish <= (target - day0).days).mean()),
                "driven_by": epics[top] if len(epics) > 1 else None,
                "driven_by_key": meta[epics[top]]["key"] if len(epics) > 1 else None,
                "driven_share": float(last[top] / len(finish)) if len(epics) > 1 else None,
            }
        )
    return pl.DataFrame(rows, schema=INITIATIVE_SCHEMA).sort("p85", "key", nulls_last=True)


def forecast_how_many(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    target_date: date,
    trials: int = 10_000,
    seed: int = 0,
    window_days: int = 90,
    *,
    work_levels: Sequence[str] = WORK_LEVELS,
    cycles: pl.DataFrame | None = None,
    teams: Sequence[str] | None = None,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """How many delivery items each team finishes from tomorrow up to and including target_date.

    Same per-team streams as the "when" forecast. Columns: team, target_date, days, items_p50,
    items_p85, items_p95 (with that confidence *at least* this many: the 50/15/5th percentile of
    the simulated totals), items_mean, window_days, zero_day_share (share of sampled days with
    nothing finished).
    """
    items = data.items if data is not None else live(work_items)
    if cycles is None:
        cycles = cycle_times(
            work_items, status_changes, as_of, _flow_params(window_days, work_levels), data=data
        )
    names = (
        sorted(teams)
        if teams is not None
        else sorted(items.filter(pl.col("team").is_not_null())["team"].unique().to_list())
    )
    daily = daily_throughput(cycles, as_of, window_days, "team", names)
    days = max(0, (target_date - as_of_date(as_of)).days)
    rows = []
    for (team,), group in daily.filter(pl.col("team").is_in(names)).group_by(
        "team", maintain_order=True
    ):
        samples = group["items"].to_numpy().astype(np.int64)
        total = np.zeros(trials, dtype=np.int64)
        left = days
        blocks = throughput_blocks(samples, trials, team_rng(seed, team))
        while left > 0:
            block = next(blocks)
            total += block[:, : min(left, BLOCK_DAYS)].sum(axis=1)
            left -= BLOCK_DAYS
        q = {p: int(np.percentile(total, 100 - p, method="inverted_cdf")) for p in PERCENTILES}
        rows.append(
            {
                "team": team,
                "target_date": target_date,
                "days": days,
                "items_p50": q[50],
                "items_p85": q[85],
                "items_p95": q[95],
                "items_mean": float(total.mean()),
                "window_days": window_days,
                "zero_day_share": float((samples == 0).mean()) if len(samples) else None,
            }
        )
    schema = {
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
    return pl.DataFrame(rows, schema=schema).sort("team")


# --------------------------------------------------------------------------- benchmark hook


def bench_flow_forecast(
    frames: dict[str, pl.DataFrame],
    edges: pl.DataFrame,
    as_of: datetime,
    epics: int = 100,
    trials: int = 10_000,
) -> dict[str, float]:
    """Time every flow metric, team backlog health and the forecasts on ``frames``.

    Returns seconds per step (plus ``total``); the forecast covers the first ``epics`` open epics
    in (rank, key) order with ``trials`` trials. Used by bench/analytics_bench.py.
    """
    from warehouse.model import SCHEMAS
    from warehouse.transforms import flow
    from warehouse.transforms.backlog import backlog_health

    items, changes = frames["work_items"], frames["status_changes"]
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        return result

    data = timed("prepare", flow.prepare, items, changes, as_of)
    cycles = timed("cycle_times", flow.cycle_times, items, changes, as_of, data=data)
    timed("throughput", flow.throughput, cycles, as_of)
    wip = timed("wip_daily", flow.wip_daily, items, changes, as_of, data=data)
    timed("cumulative_flow", flow.cumulative_flow, items, changes, as_of, data=data)
    timed("aging_wip", flow.aging_wip, items, changes, cycles, as_of, data=data)
    timed("flow_efficiency", flow.flow_efficiency, items, changes, cycles, as_of, data=data)
    timed("flow_distribution", flow.flow_distribution, cycles, as_of)
    timed("littles_law", flow.littles_law, wip, cycles, as_of)
    sprints = frames.get("sprints", pl.DataFrame(schema=SCHEMAS["sprints"]))
    timed("backlog_health", backlog_health, items, sprints, changes, edges, as_of, data=data)
    chosen = (
        data.items.filter((pl.col("level") == "epic") & (pl.col("status_category") != "done"))
        .sort("rank", "key", nulls_last=True)
        .head(epics)["item_id"]
        .to_list()
    )
    timed(
        "forecast_epics",
        forecast_epics,
        items,
        changes,
        edges,
        as_of,
        trials,
        0,
        epic_ids=chosen,
        cycles=cycles,
        data=data,
    )
    timed(
        "forecast_how_many",
        forecast_how_many,
        items,
        changes,
        as_of,
        as_of_date(as_of) + timedelta(days=42),
        trials,
        cycles=cycles,
        data=data,
    )
    timings["total"] = sum(timings.values())
    return timings
