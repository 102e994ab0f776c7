"""Lake benchmark: sync workers side by side on the lake vs one after another on the DuckDB file.

Three figures, each a ratio measured in the same run (``BENCH <name> <value> <unit>``):

1. **Workers.** N sources (N = 2), each behind its own simulated tracker process (20 ms per
   request, as in bench/sync_bench.py: real trackers are remote). The file: ``pmolens sync
   --source S --full`` for each source, one after the other (one writer). The lake: the same
   commands as N worker processes at once. ``lake_sync_speedup`` = file time / lake time (target
   >= 0.8 x N). The same sources one after another on a fresh lake split the rest: the lake's own
   cost per run (``lake_sync_lake_vs_file_one_after_another``) and what side by side gains on
   the lake (``lake_sync_side_by_side_gain_on_the_lake``). With one core per worker and nothing
   shared, the ceiling is the sum of the sources' own times over the longest one
   (``lake_sync_speedup_one_core_per_worker``); ``lake_sync_cpu_busy`` says how much of this
   machine's cores the workers used (near 1: the cores, not the lake, set the speedup).
   ``lake_sync_trackers_cpu_busy``: the same for the simulated trackers, which share this
   machine's cores (real trackers are remote). ``lake_sync_side_by_side_refreshes_written``: how
   many results refreshes the side-by-side workers wrote (1 when their commits landed close
   enough together to share one). ``--rounds K`` adds K - 1 more pairs (a fresh file one after
   another, then a fresh lake side by side) and prints the median speedup of all K pairs: the
   load of a shared machine drifts between the parts of one pair less than across the run.
2. **Readers while workers commit.** ``pmolens serve --no-scheduler`` on the lake, two client
   threads asking ``/portfolio`` and pages of ``/work-items``: p95 at rest, then p95 while the N
   workers sync and commit again.
3. **Results refresh at 100,000 items** (bench/synthetic.py frames committed per source): the
   refresh of every analysis on the lake vs on the file (target lake <= 1.5 x file).

PostgreSQL: a throwaway cluster from Debian's binaries (tests/lake/conftest.py's start_server), or
``--catalog "host=... dbname=... user=..."`` with the password in PMOLENS_LAKE_PASSWORD. Without
the lake kind or PostgreSQL the script says "not available" and exits 0.

    python bench/lake_bench.py            # 20,000 items per source, refresh at 100,000
    python bench/lake_bench.py --quick    # 3,000 items per source, refresh at 10,000
    python bench/lake_bench.py --rounds 3 --skip refresh   # 3 file / lake pairs, their median
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD_ENV = "PMOLENS_LAKE_PASSWORD"
SOURCES = ("northwind-jira", "fabrikam-jira-dc")  # N = 2: one tracker process each
TENANT = {"northwind-jira": "northwind", "fabrikam-jira-dc": "fabrikam"}


def bench(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.3f} {unit}", flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ availability


def lake_kind_missing() -> str | None:
    """Why the lake kind cannot be used here; None when it can."""
    try:
        from pmolens.warehouse.config import ConfigError, settings_from_dict
        from pmolens.warehouse.lake import extension_directory
    except ImportError as exc:
        return f"the lake kind is not in this pmolens ({exc})"
    try:
        settings_from_dict(
            {
                "warehouse": {
                    "kind": "ducklake",
                    "catalog": "host=127.0.0.1 dbname=pmolens user=pmolens",
                    "password_env": PASSWORD_ENV,
                    "data_path": "lake",
                }
            }
        )
        extension_directory()
    except ConfigError as exc:
        return f'[warehouse] kind = "ducklake" is not accepted: {exc}'
    except Exception as exc:
        return str(exc)
    return None


class Catalog:
    """Where lakes go: fresh databases on a throwaway cluster, or one given database."""

    def __init__(self, given: str | None) -> None:
        self.server: Any = None
        self.given = given
        self.made = 0

    def start(self) -> str | None:
        """None when ready, else why PostgreSQL is not available."""
        if self.given:
            if not os.environ.get(PASSWORD_ENV):
                return f"--catalog needs the password in {PASSWORD_ENV}"
            return None
        from tests.lake.conftest import PostgresUnavailable, start_server

        try:
            self.server = start_server()
        except PostgresUnavailable as exc:
            return str(exc)
        os.environ[PASSWORD_ENV] = self.server.password
        return None

    def fresh(self) -> str:
        """A libpq string for an empty lake catalog (with --catalog: the given one, reused)."""
        if self.given:
            self.made += 1
            if self.made > 1:
                say("note: --catalog is reused; each part of the bench needs an empty one")
            return self.given
        return str(self.server.create_database().libpq)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            shutil.rmtree(self.server.root, ignore_errors=True)


# ------------------------------------------------------------------------------ configs


def chain_settings(urls: dict[str, str], warehouse: dict[str, Any], port: int) -> dict[str, Any]:
    """The demo's sources (each pointed at its own tracker process) on the given warehouse."""
    from pmolens.simulator import demo_settings

    data = demo_settings("http://127.0.0.1:1")
    data["sources"] = [
        dict(s, base_url=f"{urls[s['name']]}/{TENANT[s['name']]}")
        for s in data["sources"]
        if s["name"] in urls
    ]
    names = {s["organisation"] for s in data["sources"]}
    data["organisations"] = [o for o in data["organisations"] if o["name"] in names]
    data["warehouse"] = warehouse
    data["server"] = {"host": "127.0.0.1", "port": port, "auth": "none"}
    return data


def lake_warehouse(catalog: str, data_path: Path) -> dict[str, Any]:
    return {
        "kind": "ducklake",
        "catalog": catalog,
        "password_env": PASSWORD_ENV,
        "data_path": str(data_path),
    }


def write(data: dict[str, Any], path: Path) -> Path:
    from pmolens.api.demo import write_config

    write_config(data, path)
    return path


def open_once(config: Path) -> None:
    """Create the warehouse's schema before anything is timed (both kinds alike)."""
    from pmolens.warehouse.config import load_settings
    from pmolens.warehouse.store import Warehouse

    settings = load_settings(config)
    with Warehouse.open(settings) as warehouse:
        warehouse.register_config(settings)


# ------------------------------------------------------------------------------ trackers


def start_tracker(tenant: str, size: int, latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pmolens.simulator", "--port", str(port)),
            *("--size", str(size), "--latency-ms", str(latency_ms), "--tenants", tenant),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/_sim/stats", timeout=2).status_code == 200:
                httpx.post(f"{url}/_sim/warm", timeout=300)  # render answers before timing
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"simulator for {tenant} did not start")


# ------------------------------------------------------------------------------ workers


def trackers_cpu(trackers: list[subprocess.Popen]) -> float:
    """CPU seconds the simulated tracker processes used so far (0 where /proc is missing)."""
    total = 0.0
    for proc in trackers:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def sync_commands(config: Path, sources: tuple[str, ...]) -> list[list[str]]:
    pmolens = str(Path(sys.executable).with_name("pmolens"))
    return [[pmolens, "sync", "--config", str(config), "--source", s, "--full"] for s in sources]


def refreshes_written(config: Path) -> int:
    """How many results refreshes were written into a lake: one row set of headline figures per
    refreshed generation (``metric_snapshots``)."""
    from pmolens.warehouse.config import load_settings
    from pmolens.warehouse.store import Warehouse

    with Warehouse.open(load_settings(config), read_only=True) as warehouse:
        return int(
            warehouse.query("SELECT count(DISTINCT generation) AS n FROM metric_snapshots")["n"][0]
        )


def run_one(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return time.perf_counter() - started


def run_side_by_side(commands: list[list[str]]) -> tuple[float, list[float]]:
    """All commands at once; (wall seconds, each command's own seconds)."""
    times: list[float] = [0.0] * len(commands)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            times[i] = run_one(commands[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(commands))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started, times


# ------------------------------------------------------------------------------ readers


class Readers:
    """Client threads asking /portfolio and /work-items pages; latencies per route."""

    def __init__(self, url: str, threads: int = 2) -> None:
        self.url = url
        self.threads = threads
        self.samples: dict[str, list[float]] = {"/portfolio": [], "/work-items": []}
        self.failures = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                for route in ("/portfolio", "/work-items"):
                    params = (
                        {"limit": 100, "offset": rng.randrange(0, 1000)}
                        if route == "/work-items"
                        else {}
                    )
                    started = time.perf_counter()
                    try:
                        ok = client.get(route, params=params).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    elapsed = (time.perf_counter() - started) * 1000
                    if ok:
                        self.samples[route].append(elapsed)
                    else:
                        self.failures += 1

    def __enter__(self) -> Readers:
        self._workers = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(self.threads)
        ]
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=120)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else float("nan")


def start_replica(config: Path, port: int) -> subprocess.Popen:
    pmolens = str(Path(sys.executable).with_name("pmolens"))
    proc = subprocess.Popen(
        [pmolens, "serve", "--no-scheduler", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("pmolens serve --no-scheduler exited at start")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("pmolens serve --no-scheduler did not answer")


# ------------------------------------------------------------------------------ refresh


def timed_refresh(settings: Any, frames: dict[str, Any]) -> float:
    """Commit the synthetic frames per source, then time one refresh of every analysis."""
    from bench.synthetic import commit_per_source
    from pmolens.pipeline.refresh import refresh
    from pmolens.warehouse.store import Warehouse

    with Warehouse.open(settings) as wh:
        wh.register_config(settings)
        commit_per_source(wh, frames)
        started = time.perf_counter()
        refresh(wh, settings)
        return time.perf_counter() - started


def synthetic_settings(frames: dict[str, Any], warehouse: dict[str, Any]) -> Any:
    from bench.synthetic import source_configs
    from pmolens.warehouse.config import settings_from_dict

    return settings_from_dict(
        {
            "warehouse": warehouse,
            "organisations": [
                {"name": r["organisation"]} for r in frames["organisations"].iter_rows(named=True)
            ],
            "sources": source_configs(frames, "PMOLENS_BENCH_TOKEN"),
        }
    )


# ------------------------------------------------------------------------------ main


def measure_workers(
    tmp: Path,
    catalog: Catalog,
    items: int,
    latency_ms: float,
    read_seconds: float,
    rounds: int = 1,
) -> None:
    from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV

    os.environ[TOKEN_ENV] = DEMO_TOKEN
    trackers: list[subprocess.Popen] = []
    replica: subprocess.Popen | None = None
    try:
        urls = {}
        for source in SOURCES:
            proc, url = start_tracker(TENANT[source], items, latency_ms)
            trackers.append(proc)
            urls[source] = url
        port = free_port()
        file_config = write(
            chain_settings(urls, {"path": str(tmp / "file.duckdb")}, port), tmp / "file.toml"
        )
        lake_configs = [
            write(
                chain_settings(urls, lake_warehouse(catalog.fresh(), tmp / f"lake{i}"), port),
                tmp / f"lake{i}.toml",
            )
            for i in (1, 2)
        ]
        for config in [file_config, *lake_configs]:
            open_once(config)
        n = len(SOURCES)
        bench("lake_workers", n, "workers")
        bench("lake_items_per_source", items, "items")
        bench("lake_tracker_latency", latency_ms, "ms")

        own = [run_one(c) for c in sync_commands(file_config, SOURCES)]
        file_s = sum(own)
        lake_one_by_one = sum(run_one(c) for c in sync_commands(lake_configs[0], SOURCES))
        lake_config = lake_configs[1]
        cpu_before, trackers_before = children_cpu(), trackers_cpu(trackers)
        lake_s, lake_each = run_side_by_side(sync_commands(lake_config, SOURCES))
        cpu_used = children_cpu() - cpu_before
        trackers_used = trackers_cpu(trackers) - trackers_before
        cores = os.cpu_count() or 1
        bench("lake_sync_file_one_after_another", file_s, "s")
        bench("lake_sync_lake_one_after_another", lake_one_by_one, "s")
        bench("lake_sync_lake_side_by_side", lake_s, "s")
        for source, seconds in zip(SOURCES, lake_each, strict=True):
            bench(f"lake_sync_worker_{source}", seconds, "s")
        # side-by-side commits share one refresh when they land close together (at most N)
        bench("lake_sync_side_by_side_refreshes_written", refreshes_written(lake_config), "")
        bench("lake_sync_speedup", file_s / lake_s, "x")
        bench("lake_sync_speedup_target", 0.8 * n, "x")
        # where the rest goes: the lake's own cost per run, and what running side by side gains
        bench("lake_sync_lake_vs_file_one_after_another", lake_one_by_one / file_s, "x")
        bench("lake_sync_side_by_side_gain_on_the_lake", lake_one_by_one / lake_s, "x")
        bench("lake_sync_speedup_one_core_per_worker", file_s / max(own), "x")
        bench("lake_sync_cpu_busy", cpu_used / (lake_s * cores), f"of {cores} cores")
        # the simulated trackers run on the same cores (real ones are elsewhere)
        bench("lake_sync_trackers_cpu_busy", trackers_used / (lake_s * cores), f"of {cores} cores")
        if rounds > 1:
            # more pairs, each a fresh file one after another then a fresh lake side by side:
            # on a shared machine the load drifts, so the median of the pairs says more
            ratios = [file_s / lake_s]
            for r in range(2, rounds + 1):
                pair = [
                    write(chain_settings(urls, warehouse, port), tmp / f"round{r}-{kind}.toml")
                    for kind, warehouse in (
                        ("file", {"path": str(tmp / f"round{r}.duckdb")}),
                        ("lake", lake_warehouse(catalog.fresh(), tmp / f"round{r}-lake")),
                    )
                ]
                for config in pair:
                    open_once(config)
                one_after_another = sum(run_one(c) for c in sync_commands(pair[0], SOURCES))
                side_by_side, _ = run_side_by_side(sync_commands(pair[1], SOURCES))
                ratios.append(one_after_another / side_by_side)
                bench(f"lake_sync_round_{r}_file_one_after_another", one_after_another, "s")
                bench(f"lake_sync_round_{r}_lake_side_by_side", side_by_side, "s")
                bench(f"lake_sync_round_{r}_speedup", ratios[-1], "x")
                bench(f"lake_sync_round_{r}_load_average_1min", os.getloadavg()[0], "")
            bench("lake_sync_speedup_median_of_rounds", statistics.median(ratios), "x")

        replica = start_replica(lake_config, port)
        url = f"http://127.0.0.1:{port}"
        with Readers(url) as idle:
            time.sleep(read_seconds)
        with Readers(url) as busy:
            lake_s2, _ = run_side_by_side(sync_commands(lake_config, SOURCES))
        for route, name in (("/portfolio", "portfolio"), ("/work-items", "work_items")):
            bench(f"lake_read_{name}_p95_at_rest", p95(idle.samples[route]), "ms")
            bench(f"lake_read_{name}_p95_while_committing", p95(busy.samples[route]), "ms")
            bench(f"lake_read_{name}_requests_while_committing", len(busy.samples[route]), "")
        bench("lake_read_failures_while_committing", busy.failures, "")
        bench("lake_sync_side_by_side_under_reads", lake_s2, "s")
    finally:
        if replica is not None:
            replica.terminate()
            replica.wait(timeout=30)
        for proc in trackers:
            proc.kill()
            proc.wait()


def measure_refresh(tmp: Path, catalog: Catalog, items: int) -> None:
    from bench.synthetic import generate

    os.environ.setdefault("PMOLENS_BENCH_TOKEN", "unused")
    frames = generate(items, n_orgs=3, n_teams=30)
    bench("lake_refresh_items", items, "items")
    file_s = timed_refresh(
        synthetic_settings(frames, {"path": str(tmp / "refresh.duckdb")}), frames
    )
    lake = lake_warehouse(catalog.fresh(), tmp / "refresh-lake")
    lake_s = timed_refresh(synthetic_settings(frames, lake), frames)
    bench("lake_refresh_file", file_s, "s")
    bench("lake_refresh_lake", lake_s, "s")
    bench("lake_refresh_lake_vs_file", lake_s / file_s, "x")
    bench("lake_refresh_target", 1.5, "x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None, help="work items per source")
    parser.add_argument("--refresh-items", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--read-seconds", type=float, default=None)
    parser.add_argument("--catalog", default=None, help="libpq string of an empty database")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="file / lake side-by-side pairs, one after the other (the median speedup of them)",
    )
    parser.add_argument("--skip", choices=["workers", "refresh"], action="append", default=[])
    args = parser.parse_args(argv)
    missing = lake_kind_missing()
    if missing:
        say(f"lake benchmark not available: {missing}")
        return 0
    catalog = Catalog(args.catalog)
    reason = catalog.start()
    if reason:
        say(f"lake benchmark not available: {reason}")
        return 0
    items = args.items or (3_000 if args.quick else 20_000)
    refresh_items = args.refresh_items or (10_000 if args.quick else 100_000)
    read_seconds = args.read_seconds or (3.0 if args.quick else 10.0)
    bench("load_average_1min_at_start", os.getloadavg()[0], "")
    tmp = Path(tempfile.mkdtemp(prefix="pmolens-lake-bench-"))
    parts: list[tuple[str, Callable[[], None]]] = [
        (
            "workers",
            lambda: measure_workers(
                tmp, catalog, items, args.latency_ms, read_seconds, max(1, args.rounds)
            ),
        ),
        ("refresh", lambda: measure_refresh(tmp, catalog, refresh_items)),
    ]
    try:
        for name, part in parts:
            if name not in args.skip:
                part()
    finally:
        catalog.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        bench("load_average_1min_at_end", os.getloadavg()[0], "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
