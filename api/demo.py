"""`pmolens demo`: the simulated chain, synced over real HTTP into a fresh warehouse."""

from __future__ import annotations

import asyncio
import os
import shutil
import tomllib
from pathlib import Path

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


def run_demo(directory: Path, *, size: int, seed: int, console: Console) -> int:
    from pmolens.api.console import print_status
    from pmolens.pipeline.refresh import refresh
    from pmolens.pipeline.sync import sync_all
    from pmolens.reports.steering import build_report
    from pmolens.simulator import DEMO_TOKEN, Simulator, demo_settings
    from pmolens.warehouse.store import Warehouse

    directory.mkdir(parents=True, exist_ok=True)
    warehouse_path = directory / "pmolens.duckdb"
    for stale in (warehouse_path, Path(str(warehouse_path) + ".wal")):
        if stale.exists():
            stale.unlink()
    os.environ["PMOLENS_DEMO_TOKEN"] = DEMO_TOKEN
    console.print(
        f"[bold]pmolens demo[/bold]: simulating a chain of three organisations ({size:,} items)"
    )
    with Simulator(seed=seed, size=size) as sim:
        data = demo_settings(sim.url)
        data["warehouse"] = {"path": "pmolens.duckdb"}
        data["server"] = {"host": "127.0.0.1", "port": 8765, "auth": "none"}
        config_path = directory / "pmolens.toml"
        write_config(data, config_path)
        settings = settings_from_dict(data, source_name=str(config_path), base_dir=directory)
        console.print(f"simulator at {sim.url}; config written to {config_path}")
        with Warehouse(settings.warehouse_path) as warehouse:
            outcomes = asyncio.run(sync_all(warehouse, settings, full=True))
            from pmolens.api.console import print_outcomes

            print_outcomes(outcomes)
            if not all(o.ok for o in outcomes):
                return 1
            refresh(warehouse, settings)
            print_status(warehouse)
            for lang in ("en", "nl"):
                out = directory / f"steering-{lang}.html"
                out.write_text(build_report(warehouse, settings, lang=lang), encoding="utf-8")
                console.print(f"steering report ({lang}): {out}")
            _print_findings(warehouse, settings, console)
    shutil.copyfile(directory / "steering-en.html", directory / "steering.html")
    console.print(
        "\n[bold]Next[/bold]\n"
        f"  pmolens status --config {config_path}\n"
        f"  pmolens serve  --config {config_path}    # web app on http://127.0.0.1:8765/, API "
        "docs at /docs; the demo simulator has stopped, so run `pmolens simulator` "
        "beside it for scheduled syncs\n"
        f"  open {directory / 'steering-nl.html'} or {directory / 'steering-en.html'}"
    )
    return 0


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
