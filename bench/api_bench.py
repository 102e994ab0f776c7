"""API benchmark: `pmolens serve` over a 100,000-item warehouse, 32 concurrent clients.

The warehouse is built from synthetic canonical frames (bench/synthetic.py) committed through
``Warehouse.commit_sync`` one source at a time, then the analyses are materialised as after a
sync. ``pmolens serve`` runs as a subprocess on loopback (auth none); the load comes from a SECOND
process (this script re-run with ``--client``) with 32 httpx async clients. Each route is driven
for a fixed time; printed as ``BENCH api_<route>_<p50|p95|rps> <value> <unit>``.

- ``/portfolio``: the whole hierarchy with progress (served from the prepared result).
- ``/work-items``: pages of 100 at random offsets, half of them with a filter.

    python bench/api_bench.py            # 100,000 items, 10 s per route
    python bench/api_bench.py --quick    # 10,000 items, 3 s per route
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN_ENV = "PMOLENS_BENCH_TOKEN"
TARGET_P95_MS = 50.0


def bench(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.3f} {unit}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_settings(frames: dict[str, Any], warehouse: Path, port: int = 8765) -> dict[str, Any]:
    """Config for the synthetic programme: one source per organisation, auth none on loopback."""
    sources = []
    for row in frames["sources"].iter_rows(named=True):
        source = {
            "name": row["source"],
            "kind": row["kind"],
            "organisation": row["organisation"],
            "base_url": row["base_url"],
            "token_env": TOKEN_ENV,
        }
        if row["kind"] == "jira_cloud":
            source["email"] = "bench@example.com"
        if row["kind"] == "azure_devops":
            source["project"] = "Bench"
        sources.append(source)
    return {
        "warehouse": {"path": str(warehouse)},
        "server": {"host": "127.0.0.1", "port": port, "auth": "none"},
        "organisations": [
            {"name": r["organisation"], "description": ""}
            for r in frames["organisations"].iter_rows(named=True)
        ],
        "sources": sources,
    }


def build_warehouse(path: Path, items: int, port: int = 8765) -> tuple[dict[str, Any], float]:
    """Commit a synthetic programme of ``items`` work items and materialise the analyses.

    Returns (settings dict, seconds taken)."""
    import polars as pl

    from bench.synthetic import generate
    from warehouse.config import settings_from_dict
    from warehouse.results import refresh
    from warehouse.store import Staged, Warehouse

    os.environ.setdefault(TOKEN_ENV, "unused")
    started = time.perf_counter()
    frames = generate(items, n_orgs=3, n_teams=30)
    data = bench_settings(frames, path, port)
    settings = settings_from_dict(data)
    with Warehouse(path) as wh:
        wh.register_config(settings)
        for source in frames["sources"]["source"].to_list():
            own = {
                kind: frames[kind].filter(pl.col("source") == source)
                for kind in ("work_items", "links", "sprints", "status_changes")
            }
            run_id = wh.begin_run(source, "full", None)
            wh.commit_sync(
                run_id,
                source,
                Staged(
                    work_items=[own["work_items"]],
                    links=[own["links"]],
                    sprints=[own["sprints"]],
                    status_changes=[own["status_changes"]],
                ),
                live_ids=None,
                cursor=None,
            )
        refresh(wh, settings)
    return data, time.perf_counter() - started


def start_server(config: Path, url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PMOLENS_CONFIG=str(config))
    env.setdefault(TOKEN_ENV, "unused")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pmolens"), "serve", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pmolens serve exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("pmolens serve did not answer /health")


# --------------------------------------------------------------------------- the client process


async def drive(url: str, route: str, clients: int, seconds: float, total: int) -> dict[str, Any]:
    """``clients`` loops sending requests back to back for ``seconds``; latencies in ms."""
    latencies: list[float] = []
    errors = 0
    rng = random.Random(7)
    filters = [{}, {"level": "story"}, {"status_category": "in_progress"}, {}]

    def params() -> dict[str, Any]:
        if route == "/portfolio":
            return {}
        chosen = dict(rng.choice(filters))
        chosen["limit"] = 100
        chosen["offset"] = rng.randrange(0, max(1, total // 2)) if not chosen else 0
        return chosen

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await client.get(route, params=params())  # warm (first answer may load the result)
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(route, params=params())
                await response.aread()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "errors": errors,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "rps": len(latencies) / elapsed,
    }


def client_main(args: argparse.Namespace) -> None:
    out = {}
    for route in args.routes.split(","):
        out[route] = asyncio.run(drive(args.url, route, args.clients, args.seconds, args.total))
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------- the driver


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--routes", default="/portfolio,/work-items", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    items = args.items or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    bench("load_average_1min_at_start", os.getloadavg()[0], "")
    tmp = Path(tempfile.mkdtemp(prefix="pmolens-api-bench-"))
    port = free_port()
    data, took = build_warehouse(tmp / "api.duckdb", items, port)
    bench("api_warehouse_items", items, "items")
    bench("api_warehouse_build_seconds", took, "s")
    config = tmp / "pmolens.toml"
    config.write_text(_toml(data), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    server = start_server(config, url)
    try:
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--client",
                "--url",
                url,
                "--clients",
                str(args.clients),
                "--seconds",
                str(seconds),
                "--total",
                str(items),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    worst = 0.0
    for route, f in figures.items():
        name = route.strip("/").replace("-", "_")
        bench(f"api_{name}_p50", f["p50"], "ms")
        bench(f"api_{name}_p95", f["p95"], "ms")
        bench(f"api_{name}_rps", f["rps"], "req/s")
        bench(f"api_{name}_errors", f["errors"], "requests")
        worst = max(worst, f["p95"])
    bench("api_p95_target_met", float(worst < TARGET_P95_MS), "bool")
    bench("load_average_1min_at_end", os.getloadavg()[0], "")


def _toml(data: dict[str, Any]) -> str:
    """The few shapes bench_settings produces, as TOML (no TOML writer in the stdlib)."""

    def value(v: Any) -> str:
        return json.dumps(v)

    lines = [f"[warehouse]\npath = {value(data['warehouse']['path'])}\n", "[server]"]
    lines += [f"{k} = {value(v)}" for k, v in data["server"].items()]
    for org in data["organisations"]:
        lines += ["", "[[organisations]]", *(f"{k} = {value(v)}" for k, v in org.items())]
    for source in data["sources"]:
        lines += ["", "[[sources]]", *(f"{k} = {value(v)}" for k, v in source.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
