"""Benchmark of every dependency transform on synthetic data (default 1M items, 2M links).

Part of bench/analytics_bench.py (which calls ``run``); on its own:

    .venv/bin/python -m bench.dependencies_bench [n_items]

``run(frames)`` times each step (seconds) the way the analyses chain them after a sync (the edges
and the condensed waiting graph are computed once and shared). The __main__ prints the times,
the total, and peak RSS. Target: < 10 s total and < 4 GiB on 2 cores.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import polars as pl

from pmolens.warehouse.transforms import dependencies as D


def run(
    frames: dict[str, pl.DataFrame],
    edges: pl.DataFrame | None = None,
    as_of: Any = None,
    keep_edges: bool = False,
) -> Any:
    """Seconds per dependency step; ``edges`` reuses precomputed dependency_edges.
    ``keep_edges``: return (times, edges), so bench/analytics_bench.py reuses them."""
    from bench.synthetic import AS_OF

    as_of = as_of or AS_OF
    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - start
        return out

    e = edges if edges is not None else timed("edges", lambda: D.dependency_edges(frames, as_of))
    timed("matrix_team", lambda: D.dependency_matrix(e, "team"))
    timed("matrix_org", lambda: D.dependency_matrix(e, "organisation"))
    timed("conflicts", lambda: D.dependency_conflicts(e))
    cond = timed("graph_scc_levels", lambda: D.condense(D.waiting_graph(e)))
    cycles = timed("cycles", lambda: D.dependency_cycles(e, cond))
    timed("chains", lambda: D.dependency_chains(e, as_of, cond))
    timed("bottlenecks", lambda: D.dependency_bottlenecks(e, D.DependencyParams(), cond))
    timed(
        "blocked_time",
        lambda: D.blocked_time(
            frames["work_items"],
            frames["status_changes"],
            e["dependent_id"].drop_nulls().unique(),
            as_of,
        ),
    )
    timed("scrum_of_scrums", lambda: D.scrum_of_scrums(frames["work_items"], e))
    timed("trend", lambda: D.trend_snapshot(e, cycles))
    times["total"] = sum(times.values())
    return (times, e) if keep_edges else times


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # KiB -> MiB
    return float("nan")


def main(n_items: int = 1_000_000) -> None:
    from bench.synthetic import generate

    start = time.perf_counter()
    frames = generate(n_items)
    gen = time.perf_counter() - start
    print(
        f"generated {frames['work_items'].height:,} items, {frames['links'].height:,} links, "
        f"{frames['status_changes'].height:,} status changes in {gen:.1f} s "
        f"(RSS {_rss_mb():,.0f} MiB; polars threads {pl.thread_pool_size()}, cpus "
        f"{os.cpu_count()})"
    )
    times = run(frames)
    for name, seconds in times.items():
        print(f"{name:>18}: {seconds:7.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(f"{'peak RSS':>18}: {peak:7.0f} MiB (generation included)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
