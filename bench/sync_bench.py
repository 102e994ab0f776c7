"""Sync benchmark: what the user waits for in ``pmolens sync``, against what they would run instead.

The simulator runs in a second process with a fixed latency per request (default 20 ms); every
figure below comes from the same run, over loopback HTTP. Printed as ``BENCH <name> <value>
<unit>``; ``NOTE`` lines say what a figure includes.

pmolens is timed as ``pmolens sync`` runs: ``sync_source`` (read, map, commit) **and** the results
refresh after it (``refresh_after_sync``), until the API answers from the new generation. The
baselines only fetch into memory (no storage, no analytics), so the ratios flatter them:

- Jira Cloud and Jira DC: pycontribs ``jira`` (``search_issues(jql, maxResults=False,
  expand='changelog')``, the user's usual call; on Cloud it pages ``/rest/api/2/search/jql`` by
  100 and keeps the first 100 history entries of an issue, as Cloud returns them) and a
  sequential ``expand=changelog`` loop in plain httpx (one page after another, the connector's
  fields, a per-issue ``/changelog`` call only when an issue's changelog was cut). Both read
  every issue the pmolens source reads.
- Azure DevOps: Microsoft's ``azure-devops`` SDK, ``query_by_wiql`` -> ``get_work_items_batch``
  (200 a call, relations) -> ``get_updates`` or ``get_revisions`` per item, on a slice (one
  call per item takes minutes at full size) and compared in items/s; and pmolens's own connector
  with one request in flight.
- Incremental: 1 % of items changed (plus a few deletes and moves), sync + refresh, as a share of
  the full sync + refresh.

The Azure DevOps simulator renders every answer any timed path reads before the timing
(``/_sim/warm`` with ``history``: the items, the revisions feed, and the per-item /updates and
/revisions pages of the SDK slice); the Jira tenants cache nothing, for every path alike.

    pip install -e '.[bench]'              # the vendor SDKs (without them their lines say so)
    python bench/sync_bench.py             # 50,000 items per tracker, 20 ms per request
    python bench/sync_bench.py --quick     # 5,000 items
    python bench/sync_bench.py --items 10000 --sdk-slice 1000
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pmolens.connectors.jira import requested_fields  # noqa: E402
from pmolens.pipeline.refresh import refresh_after_sync  # noqa: E402
from pmolens.pipeline.sync import sync_source  # noqa: E402
from pmolens.simulator import DEMO_TOKEN, demo_settings  # noqa: E402
from pmolens.simulator.portfolio import TENANTS  # noqa: E402
from pmolens.warehouse.config import settings_from_dict  # noqa: E402
from pmolens.warehouse.store import Warehouse  # noqa: E402

WIQL = (
    "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project ORDER BY [System.Id]"
)


def bench(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.3f} {unit}", flush=True)


def note(text: str) -> None:
    print(f"NOTE {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(size: int, latency_ms: float, tenant: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "pmolens.simulator", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--size", str(size), "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen([*command, "--tenants", tenant], cwd=ROOT)
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


def source_settings(url: str, name: str, warehouse: Path, concurrency: int = 16) -> Any:
    data = demo_settings(url)
    data["sources"] = [
        dict(s, concurrency=concurrency) for s in data["sources"] if s["name"] == name
    ]
    data["warehouse"] = {"path": str(warehouse)}
    return settings_from_dict(data)


class Timed:
    """Wall and CPU seconds (this process, all threads) of one run, and what it read."""

    def __init__(self, seconds: float, cpu: float, items: int) -> None:
        self.seconds, self.cpu, self.items = seconds, cpu, items

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def pmolens_sync(settings: Any, *, full: bool, refresh: bool = True) -> tuple[Timed, float]:
    """``pmolens sync`` of the one source: sync, then the results refresh (``refresh=False``:
    the sync alone). Returns the whole run and the sync part's seconds."""
    config = settings.sources[0]
    with Warehouse.open(settings) as wh:
        wh.register_config(settings)
        started, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(sync_source(wh, settings, config, full=full))
        synced = time.perf_counter() - started
        if refresh:
            refresh_after_sync(wh, settings)
        took = time.perf_counter() - started
        return Timed(took, time.process_time() - cpu, result.items), synced


class Server:
    """The simulator process's CPU seconds and request count, read around each timed path: on
    a small machine its rendering competes with the client for the same cores."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc, self.url = proc, url
        self.mark = self.read()

    def read(self) -> tuple[float, int]:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        total = int(httpx.get(f"{self.url}/_sim/stats", timeout=30).json()["total"])
        return cpu, total

    def report(self, prefix: str) -> None:
        """Print the simulator's CPU and requests since the last report (or start)."""
        now = self.read()
        bench(f"{prefix}_simulator_cpu_seconds", now[0] - self.mark[0], "s")
        bench(f"{prefix}_requests", float(now[1] - self.mark[1]), "requests")
        self.mark = self.read()


def timed(run: Callable[[], int]) -> Timed:
    started, cpu = time.perf_counter(), time.process_time()
    items = run()
    return Timed(time.perf_counter() - started, time.process_time() - cpu, items)


# --------------------------------------------------------------------------- Jira baselines


def jira_sdk(base_url: str, user: str, jql: str, cut: list[int]) -> Callable[[], int]:
    """pycontribs jira as a user calls it: every issue with its changelog, into memory."""

    def run() -> int:
        from jira import JIRA

        client = JIRA(server=base_url, basic_auth=(user, DEMO_TOKEN))
        issues = client.search_issues(jql, maxResults=False, expand="changelog")
        cut[0] = sum(
            1 for i in issues if i.raw["changelog"]["total"] > len(i.raw["changelog"]["histories"])
        )
        return len(issues)

    return run


def jira_fields(settings: Any) -> list[str]:
    """The fields the connector asks for (BASE_FIELDS plus the mapped custom fields)."""
    return requested_fields(settings.sources[0])


def jira_loop(
    base_url: str, auth: Any, jql: str, fields: list[str], cloud: bool
) -> Callable[[], int]:
    """One page after another with ``expand=changelog`` (Cloud: ``search/jql`` by token, a
    per-issue ``/changelog`` call only for the issues whose changelog was cut at 100; DC:
    ``/search`` by ``startAt``, changelog complete)."""

    def run() -> int:
        seen = 0
        with httpx.Client(base_url=base_url, auth=auth, timeout=120) as client:
            token: str | None = None
            start = 0
            while True:
                body: dict[str, Any] = {"jql": jql, "maxResults": 100, "fields": fields}
                if cloud:
                    body["expand"] = "changelog"
                    if token:
                        body["nextPageToken"] = token
                    page = client.post("/rest/api/3/search/jql", json=body)
                else:
                    body |= {"expand": ["changelog"], "startAt": start}
                    page = client.post("/rest/api/2/search", json=body)
                page.raise_for_status()
                data = page.json()
                histories: dict[str, list[Any]] = {}
                for issue in data["issues"]:
                    log = issue["changelog"]
                    histories[issue["id"]] = list(log["histories"])
                    at = len(log["histories"])
                    while cloud and at < log["total"]:
                        more = client.get(
                            f"/rest/api/3/issue/{issue['id']}/changelog",
                            params={"startAt": at, "maxResults": 100},
                        ).json()
                        histories[issue["id"]] += more["values"]
                        at += len(more["values"])
                        if more.get("isLast", True) or not more["values"]:
                            break
                seen += len(data["issues"])
                if cloud:
                    token = data.get("nextPageToken")
                    if not token:
                        return seen
                else:
                    start += len(data["issues"])
                    if not data["issues"] or start >= data["total"]:
                        return seen

    return run


# --------------------------------------------------------------------------- Azure DevOps baseline


def ado_sdk(base_url: str, limit: int, history: str) -> Callable[[], int]:
    """Microsoft's azure-devops SDK, its common path: WIQL, work items 200 a batch with their
    relations, then each item's history from ``get_updates`` or ``get_revisions``."""

    def run() -> int:
        from azure.devops.connection import Connection
        from azure.devops.v7_1.work_item_tracking.models import (
            TeamContext,
            Wiql,
            WorkItemBatchGetRequest,
        )
        from msrest.authentication import BasicAuthentication

        connection = Connection(base_url=base_url, creds=BasicAuthentication("", DEMO_TOKEN))
        tracker = connection.clients_v7_1.get_work_item_tracking_client()
        found = tracker.query_by_wiql(
            Wiql(query=WIQL), team_context=TeamContext(project="Delivery"), top=limit
        )
        ids = [w.id for w in found.work_items][:limit]
        read = tracker.get_updates if history == "updates" else tracker.get_revisions
        seen = 0
        for offset in range(0, len(ids), 200):
            chunk = ids[offset : offset + 200]
            request = WorkItemBatchGetRequest(ids=chunk, expand="relations", error_policy="omit")
            tracker.get_work_items_batch(request, project="Delivery")
            for work_item in chunk:
                skip = 0
                while True:
                    page = read(work_item, project="Delivery", top=200, skip=skip)
                    skip += len(page)
                    if len(page) < 200:
                        break
                seen += 1
        return seen

    return run


# --------------------------------------------------------------------------- the run


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        note(f"{module} is not installed (pip install -e '.[bench]'): its baseline is skipped")
        return False
    return True


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


def report_pmolens(prefix: str, run: Timed, synced: float, *, rates: bool = True) -> None:
    bench(f"{prefix}_items", run.items, "items")
    bench(f"{prefix}_sync_seconds", synced, "s")
    bench(f"{prefix}_refresh_seconds", run.seconds - synced, "s")
    bench(f"{prefix}_seconds", run.seconds, "s")
    bench(f"{prefix}_client_cpu_seconds", run.cpu, "s")
    if rates:  # an incremental run reads the changed items only: no rate per item
        bench(f"{prefix}_items_per_s", run.rate, "items/s")
        bench(f"{prefix}_client_cpu_per_item", 1e6 * run.cpu / max(1, run.items), "us")


def report_baseline(prefix: str, run: Timed, ours: Timed, synced: float) -> None:
    bench(f"{prefix}_items", run.items, "items")
    bench(f"{prefix}_seconds", run.seconds, "s")
    bench(f"{prefix}_items_per_s", run.rate, "items/s")
    bench(f"{prefix}_client_cpu_seconds", run.cpu, "s")
    # the user's path (sync + refresh) against the baseline's fetch into memory
    bench(f"{prefix}_ratio", ours.rate / run.rate, "x")
    # the sync alone against it (what the ratio would be if the refresh were free)
    bench(f"{prefix}_ratio_sync_only", (ours.items / synced) / run.rate, "x")


def jira_tenant(args: argparse.Namespace, tmp: Path, tenant: str, sdk: bool) -> None:
    spec = TENANTS[tenant]
    cloud = tenant == "northwind"
    short = "jira_cloud" if cloud else "jira_dc"
    proc, url = start_simulator(args.items, args.latency_ms, tenant)
    try:
        settings = source_settings(url, spec.source, tmp / f"{short}.duckdb")
        config = settings.sources[0]
        server = Server(proc, url)
        ours, synced = pmolens_sync(settings, full=True)
        report_pmolens(f"{short}_pmolens_full", ours, synced)
        server.report(f"{short}_pmolens_full")
        jql = f"{config.jql} ORDER BY created ASC"
        user = config.email or "pmo"
        if sdk:
            cut = [0]
            run = timed(jira_sdk(config.base_url, user, jql, cut))
            report_baseline(f"{short}_vs_sdk", run, ours, synced)
            server.report(f"{short}_vs_sdk")
            if cloud:  # the SDK keeps what Cloud returns: the first 100 entries of a changelog
                bench(f"{short}_sdk_changelogs_cut_at_100", cut[0], "issues")
        # Basic on both (DC takes user and password as well as a Bearer token)
        auth = (user, DEMO_TOKEN)
        run = timed(jira_loop(config.base_url, auth, jql, jira_fields(settings), cloud))
        report_baseline(f"{short}_vs_loop", run, ours, synced)
        server.report(f"{short}_vs_loop")
        if cloud:
            httpx.post(f"{url}/_sim/mutate", json={"fraction": 0.01, "seed": 3}, timeout=60)
            server.mark = server.read()
            inc, inc_synced = pmolens_sync(settings, full=False)
            report_pmolens(f"{short}_pmolens_incremental", inc, inc_synced, rates=False)
            bench(f"{short}_incremental_share_of_full", 100 * inc.seconds / ours.seconds, "%")
    finally:
        proc.terminate()
        proc.wait()


def ado_tenant(args: argparse.Namespace, tmp: Path, sdk: bool) -> None:
    proc, url = start_simulator(args.items, args.latency_ms, "contoso")
    try:
        # Render before timing what every timed path reads: the simulator is one process, and
        # rendering on first use would charge its CPU to whichever run comes first (a real
        # server renders on many machines at once and answers in its latency).
        body = {"history": args.sdk_slice if sdk else 0}
        warm = httpx.post(f"{url}/_sim/warm", json=body, timeout=1800).json()
        bench("ado_simulator_warm_seconds", warm["seconds"], "s")
        settings = source_settings(url, "contoso-ado", tmp / "ado.duckdb")
        server = Server(proc, url)
        ours, synced = pmolens_sync(settings, full=True)
        report_pmolens("ado_pmolens_full", ours, synced)
        server.report("ado_pmolens_full")
        seq_settings = source_settings(url, "contoso-ado", tmp / "ado-seq.duckdb", concurrency=1)
        seq, seq_synced = pmolens_sync(seq_settings, full=True, refresh=False)
        bench("ado_pmolens_sequential_sync_seconds", seq_synced, "s")
        bench("ado_pmolens_sequential_client_cpu_seconds", seq.cpu, "s")
        # the connector's concurrency alone: sync against sync (the refresh is the same for both)
        bench("ado_concurrent_vs_sequential_sync_ratio", seq_synced / synced, "x")
        server.report("ado_pmolens_sequential")
        stats = httpx.get(f"{url}/_sim/stats", timeout=10).json()
        if sdk:
            for history in ("updates", "revisions"):
                run = timed(ado_sdk(f"{url}/contoso", args.sdk_slice, history))
                report_baseline(f"ado_vs_sdk_{history}", run, ours, synced)
                server.report(f"ado_vs_sdk_{history}")
        # 2 listings (full + reconciliation) per full sync, 2 full syncs: ceil(n / 20,000) windows
        wiql = _count(stats, "wiql")
        bench("ado_wiql_requests", float(wiql), "requests")
        bench("ado_wiql_windows_per_listing", wiql / 4, "windows")
        httpx.post(f"{url}/_sim/mutate", json={"fraction": 0.01, "seed": 3}, timeout=60)
        inc, inc_synced = pmolens_sync(settings, full=False)
        report_pmolens("ado_pmolens_incremental", inc, inc_synced, rates=False)
        bench("ado_incremental_share_of_full", 100 * inc.seconds / ours.seconds, "%")
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--sdk-slice", type=int, default=None, help="Azure DevOps items the SDK paths read"
    )
    parser.add_argument("--trackers", default="cloud,dc,ado", help="comma-separated subset")
    args = parser.parse_args()
    args.items = args.items or (5_000 if args.quick else 50_000)
    args.sdk_slice = min(args.items, args.sdk_slice or (300 if args.quick else 2_500))
    trackers = {t.strip() for t in args.trackers.split(",")}
    os.environ["PMOLENS_DEMO_TOKEN"] = DEMO_TOKEN
    tmp = Path(tempfile.mkdtemp(prefix="pmolens-bench-"))
    os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", str(tmp / "azure-devops-cache"))
    note(
        "pmolens = sync + results refresh into a committed warehouse (what `pmolens sync` "
        "waits for); the SDK and loop baselines only fetch into memory (no storage, no "
        "analytics); *_ratio = pmolens items/s over the baseline's, *_ratio_sync_only = "
        "without the refresh"
    )
    # the figures are only comparable on an otherwise idle machine: say how busy it was
    bench("load_average_1min_at_start", os.getloadavg()[0], "")
    bench("items_per_tracker", args.items, "items")
    bench("latency_per_request", args.latency_ms, "ms")
    has_jira = have("jira")
    has_ado = have("azure.devops")
    if "cloud" in trackers:
        jira_tenant(args, tmp, "northwind", has_jira)
    if "dc" in trackers:
        jira_tenant(args, tmp, "fabrikam", has_jira)
    if "ado" in trackers:
        bench("ado_sdk_slice", args.sdk_slice, "items")
        ado_tenant(args, tmp, has_ado)
    bench("sync_peak_rss", peak_rss_gib(), "GiB")
    bench("load_average_1min_at_end", os.getloadavg()[0], "")


def _count(stats: dict[str, Any], needle: str) -> int:
    counts = stats.get("requests", stats)
    return sum(int(v) for k, v in counts.items() if needle in k and isinstance(v, int | float))


if __name__ == "__main__":
    main()
