"""Sync benchmark: pmolens' connectors against a naive baseline, in one run, over loopback HTTP.

The simulator runs in a second process with a fixed latency per request (default 20 ms), so the
figures measure request patterns, not CPU contention. Printed as ``BENCH <name> <value> <unit>``.

- Jira Cloud: full sync of N issues (ids by search/jql, then issue and changelog bulkfetch, many in
  flight) versus the common SDK path (sequential search pages with fields + one changelog call per
  issue). The baseline runs on a slice of the issues and is compared in items/s.
- Incremental: 1 % of issues changed (plus a few deletes and moves), time as a share of the full.
- Azure DevOps: full sync (windowed WIQL + concurrent workitemsbatch + the revisions feed read in
  time slices) versus the same connector with one request in flight (sequential batches), and
  versus the common SDK path (sequential batches + one /updates call per item, on a slice).
  The simulator renders its answers before the timing starts (``/_sim/warm``). The client's own
  CPU time is printed: concurrency hides latency, not parsing, mapping and committing.

    python bench/sync_bench.py            # 50,000 items per tracker, 20 ms per request
    python bench/sync_bench.py --quick    # 5,000 items
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pmolens.connectors.http import TrackerClient, basic_auth  # noqa: E402
from pmolens.pipeline.sync import sync_source  # noqa: E402
from pmolens.simulator import DEMO_TOKEN, demo_settings  # noqa: E402
from pmolens.warehouse.config import settings_from_dict  # noqa: E402
from pmolens.warehouse.store import Warehouse  # noqa: E402


def bench(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.3f} {unit}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(size: int, latency_ms: float, tenant: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pmolens.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--size",
            str(size),
            "--latency-ms",
            str(latency_ms),
            "--tenants",
            tenant,
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/_sim/stats", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("simulator did not start")


def source_settings(url: str, name: str, warehouse: Path, concurrency: int = 16):
    data = demo_settings(url)
    data["sources"] = [
        dict(s, concurrency=concurrency) for s in data["sources"] if s["name"] == name
    ]
    data["warehouse"] = {"path": str(warehouse)}
    return settings_from_dict(data)


LAST_CPU = [0.0]  # CPU seconds (all threads of this process) of the last timed_sync


async def timed_sync(settings, *, full: bool, concurrency: int | None = None) -> tuple[float, int]:
    config = settings.sources[0]
    if concurrency is not None:
        config = config.model_copy(update={"concurrency": concurrency})
    with Warehouse(settings.warehouse_path) as wh:
        wh.register_config(settings)
        started, cpu = time.perf_counter(), time.process_time()
        result = await sync_source(wh, settings, config, full=full)
        LAST_CPU[0] = time.process_time() - cpu
        return time.perf_counter() - started, result.items


async def naive_ado(url: str, limit: int) -> tuple[float, int]:
    """The common SDK path for Azure DevOps: one WIQL, then workitemsbatch one chunk after the
    other, and the history of each item from its own /updates call."""
    client = TrackerClient(f"{url}/contoso", basic_auth("", DEMO_TOKEN), concurrency=1)
    version = {"api-version": "7.1"}
    started = time.perf_counter()
    seen = 0
    async with client:
        query = "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"
        listing = await client.post(
            "/Delivery/_apis/wit/wiql", json={"query": query}, params={**version, "$top": limit}
        )
        ids = [int(w["id"]) for w in listing["workItems"]][:limit]
        for offset in range(0, len(ids), 200):
            chunk = ids[offset : offset + 200]
            body = {"ids": chunk, "$expand": "relations", "errorPolicy": "omit"}
            await client.post("/_apis/wit/workitemsbatch", json=body, params=version)
            for work_item in chunk:
                skip = 0
                while True:
                    page = await client.get(
                        f"/Delivery/_apis/wit/workItems/{work_item}/updates",
                        params={**version, "$top": 200, "$skip": skip},
                    )
                    skip += len(page["value"])
                    if len(page["value"]) < 200:
                        break
                seen += 1
    return time.perf_counter() - started, seen


async def naive_jira(url: str, limit: int) -> tuple[float, int]:
    """The common SDK path: sequential search pages with fields, then one changelog call each."""
    auth = basic_auth("pmo@northwind.example", DEMO_TOKEN)
    client = TrackerClient(f"{url}/northwind", auth, concurrency=1)
    started = time.perf_counter()
    token, seen = None, 0
    async with client:
        while seen < limit:
            body = {
                "jql": "project = NW ORDER BY created ASC",
                "maxResults": 100,
                "fields": ["summary", "status", "issuetype", "updated", "issuelinks", "parent"],
            }
            if token:
                body["nextPageToken"] = token
            page = await client.post("/rest/api/3/search/jql", json=body)
            for issue in page["issues"]:
                start = 0
                while True:
                    log = await client.get(
                        f"/rest/api/3/issue/{issue['id']}/changelog",
                        params={"startAt": start, "maxResults": 100},
                    )
                    start += len(log.get("values") or [])
                    if log.get("isLast", True) or not log.get("values"):
                        break
                seen += 1
            token = page.get("nextPageToken")
            if not token:
                break
    return time.perf_counter() - started, seen


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    items = args.items or (5_000 if args.quick else 50_000)
    naive_slice = min(items, 1_000 if args.quick else 2_500)
    os.environ["PMOLENS_DEMO_TOKEN"] = DEMO_TOKEN
    # the figures are only comparable on an otherwise idle machine: say how busy it was
    bench("load_average_1min_at_start", os.getloadavg()[0], "")
    tmp = Path(tempfile.mkdtemp(prefix="pmolens-bench-"))

    proc, url = start_simulator(items, args.latency_ms, "northwind")
    try:
        settings = source_settings(url, "northwind-jira", tmp / "jira.duckdb")
        full_s, full_n = asyncio.run(timed_sync(settings, full=True))
        bench("jira_full_items", full_n, "items")
        bench("jira_full_seconds", full_s, "s")
        bench("jira_full_items_per_s", full_n / full_s, "items/s")
        naive_s, naive_n = asyncio.run(naive_jira(url, naive_slice))
        bench("jira_naive_items_per_s", naive_n / naive_s, "items/s")
        bench("sync_full_vs_naive_ratio", (full_n / full_s) / (naive_n / naive_s), "x")
        httpx.post(f"{url}/_sim/mutate", json={"fraction": 0.01, "seed": 3}, timeout=60)
        inc_s, inc_n = asyncio.run(timed_sync(settings, full=False))
        bench("jira_incremental_items", inc_n, "items")
        bench("jira_incremental_seconds", inc_s, "s")
        bench("sync_incremental_share_of_full", 100 * inc_s / full_s, "%")
    finally:
        proc.terminate()
        proc.wait()

    proc, url = start_simulator(items, args.latency_ms, "contoso")
    try:
        # Render every answer once before timing: the simulator is one process, and rendering
        # on first use would charge its CPU to whichever run comes first (a real server renders
        # on many machines at once and answers in its latency).
        warm = httpx.post(f"{url}/_sim/warm", json={}, timeout=600).json()
        bench("ado_simulator_warm_seconds", warm["seconds"], "s")
        settings = source_settings(url, "contoso-ado", tmp / "ado.duckdb")
        ado_s, ado_n = asyncio.run(timed_sync(settings, full=True))
        bench("ado_full_items", ado_n, "items")
        bench("ado_full_seconds", ado_s, "s")
        bench("ado_full_items_per_s", ado_n / ado_s, "items/s")
        # the floor concurrency cannot go below: this process's own CPU (parse, map, commit)
        bench("ado_full_client_cpu_seconds", LAST_CPU[0], "s")
        settings_seq = source_settings(url, "contoso-ado", tmp / "ado-seq.duckdb", concurrency=1)
        seq_s, seq_n = asyncio.run(timed_sync(settings_seq, full=True))
        bench("ado_sequential_seconds", seq_s, "s")
        bench("ado_sequential_client_cpu_seconds", LAST_CPU[0], "s")
        bench("ado_concurrent_vs_sequential_ratio", (ado_n / ado_s) / (seq_n / seq_s), "x")
        stats = httpx.get(f"{url}/_sim/stats", timeout=10).json()
        naive_s, naive_n = asyncio.run(naive_ado(url, naive_slice))
        bench("ado_naive_items_per_s", naive_n / naive_s, "items/s")
        bench("ado_full_vs_naive_ratio", (ado_n / ado_s) / (naive_n / naive_s), "x")
        # 4 listings (full + reconciliation, twice): each needs ceil(n / 20,000) windows
        bench("ado_wiql_requests", float(_count(stats, "wiql")), "requests")
        bench("ado_wiql_windows_per_listing", _count(stats, "wiql") / 4, "windows")
        bench("ado_items_listed_past_wiql_cap", float(max(0, ado_n - 20_000)), "items")
        httpx.post(f"{url}/_sim/mutate", json={"fraction": 0.01, "seed": 3}, timeout=60)
        inc_s, inc_n = asyncio.run(timed_sync(settings, full=False))
        bench("ado_incremental_items", inc_n, "items")
        bench("ado_incremental_seconds", inc_s, "s")
        bench("ado_incremental_share_of_full", 100 * inc_s / ado_s, "%")
    finally:
        proc.terminate()
        proc.wait()
    bench("sync_peak_rss", peak_rss_gib(), "GiB")
    bench("load_average_1min_at_end", os.getloadavg()[0], "")


def _count(stats: dict, needle: str) -> int:
    counts = stats.get("requests", stats)
    return sum(int(v) for k, v in counts.items() if needle in k and isinstance(v, int | float))


if __name__ == "__main__":
    main()
