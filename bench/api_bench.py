"""API benchmark: `pmolens serve` over a 100,000-item warehouse, 32 concurrent clients.

The warehouse is built from synthetic canonical frames (bench/synthetic.py) committed through
``Warehouse.commit_sync`` one source at a time, then the analyses are materialised as after a
sync. ``pmolens serve`` runs as a subprocess on loopback (auth none); the load comes from a SECOND
process (this script re-run with ``--client``): 32 keep-alive connections on a minimal asyncio
HTTP/1.1 client, so that the load generator is not what is measured. Each route is driven
for a fixed time; printed as ``BENCH api_<route>_<p50|p95|rps> <value> <unit>``, plus the server's
CPU time per request (from /proc), which unlike latency does not depend on what else the machine
is running.

- ``/portfolio``: the first page of the hierarchy (200 nodes, the default) with the team and organisation
  roll-ups (served from the prepared result, encoded once per generation).
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
    from bench.synthetic import source_configs

    return {
        "warehouse": {"path": str(warehouse)},
        "server": {"host": "127.0.0.1", "port": port, "auth": "none"},
        "organisations": [
            {"name": r["organisation"], "description": ""}
            for r in frames["organisations"].iter_rows(named=True)
        ],
        "sources": source_configs(frames, TOKEN_ENV),
    }


def build_warehouse(path: Path, items: int, port: int = 8765) -> tuple[dict[str, Any], float]:
    """Commit a synthetic programme of ``items`` work items and materialise the analyses.

    Returns (settings dict, seconds taken)."""

    from bench.synthetic import commit_per_source, generate
    from pmolens.pipeline.refresh import refresh
    from pmolens.warehouse.config import settings_from_dict
    from pmolens.warehouse.store import Warehouse

    os.environ.setdefault(TOKEN_ENV, "unused")
    started = time.perf_counter()
    frames = generate(items, n_orgs=3, n_teams=30)
    data = bench_settings(frames, path, port)
    settings = settings_from_dict(data)
    with Warehouse(path) as wh:
        wh.register_config(settings)
        commit_per_source(wh, frames)
        refresh(wh, settings)
    return data, time.perf_counter() - started


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), 0.0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            assert proc.stderr is not None  # stderr=subprocess.PIPE
            raise RuntimeError(f"pmolens serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("pmolens serve did not answer /health")


# --------------------------------------------------------------------------- the client process


async def http_get(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    authority: str,
    path: str,
    headers: str = "",
) -> tuple[int, bytes]:
    """One GET on a keep-alive HTTP/1.1 connection: (status, body). ``headers`` are extra
    ``Name: value\\r\\n`` lines. The body is read by its Content-Length, which every answer of
    `pmolens serve` carries (no chunked encoding to parse)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {authority}\r\n{headers}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def drive(url: str, route: str, clients: int, seconds: float, total: int) -> dict[str, Any]:
    """``clients`` keep-alive connections sending requests back to back for ``seconds``.

    A minimal HTTP/1.1 client on asyncio streams, like wrk: the load generator must not be the
    bottleneck it measures (httpx costs some 4 ms of CPU per request, more than the server)."""
    latencies: list[float] = []
    errors = 0
    rng = random.Random(7)
    filters: list[dict[str, str | int]] = [
        {},
        {"level": "story"},
        {"status_category": "in_progress"},
        {},
    ]
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 80

    # rows per filter, asked once before the clock starts: each request then reads a page of
    # 100 at a random offset inside its filter's rows (not always the cached first page)
    rows: list[int] = [total] * len(filters)

    def target() -> str:
        if route == "/portfolio":
            return route
        which = rng.randrange(len(filters))
        chosen = dict(filters[which])
        chosen["limit"] = 100
        chosen["offset"] = rng.randrange(0, max(1, rows[which] - 100 + 1))
        return f"{route}?{httpx.QueryParams(chosen)}"

    async def get(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
    ) -> tuple[int, bytes]:
        return await http_get(reader, writer, f"{host}:{port}", path)

    deadline = 0.0

    async def loop() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await get(reader, writer, target())  # warm (the first answer may load the result)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status, _ = await get(reader, writer, target())
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    reader, writer = await asyncio.open_connection(host, port)
    if route != "/portfolio":
        for k, row_filter in enumerate(filters):
            query = httpx.QueryParams({**row_filter, "limit": 1})
            status, body = await get(reader, writer, f"{route}?{query}")
            if status == 200:
                rows[k] = int(json.loads(body)["total"])
    await get(reader, writer, target())  # one warm-up before the clock starts
    writer.close()
    deadline = time.perf_counter() + seconds
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
    figures: dict[str, Any] = {}
    try:
        for route in ("/portfolio", "/work-items"):
            cpu_before = process_cpu_seconds(server.pid)
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--client",
                    "--url",
                    url,
                    "--routes",
                    route,
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
            cpu = process_cpu_seconds(server.pid) - cpu_before
            figures[route] = json.loads(result.stdout.strip().splitlines()[-1])[route]
            figures[route]["cpu_ms"] = 1000 * cpu / max(1, figures[route]["requests"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    worst = 0.0
    for route, f in figures.items():
        name = route.strip("/").replace("-", "_")
        bench(f"api_{name}_p50", f["p50"], "ms")
        bench(f"api_{name}_p95", f["p95"], "ms")
        bench(f"api_{name}_rps", f["rps"], "req/s")
        bench(f"api_{name}_errors", f["errors"], "requests")
        # load-independent: server CPU per request (its capacity is ~1000 / this per core)
        bench(f"api_{name}_server_cpu_per_request", f["cpu_ms"], "ms")
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
