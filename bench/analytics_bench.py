"""Analytics at scale: every dependency transform, every alignment rule plus the impediment
backlog, and then every registered analysis, on synthetic data generated here (bench/synthetic.py:
1,000,000 items, 2,000,000 links, ~5,000,000 status changes; ``--quick``: 100,000 items).

    python bench/analytics_bench.py [--quick] [--items N]

Three phases, each timed (wall seconds) with its own peak RSS (sampled every 10 ms, the
generated frames included):

1. dependencies: bench/dependencies_bench.py ``run`` (edges, matrices, conflicts, SCC, cycles,
   chains, bottlenecks, blocked time, Scrum of Scrums, trend). Target < 10 s, < 4 GiB.
2. alignment: bench/alignment_bench.py ``run`` (rule context, every rule, lifecycle, scores,
   impediments) on phase 1's edges. Target: phases 1 + 2 < 10 s.
3. all analyses: ``warehouse.results.compute`` over every name in ``ANALYSES`` (whatever is
   registered, in registration order, sharing intermediates as after a sync) plus the per-sync
   snapshots, printed per analysis sorted by time. Target < 15 s, < 4 GiB. An analysis's time
   includes the shared intermediates it is the first to need (edges, flow data, ...).
4. real refresh (``--no-refresh`` skips it, ``--refresh-only`` skips phases 1-3): the same frames
   committed to a DuckDB warehouse file (one successful sync run), then what a user waits for
   after a sync, ``pipeline.refresh.refresh``: read the frames, compute every analysis and the
   snapshots, write the result tables (one transaction). Printed per step with the process's
   peak RSS in GiB (getrusage maxrss; on its own, run ``--refresh-only``). Target (issue 16)
   < 10 s, < 3 GiB.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

GB = 1024**3  # bytes in a GiB (every figure printed is GiB)
TARGET_DEPENDENCIES_S = 10.0
TARGET_WITH_ALIGNMENT_S = 10.0
TARGET_ALL_S = 15.0
TARGET_RSS_GB = 4.0
TARGET_REFRESH_S = 10.0  # the real post-sync refresh (issue 16)
TARGET_REFRESH_RSS_GB = 3.0


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Peak resident memory while a phase runs: a thread samples /proc every 10 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(0.01)

    @contextmanager
    def watch(self) -> Iterator[PeakRss]:
        self.peak = rss_bytes()
        self._stop.clear()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, rss_bytes())


def verdict(value: float, target: float) -> str:
    return f"{value / target:5.2f}x of target {target:g} -> {'MET' if value < target else 'MISSED'}"


def phase(name: str, fn: Callable[[], Any]) -> tuple[Any, float, int]:
    gc.collect()
    with PeakRss().watch() as mem:
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU seconds (all threads) next to wall: on a shared machine wall time includes waiting
    print(f"\n== {name}: {seconds:.2f} s ({cpu:.2f} CPU s), peak RSS {mem.peak / GB:.2f} GiB")
    return out, seconds, mem.peak


def print_steps(times: dict[str, float], skip: tuple[str, ...] = ()) -> None:
    for name, value in times.items():
        if name not in skip:
            print(f"  {name:<40} {value:8.2f} s")


def all_analyses(frames: dict[str, pl.DataFrame], as_of: Any) -> dict[str, float]:
    """Seconds per registered analysis (as ``results.compute`` runs them), then snapshots."""
    from pmolens.warehouse.analyses import ANALYSES, SNAPSHOTS, Inputs
    from pmolens.warehouse.config import Settings

    inputs = Inputs(frames, Settings(), as_of)
    times: dict[str, float] = {}
    for name, fn in ANALYSES.items():
        start = time.perf_counter()
        fn(inputs)
        times[name] = time.perf_counter() - start
    start = time.perf_counter()
    for snap in SNAPSHOTS:
        snap(inputs)
    times["(per-sync snapshots)"] = time.perf_counter() - start
    return times


def committed_warehouse(frames: dict[str, pl.DataFrame], path: Path) -> Any:
    """A DuckDB warehouse holding ``frames`` as one successful full sync committed them."""
    from pmolens.warehouse.store import Warehouse

    warehouse = Warehouse(path)
    with warehouse.transaction() as con:
        for name in ("work_items", "links", "sprints", "status_changes"):
            frame = frames[name]
            if name == "work_items":
                frame = frame.with_columns(pl.lit(False).alias("is_deleted"))
            con.register("frame", frame.to_arrow())
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
            con.unregister("frame")
        for name in ("teams", "organisations", "sources"):
            con.register("frame", frames[name].to_arrow())
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
            con.unregister("frame")
        con.execute(
            "INSERT INTO sync_runs (run_id, source, mode, started, finished, outcome) "
            "VALUES (1, 'bench', 'full', now(), now(), 'success')"
        )
    return warehouse


def real_refresh(frames: dict[str, pl.DataFrame], as_of: Any) -> dict[str, float]:
    """Seconds per step of ``pipeline.refresh.refresh`` on a committed warehouse file."""
    import tempfile

    from pmolens.pipeline.refresh import refresh
    from pmolens.warehouse.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        warehouse = committed_warehouse(frames, Path(tmp) / "bench.duckdb")
        print(f"  (warehouse committed in {time.perf_counter() - start:.1f} s, not timed below)")
        try:
            gc.collect()
            times: dict[str, float] = {}
            start = time.perf_counter()
            refresh(warehouse, Settings(), as_of, timings=times)
            times["total"] = time.perf_counter() - start
            rows = warehouse.query("SELECT count(*) AS n, sum(rows) AS r FROM results")
            print(f"  ({rows['n'][0]} result tables, {rows['r'][0]:,} rows written)")
        finally:
            warehouse.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 items")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--no-refresh", action="store_true", help="skip phase 4 (real refresh)")
    parser.add_argument("--refresh-only", action="store_true", help="phase 4 only")
    args = parser.parse_args()
    n_items = args.items or (100_000 if args.quick else 1_000_000)

    from bench import alignment_bench, dependencies_bench
    from bench.synthetic import AS_OF, generate

    start = time.perf_counter()
    frames = generate(n_items)
    print(
        f"generated {frames['work_items'].height:,} items, {frames['links'].height:,} links, "
        f"{frames['status_changes'].height:,} status changes in "
        f"{time.perf_counter() - start:.1f} s (RSS {rss_bytes() / GB:.2f} GiB; polars threads "
        f"{pl.thread_pool_size()}, cpus {os.cpu_count()})"
    )

    if args.refresh_only:
        refresh_phase(frames, n_items)
        return
    kept: dict[str, pl.DataFrame] = {}

    def dependencies() -> dict[str, float]:
        times, kept["edges"] = dependencies_bench.run(frames, keep_edges=True)
        return dict(times)

    dep_times, dep_s, dep_rss = phase("1. dependency transforms", dependencies)
    print_steps(dep_times, skip=("total",))
    al_times, al_s, al_rss = phase(
        "2. alignment rules + impediments",
        lambda: alignment_bench.run(frames, kept.pop("edges"), AS_OF),
    )
    print_steps(al_times, skip=("alignment_total", "alignment_findings"))
    print(f"  ({al_times['alignment_findings']:,.0f} findings)")
    an_times, an_s, an_rss = phase(
        "3. all registered analyses", lambda: all_analyses(frames, AS_OF)
    )
    for name, seconds in sorted(an_times.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<40} {seconds:8.2f} s")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    load = os.getloadavg()[0]
    print(f"\n== summary at {n_items:,} items (targets, for 1,000,000 items: issues 5, 6, 7)")
    print(f"  load average {load:.1f} on {os.cpu_count()} cpus (wall times include waiting)")
    print(f"  dependencies            {dep_s:6.2f} s  {verdict(dep_s, TARGET_DEPENDENCIES_S)}")
    print(
        f"  dependencies peak RSS   {dep_rss / GB:6.2f} GiB {verdict(dep_rss / GB, TARGET_RSS_GB)}"
    )
    both = dep_s + al_s
    print(f"  deps + alignment        {both:6.2f} s  {verdict(both, TARGET_WITH_ALIGNMENT_S)}")
    both_rss = max(dep_rss, al_rss) / GB
    print(f"  deps + alignment RSS    {both_rss:6.2f} GiB {verdict(both_rss, TARGET_RSS_GB)}")
    print(f"  all analyses            {an_s:6.2f} s  {verdict(an_s, TARGET_ALL_S)}")
    print(f"  all analyses peak RSS   {an_rss / GB:6.2f} GiB {verdict(an_rss / GB, TARGET_RSS_GB)}")
    print(f"  process peak RSS        {peak / GB:6.2f} GiB (generation included)")
    if not args.no_refresh:
        refresh_phase(frames, n_items)


def refresh_phase(frames: dict[str, pl.DataFrame], n_items: int) -> None:
    from bench.synthetic import AS_OF

    times, _, rss = phase(
        "4. real refresh (read, compute, write)", lambda: real_refresh(frames, AS_OF)
    )
    print_steps(times, skip=("total",))
    seconds = times["total"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    load = os.getloadavg()[0]
    print(
        f"\n== real refresh at {n_items:,} items, load average {load:.1f} on {os.cpu_count()} cpus"
    )
    print(f"  refresh                 {seconds:6.2f} s  {verdict(seconds, TARGET_REFRESH_S)}")
    rss_gib = rss / GB
    print(f"  refresh peak RSS        {rss_gib:6.2f} GiB {verdict(rss_gib, TARGET_REFRESH_RSS_GB)}")
    print(
        f"  process peak RSS        {peak / GB:6.2f} GiB (maxrss: generation and commit included)"
    )


if __name__ == "__main__":
    main()
