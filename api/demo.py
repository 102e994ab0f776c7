"""`pmolens demo`: the simulated chain, synced over real HTTP into a fresh warehouse."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from rich.console import Console

from pmolens.warehouse.config import settings_from_dict


def _toml(value: object) -> str:
    """Minimal TOML writer for the demo config (strings, numbers, bools, lists, tables)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def write_config(data: dict, path: Path) -> None:
    lines = [
        "# Written by `pmolens demo`: the simulated chain (three organisations, three trackers)."
    ]
    # top-level keys first: after a [table] header a bare key would belong to that table
    ordered = sorted(data.items(), key=lambda kv: isinstance(kv[1], dict) or _is_table_array(kv[1]))
    for key, value in ordered:
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {_toml(v)}" for k, v in value.items()]
        elif _is_table_array(value):
            for entry in value:
                lines.append(f"\n[[{key}]]")
                lines += [f"{json_key(k)} = {_toml(v)}" for k, v in entry.items()]
        else:
            lines.append(f"{key} = {_toml(value)}")
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we write must read back
    path.write_text(text, encoding="utf-8")


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def json_key(key: str) -> str:
    import json

    return key if key.replace("_", "").isalnum() else json.dumps(key)


DEMO_SCHEDULE = "*/15 * * * *"  # what `pmolens serve` syncs the demo on: every quarter hour
DEMO_SIZE, DEMO_SEED, SIMULATOR_PORT = 2000, 7, 8901  # the defaults of `pmolens simulator` too


class DemoError(RuntimeError):
    """The demo cannot start or serve its simulator; the message says what to do."""


def run_demo(
    directory: Path,
    *,
    size: int,
    seed: int,
    console: Console,
    port: int = 8765,
    simulator_port: int = SIMULATOR_PORT,
) -> int:
    """Simulate the chain on ``simulator_port``, sync it into a fresh warehouse and write a config
    that `pmolens serve --with-simulator` runs as is: the same simulator port (the remote links
    the trackers serve name it), a schedule on every source, the demo's link types mapped."""
    from pmolens.api.console import print_status
    from pmolens.api.handoff import running_server
    from pmolens.pipeline.refresh import refresh
    from pmolens.pipeline.sync import sync_all
    from pmolens.reports.steering import build_report
    from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator, demo_settings
    from pmolens.warehouse.store import Warehouse

    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "pmolens.toml"
    warehouse_path = directory / "pmolens.duckdb"
    owner = running_server(
        settings_from_dict({"warehouse": {"path": "pmolens.duckdb"}}, base_dir=directory)
    )
    if owner is not None:
        console.print(
            f"[red]pmolens serve (pid {owner['pid']}, {owner['url']}) owns {warehouse_path}[/red]: "
            "stop it before running the demo again",
            soft_wrap=True,
        )
        return 1
    for stale in (warehouse_path, Path(str(warehouse_path) + ".wal")):
        if stale.exists():
            stale.unlink()
    os.environ[TOKEN_ENV] = DEMO_TOKEN  # this process's syncs; the server's: start_simulator
    console.print(
        f"[bold]pmolens demo[/bold]: simulating a chain of three organisations ({size:,} items)"
    )
    try:
        sim = Simulator(seed=seed, size=size, port=simulator_port).start()
    except OSError as exc:
        console.print(
            f"[red]cannot start the simulator on 127.0.0.1:{simulator_port}[/red] "
            f"({exc.strerror or exc}): is a `pmolens serve --with-simulator` or "
            "`pmolens simulator` still running? Stop it, or choose another port with "
            "--simulator-port",
            soft_wrap=True,
        )
        return 2
    except ValueError as exc:  # a size the simulator cannot split over its tenants
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        return 2
    try:
        data = demo_settings(sim.url)
        for source in data["sources"]:
            source["schedule"] = DEMO_SCHEDULE
        data["warehouse"] = {"path": "pmolens.duckdb"}
        data["server"] = {"host": "127.0.0.1", "port": port, "auth": "none"}
        write_config(data, config_path)
        settings = settings_from_dict(data, source_name=str(config_path), base_dir=directory)
        console.print(f"simulator at {sim.url}; config written to {config_path}")
        with Warehouse(settings.warehouse_path) as warehouse:
            outcomes = asyncio.run(sync_all(warehouse, settings, full=True))
            from pmolens.api.console import print_outcomes

            print_outcomes(outcomes, warehouse)
            if not all(o.ok for o in outcomes):
                return 1
            refresh(warehouse, settings)
            print_status(warehouse)
            for lang in ("en", "nl"):
                out = directory / f"steering-{lang}.html"
                out.write_text(build_report(warehouse, settings, lang=lang), encoding="utf-8")
                console.print(f"steering report ({lang}): {out}")
            _print_findings(warehouse, settings, console)
    finally:
        sim.stop()
    shutil.copyfile(directory / "steering-en.html", directory / "steering.html")
    _print_next(console, directory, config_path, settings, size=size, seed=seed)
    return 0


def serve_command(config_path: Path, *, size: int, seed: int) -> str:
    """The `pmolens serve` line that brings back this demo's simulator (same size and seed)."""
    extra = (f" --simulator-size {size}" if size != DEMO_SIZE else "") + (
        f" --simulator-seed {seed}" if seed != DEMO_SEED else ""
    )
    return f"pmolens serve --config {config_path} --with-simulator{extra}"


def _print_next(
    console: Console, directory: Path, config_path: Path, settings: Any, *, size: int, seed: int
) -> None:
    """Each next step on a line of its own, never wrapped (so it can be copied, and
    tests/test_demo.py runs them in order); what it does on the indented lines below."""
    server = settings.server
    simulator = simulator_address(settings)
    lines = [
        ("", "Next"),
        (f"  pmolens status --config {config_path}", None),
        (
            "  " + serve_command(config_path, size=size, seed=seed),
            f"the web app on http://{server.host}:{server.port}/ (API docs at /docs and /redoc); "
            f"starts the demo's simulator on {simulator[0]}:{simulator[1]} beside it and "
            "syncs every source every 15 minutes (the simulator's public token "
            "PMOLENS_DEMO_TOKEN is set for it when unset)",
        ),
        (
            f"  pmolens sync --config {config_path}",
            "in a second terminal while the server runs: the sync is handed to it",
        ),
        (f"  open {directory / 'steering-nl.html'} or {directory / 'steering-en.html'}", None),
    ]
    console.print()
    for command, note in lines:
        if not command:
            console.print(f"[bold]{note}[/bold]")
            continue
        console.print(command, soft_wrap=True, markup=False, highlight=False)
        if note:
            console.print(f"      # {note}", soft_wrap=True, markup=False, highlight=False)


def simulator_address(settings: Any) -> tuple[str, int]:
    """Where the config expects the simulator: every source's base_url must be the same
    loopback host:port followed by one of the simulator's tenants (/northwind, ...)."""
    from urllib.parse import urlsplit

    from pmolens.simulator.portfolio import TENANT_ORDER

    places = set()
    for source in settings.sources:
        url = urlsplit(source.base_url)
        tenant = url.path.strip("/")
        if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost"):
            raise DemoError(
                f"source {source.name!r} reads {source.base_url}, not the local simulator: "
                "--with-simulator is for the demo config (`pmolens demo`)"
            )
        if tenant not in TENANT_ORDER:
            raise DemoError(
                f"source {source.name!r}: {source.base_url} names no simulator tenant "
                f"(one of {', '.join(TENANT_ORDER)})"
            )
        places.add((url.hostname, url.port or 80))
    if len(places) != 1:
        raise DemoError(
            "--with-simulator needs every source on one simulator (one host:port), "
            f"the config names {sorted(places) or 'no source'}"
        )
    host, port = places.pop()
    return ("127.0.0.1" if host == "localhost" else host), port


class SimulatorProcess:
    """The simulator in a child process beside `pmolens serve`: its own logging (uvicorn's
    loggers are process-wide) and its own interpreter, so it never slows the server down."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_simulator(
    settings: Any, *, size: int, seed: int, timeout: float = 120.0
) -> SimulatorProcess:
    """The demo's simulator where the config expects it (``python -m pmolens.simulator``), once
    it answers. The server's syncs get the simulator's public token (PMOLENS_DEMO_TOKEN) when the
    variable is unset."""
    import socket
    import sys
    import time

    import httpx

    from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV
    from pmolens.simulator.portfolio import MIN_PER_TENANT, TENANT_ORDER, split_size

    host, port = simulator_address(settings)
    if min(split_size(size, TENANT_ORDER)) < MIN_PER_TENANT:
        raise DemoError(f"--simulator-size {size} is too small: give the size the demo used")
    if os.environ.setdefault(TOKEN_ENV, DEMO_TOKEN) != DEMO_TOKEN:
        raise DemoError(
            f"{TOKEN_ENV} holds another token than the simulator's public {DEMO_TOKEN!r}: "
            "unset it (the server then uses the demo's)"
        )
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the simulator binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DemoError(
                f"cannot start the simulator on {host}:{port} ({exc.strerror or exc}): "
                "is `pmolens simulator` or another `pmolens serve --with-simulator` running?"
            ) from None
    command = [sys.executable, "-m", "pmolens.simulator", "--host", host, "--port", str(port)]
    command += ["--size", str(size), "--seed", str(seed)]
    process = subprocess.Popen(command)  # noqa: S603 - our own interpreter; lines go to this terminal
    simulator = SimulatorProcess(process, f"http://{host}:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the simulator stopped as it started (exit {process.returncode})")
        try:
            if httpx.get(f"{simulator.url}/_sim/stats", timeout=2).status_code == 200:
                return simulator
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    simulator.stop()
    raise DemoError(f"the simulator did not answer at {simulator.url} within {timeout:.0f} s")


def _print_findings(warehouse, settings, console: Console) -> None:
    """What the chain's data reveals: findings per alignment rule and the dependency headlines."""
    from rich.table import Table

    from pmolens.api.console import red_line_rows

    known = set(warehouse.query("SELECT name FROM results")["name"].to_list())
    if {"alignment_rules", "findings"} <= known:
        rules = warehouse.query(
            """
            SELECT r.id, r.title,
                   count(f.rule) FILTER (WHERE f.status <> 'resolved') AS open,
                   count(f.rule) FILTER (WHERE f.status <> 'resolved'
                                         AND f.severity = 'critical') AS critical
            FROM result_alignment_rules r LEFT JOIN result_findings f ON f.rule = r.id
            WHERE r.enabled GROUP BY ALL ORDER BY r.id
            """
        )
        table = Table("alignment rule", "title", "findings", "critical", title="Alignment checks")
        for rule, title, found, critical in rules.iter_rows():
            table.add_row(rule, title, f"{found:,}", f"{critical:,}")
        console.print(table)
    headlines: list[tuple[str, int | str]] = []
    if "dependency_edges" in known:
        edges = warehouse.query(
            """
            SELECT count(*) FILTER (WHERE open) AS open,
                   count(*) FILTER (WHERE open AND cross_team) AS cross_team,
                   count(*) FILTER (WHERE open AND cross_org) AS cross_org
            FROM result_dependency_edges
            """
        ).row(0, named=True)
        headlines += [
            ("open dependencies", edges["open"]),
            ("  across teams", edges["cross_team"]),
            ("  across organisations", edges["cross_org"]),
        ]
    if "dependency_conflicts" in known:
        headlines += red_line_rows(warehouse)
    if "dependency_cycles" in known:
        for level, count in warehouse.query(
            "SELECT level, count(*) FROM result_dependency_cycles GROUP BY ALL ORDER BY level"
        ).iter_rows():
            headlines.append((f"dependency cycles ({level} level)", count))
    if "impediments" in known:
        for level, count in warehouse.query(
            "SELECT level, count(*) FROM result_impediments GROUP BY ALL ORDER BY level"
        ).iter_rows():
            headlines.append((f"impediments at {level} level", count))
    if headlines:
        table = Table("signal", "count", title="Dependencies and impediments")
        for label, count in headlines:
            table.add_row(label, count if isinstance(count, str) else f"{count:,}")
        console.print(table)
    if {"backlog_health", "flow_summary"} <= known:
        teams = warehouse.query(
            """
            SELECT f.team, f.organisation, b.grade, b.ready_depth_sprints, f.cycle_p85,
                   f.throughput_per_week, f.wip
            FROM result_flow_summary f
            LEFT JOIN result_backlog_health b
              ON b.by = 'team' AND b.scope = f.team AND b.organisation = f.organisation
            ORDER BY f.organisation, f.team
            """
        )
        table = Table(
            "team",
            "backlog grade",
            "ready depth (sprints)",
            "cycle time P85 (days)",
            "done / week",
            "WIP",
            title="Backlog health and flow per team",
        )

        def num(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        for team, org, grade, depth, p85, per_week, wip in teams.iter_rows():
            table.add_row(
                f"{team} · {org}",
                grade or "-",
                num(depth, ".1f"),
                num(p85, ".1f"),
                num(per_week, ".1f"),
                num(wip, ",.0f"),
            )
        console.print(table)
    if "forecast_epics" in known:
        epics = warehouse.query(
            """
            SELECT key, title, remaining_items, p50, p85, target_date, p_on_time, driven_by_key,
                   dependency_delay_days_p85
            FROM result_forecast_epics ORDER BY backlog_position LIMIT 8
            """
        )
        table = Table(
            "epic",
            "left",
            "P50",
            "P85",
            "target",
            "on time",
            "waits on (days at P85)",
            title="Forecast: the first epics in backlog order (Monte Carlo, dependency-aware)",
        )
        for key, title, left, p50, p85, target, chance, driver, delay in epics.iter_rows():
            table.add_row(
                f"{key} {title[:40]}",
                f"{left:,}",
                str(p50 or "-"),
                str(p85 or "-"),
                str(target or "-"),
                "-" if chance is None else f"{chance:.0%}",
                f"{driver} ({delay:.0f})" if driver and delay is not None else "-",
            )
        console.print(table)
