"""Web app benchmark: every page of `pmolens serve` over a 100,000-item warehouse, 8 browsers.

Issue 13 asks for a server-side render of each page under 300 ms p95 at 100,000 items with 8
concurrent browsers' worth of requests, and a page weight (without plotly.js) under 500 KB.

The warehouse and the server are api_bench's (``build_warehouse``, ``start_server``: synthetic
frames committed per source, analyses materialised as after a sync, ``pmolens serve`` on
loopback with auth none). Before the server starts, this script reads from the warehouse the
real names and ids a browsing mix needs (organisations, teams, open epics and their blockers,
items, list sizes) and keeps a few saved views. The load comes from a SECOND process (this
script re-run with ``--client``) on api_bench's minimal asyncio HTTP/1.1 client, so the load
generator is not what is measured:

1. ``first``: one request per page kind, one after another, right after the server started:
   the first render after a sync loads the kept results and computes what is not kept (the
   decisions page's "changed since a week ago", the what-if snapshot). Printed as
   ``web_<page>_first_ms``; the home page (decisions) comes first, as in a browser, so it
   also pays for loading the results the other pages share.
2. ``solo``: a few requests per kind on one connection, nothing else running: the render
   cost of the page itself (``web_<page>_solo_ms``, the median).
3. ``load``: 8 keep-alive connections, each looping over the page kinds in a shuffled order
   with a random real URL per kind (board and decisions per organisation and unfiltered, list
   pages at random offsets, what-if with a pin on one of the epic's own blockers), for a fixed
   time. Per kind p50/p95 (``web_<page>_p50|p95``), the total requests/s and the server's CPU
   time per request (from /proc; unlike latency it does not depend on what else the machine
   runs).

The page weight is the HTML of the largest answer seen per kind, plus the app's own CSS and
JS (``web_<page>_weight_kb``); plotly.js is a separate static file a browser caches, printed
once (``web_plotly_js_kb``). A summary line per kind says PASS or MISS for both targets; the
script asserts nothing.

    python bench/web_bench.py            # 100,000 items, 180 s of load
    python bench/web_bench.py --quick    # 10,000 items, 15 s of load
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_bench import (  # noqa: E402
    _toml,
    bench,
    build_warehouse,
    free_port,
    http_get,
    process_cpu_seconds,
    start_server,
)

TARGET_P95_MS = 300.0
TARGET_WEIGHT_KB = 500.0
LISTS = ("red-lines", "dependencies", "impediments", "findings", "epics", "decisions")
KINDS = (
    "decisions",  # the home page first: what a browser opens after a sync
    "board",
    "org",
    "team",
    "epic",
    "item",
    "matrix",
    *(f"list_{name.replace('-', '_')}" for name in LISTS),
    "what_if",
    "views",
)
SOLO_REQUESTS = 5
PAGE_SIZE = 50  # the list pages' default limit


# --------------------------------------------------------------------------- the browsing mix


def browsing_plan(
    warehouse_path: Path, data: dict[str, Any], seed: int = 13
) -> dict[str, list[str]]:
    """URLs per page kind with the warehouse's real names and ids, as links on the pages lead
    to them; also keeps a few saved views for the viewer that auth none signs in as.

    Reads the warehouse before the server opens it (DuckDB allows one process)."""
    from pmolens.api.web.lists import LISTS as SPECS
    from pmolens.api.web.lists import rows
    from pmolens.api.web.pages import epic_blockers
    from pmolens.warehouse.config import settings_from_dict
    from pmolens.warehouse.results import ResultCache
    from pmolens.warehouse.store import Warehouse

    rng = random.Random(seed)

    def q(text: str) -> str:
        return quote(text, safe="")

    def sample(values: list[Any], n: int) -> list[Any]:
        return rng.sample(values, min(n, len(values)))

    plan: dict[str, list[str]] = {kind: [] for kind in KINDS}
    with Warehouse(warehouse_path) as wh:
        results = ResultCache(wh, settings_from_dict(data))
        orgs = sorted(wh.query("SELECT organisation FROM organisations")["organisation"])
        teams = sorted(
            results.get("dependency_sos")
            .select("organisation", "team")
            .drop_nulls()
            .unique()
            .iter_rows()
        )
        epics = results.get("forecast_epics")
        items = wh.query("SELECT item_id FROM work_items WHERE NOT is_deleted ORDER BY item_id")[
            "item_id"
        ].to_list()
        edges = results.get("dependency_edges")
        as_of = results.kept_as_of()

        for path in ("/", "/board", "/matrix"):
            kind = {"/": "decisions", "/board": "board", "/matrix": "matrix"}[path]
            plan[kind] = [path] + [f"{path}?{urlencode({'organisation': o})}" for o in orgs]
        plan["org"] = [f"/org/{q(o)}" for o in orgs]
        plan["team"] = [
            f"/team/{q(t)}?{urlencode({'organisation': o})}" for o, t in sample(teams, 60)
        ]
        open_epics = epics["epic_id"].to_list()
        plan["epic"] = [f"/epic/{q(e)}" for e in sample(open_epics, 200)]
        plan["item"] = [f"/item/{q(i)}" for i in sample(items, 400)]
        for name in LISTS:
            spec = SPECS[name]
            frame = results.get(spec.analysis)
            urls = []
            for org in [None, *orgs]:
                total = rows(frame, spec, org, None, None).height
                pages = max(1, -(-total // PAGE_SIZE))
                for offset in sorted({rng.randrange(pages) * PAGE_SIZE for _ in range(10)}):
                    query = {"organisation": org, "offset": offset or None}
                    query = {k: v for k, v in query.items() if v is not None}
                    urls.append(f"/list/{name}" + (f"?{urlencode(query)}" if query else ""))
            plan[f"list_{name.replace('-', '_')}"] = urls
        today = (as_of.date() if as_of else date.today()) + timedelta(days=1)
        for epic in sample(open_epics, 80):
            blockers = epic_blockers(edges, epic)
            if blockers:
                blocker = rng.choice(blockers)
                base = blocker["blocker_planned_end"] or today
                day = max(base, today) + timedelta(days=rng.choice((7, 14, 28)))
                pin = f"{blocker['blocker_id']}={day.isoformat()}"
                plan["what_if"].append(f"/what-if/{q(epic)}?{urlencode({'pin': pin})}")
            else:
                plan["what_if"].append(f"/what-if/{q(epic)}")
        plan["views"] = ["/views"]
        # a viewer's bookmarks, so /views lists some (auth none signs in as "operator")
        for name, url in (
            ("Board", "/board"),
            *((f"Board {o}", f"/board?{urlencode({'organisation': o})}") for o in orgs),
            ("Red lines", "/list/red-lines"),
            ("Matrix", "/matrix"),
        ):
            wh.save_view("operator", name, url)
    assert all(plan.values()), {k: len(v) for k, v in plan.items()}
    return plan


# --------------------------------------------------------------------------- the client process


class Browser:
    """One keep-alive connection, as a browser holds one to the server.

    Under load the server sometimes closes a connection whose next request is already sent
    (most likely uvicorn's 5 s keep-alive timeout firing while a long render holds its event
    loop). A browser then opens a new connection and sends the GET again, and so does this one
    (counted in ``reconnects``; the time includes the retry)."""

    def __init__(self, url: str, lang: str) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.headers = f"Accept-Language: {lang}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def get(self, path: str) -> tuple[int, bytes, float]:
        """(status, body, milliseconds)."""
        started = time.perf_counter()
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            try:
                status, body = await http_get(
                    self.reader, self.writer, f"{self.host}:{self.port}", path, self.headers
                )
                return status, body, (time.perf_counter() - started) * 1000
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
                self.reconnects += 1
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def warm(url: str, plan: dict[str, list[str]]) -> dict[str, Any]:
    """Static sizes, the first render per kind, then a few renders per kind alone."""
    browser = Browser(url, "en")
    out: dict[str, Any] = {"static": {}, "first": {}, "solo": {}, "failed": []}
    try:
        for name in ("plotly.min.js", "app.css", "app.js"):
            status, body, _ = await browser.get(f"/static/{name}")
            out["static"][name] = len(body) if status == 200 else -1
        for kind in KINDS:
            path = plan[kind][0]
            status, body, ms = await browser.get(path)
            out["first"][kind] = {"ms": ms, "status": status, "bytes": len(body)}
            if status != 200:
                out["failed"].append([status, path])
        rng = random.Random(1)
        for kind in KINDS:
            times = []
            for _ in range(SOLO_REQUESTS):
                path = rng.choice(plan[kind])
                status, _, ms = await browser.get(path)
                times.append(ms)
                if status != 200:
                    out["failed"].append([status, path])
            out["solo"][kind] = statistics.median(times)
    finally:
        browser.close()
    return out


async def load(
    url: str, plan: dict[str, list[str]], clients: int, seconds: float
) -> dict[str, Any]:
    """``clients`` browsers, each looping over every page kind (shuffled) with a random real
    URL per kind, back to back, for ``seconds``."""
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    weights: dict[str, list[int]] = {kind: [] for kind in KINDS}
    failed: list[list[Any]] = []
    reconnects: list[int] = []
    deadline = time.perf_counter() + seconds

    async def browse(n: int) -> None:
        rng = random.Random(100 + n)
        browser = Browser(url, "nl" if n % 2 else "en")  # half the browsers Dutch
        try:
            while True:
                kinds = list(KINDS)
                rng.shuffle(kinds)
                for kind in kinds:
                    if time.perf_counter() >= deadline:
                        return
                    path = rng.choice(plan[kind])
                    status, body, ms = await browser.get(path)
                    latencies[kind].append(ms)
                    weights[kind].append(len(body))
                    if status != 200:
                        failed.append([status, path])
        finally:
            reconnects.append(browser.reconnects)
            browser.close()

    began = time.perf_counter()
    await asyncio.gather(*(browse(n) for n in range(clients)))
    elapsed = time.perf_counter() - began
    return {
        "elapsed": elapsed,
        "requests": sum(len(v) for v in latencies.values()),
        "failed": failed,
        "reconnects": sum(reconnects),
        "kinds": {
            kind: {
                "requests": len(latencies[kind]),
                "p50": pct(latencies[kind], 0.50),
                "p95": pct(latencies[kind], 0.95),
                "max": max(latencies[kind], default=0.0),
                "bytes_max": max(weights[kind], default=0),
                "bytes_median": statistics.median(weights[kind]) if weights[kind] else 0,
            }
            for kind in KINDS
        },
    }


def client_main(args: argparse.Namespace) -> None:
    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    if args.phase == "warm":
        out = asyncio.run(warm(args.url, plan))
    else:
        out = asyncio.run(load(args.url, plan, args.clients, args.seconds))
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------- the driver


def run_client(url: str, plan: Path, phase: str, clients: int, seconds: float) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            "--url",
            url,
            "--plan",
            str(plan),
            "--phase",
            phase,
            "--clients",
            str(clients),
            "--seconds",
            str(seconds),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"client ({phase}) failed: {result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the warehouse directory")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--plan", default="", help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    items = args.items or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (15.0 if args.quick else 180.0)
    bench("load_average_1min_at_start", os.getloadavg()[0], "")
    bench("web_cores", os.cpu_count() or 0, "cores")
    tmp = Path(tempfile.mkdtemp(prefix="pmolens-web-bench-"))
    port = free_port()
    data, took = build_warehouse(tmp / "web.duckdb", items, port)
    bench("web_warehouse_items", items, "items")
    bench("web_warehouse_build_seconds", took, "s")
    plan = browsing_plan(tmp / "web.duckdb", data)
    plan_path = tmp / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    bench("web_distinct_urls", sum(len(v) for v in plan.values()), "urls")
    config = tmp / "pmolens.toml"
    config.write_text(_toml(data), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    server = start_server(config, url)
    try:
        warmed = run_client(url, plan_path, "warm", 1, 0)
        cpu_before = process_cpu_seconds(server.pid)
        loaded = run_client(url, plan_path, "load", args.clients, seconds)
        cpu = process_cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(warmed, loaded, cpu, args.clients)
    bench("load_average_1min_at_end", os.getloadavg()[0], "")
    if args.keep:
        print(f"warehouse kept in {tmp}", flush=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def report(warmed: dict[str, Any], loaded: dict[str, Any], cpu: float, clients: int) -> None:
    static = warmed["static"]
    own_assets = max(0, static["app.css"]) + max(0, static["app.js"])
    bench("web_plotly_js_kb", static["plotly.min.js"] / 1024, "KB")
    bench("web_app_css_js_kb", own_assets / 1024, "KB")
    for kind in KINDS:
        first = warmed["first"][kind]
        bench(f"web_{kind}_first_ms", first["ms"], "ms")
        bench(f"web_{kind}_solo_ms", warmed["solo"][kind], "ms")
    summary = []
    for kind in KINDS:
        f = loaded["kinds"][kind]
        html_kb = f["bytes_max"] / 1024
        weight_kb = (f["bytes_max"] + own_assets) / 1024
        bench(f"web_{kind}_p50", f["p50"], "ms")
        bench(f"web_{kind}_p95", f["p95"], "ms")
        bench(f"web_{kind}_requests", f["requests"], "requests")
        bench(f"web_{kind}_html_kb", html_kb, "KB")
        bench(f"web_{kind}_weight_kb", weight_kb, "KB")
        summary.append(
            f"web {kind:<20} p95 {f['p95']:8.1f} ms "
            f"{'PASS' if f['p95'] < TARGET_P95_MS else 'MISS'}   "
            f"weight {weight_kb:7.1f} KB {'PASS' if weight_kb < TARGET_WEIGHT_KB else 'MISS'}"
        )
    requests = loaded["requests"]
    bench("web_clients", clients, "connections")
    bench("web_rps", requests / loaded["elapsed"], "req/s")
    bench("web_errors", len(loaded["failed"]) + len(warmed["failed"]), "requests")
    bench("web_reconnects", loaded["reconnects"], "connections")
    bench("web_server_cpu_per_request", 1000 * cpu / max(1, requests), "ms")
    misses = sum(
        1
        for kind in KINDS
        if loaded["kinds"][kind]["p95"] >= TARGET_P95_MS
        or (loaded["kinds"][kind]["bytes_max"] + own_assets) / 1024 >= TARGET_WEIGHT_KB
    )
    bench("web_pages_missing_a_target", misses, "pages")
    for line in summary:
        print(line, flush=True)
    for status, path in (warmed["failed"] + loaded["failed"])[:10]:
        print(f"web failed {status} {path}", flush=True)


if __name__ == "__main__":
    main()
