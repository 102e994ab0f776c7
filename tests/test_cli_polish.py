"""What `pmolens sync` tells a person (issue 14, point 7): progress against the tracker's own
total, each problem by name (the first few, then how many more), each failure once with the URL,
the source and the environment variable to fix."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
from rich.progress import Progress
from typer.testing import CliRunner

from pmolens.api import console as cli_console
from pmolens.api.cli import ItemsColumn, app
from pmolens.connectors.http import TrackerError
from pmolens.pipeline.sync import _describe, sync_all
from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator, demo_settings
from pmolens.warehouse.config import SourceConfig, settings_from_dict
from pmolens.warehouse.store import Warehouse

runner = CliRunner()


def _source(**extra: object) -> SourceConfig:
    return SourceConfig(
        name="nw",
        kind="jira_cloud",
        organisation="Northwind",
        base_url="https://northwind.atlassian.net",
        email="pmo@northwind.example",
        jql="project = NW",
        token_env="NW_JIRA_TOKEN",
        **extra,
    )


def test_a_401_names_the_url_the_source_and_the_token_variable() -> None:
    refused = TrackerError(
        "GET /rest/api/3/myself: 401 unauthorised - check the token environment variable of "
        "this source",
        401,
    )
    text = _describe(refused, _source())
    assert "GET https://northwind.atlassian.net/rest/api/3/myself" in text
    assert "NW_JIRA_TOKEN" in text and "pmo@northwind.example" in text


def test_a_connection_error_names_the_url() -> None:
    silent = TrackerError(
        "POST /rest/api/3/search/jql failed after 6 attempts (last: ConnectError)"
    )
    text = _describe(silent, _source())
    assert "POST https://northwind.atlassian.net/rest/api/3/search/jql" in text
    assert "is https://northwind.atlassian.net (base_url) right and reachable" in text


def test_problems_are_named_first_few_then_how_many_more() -> None:
    lines = [f"link type 'Handoff {n}' is not configured; stored as relates (x{n})" for n in (2, 3)]
    lines += ["status 'Parked' is not known (x4)", "FK-2: field created unreadable", "one more"]
    with cli_console.console.capture() as captured:
        cli_console.print_problems("nw", 12, "\n".join(lines), 7, cli_console.translator("en"))
    out = captured.get()
    assert "nw: 12 problems" in out
    assert all(line in out for line in lines[:3]) and lines[3] not in out
    assert "and 2 more (all of them: pmolens status, or GET /sync-runs/7)" in out
    with cli_console.console.capture() as captured:
        cli_console.print_problems("nw", 1, lines[0], 7, cli_console.translator("nl"))
    assert "nw: 1 melding" in captured.get() and "en nog" not in captured.get()


def test_a_failed_source_is_printed_once(tmp_path) -> None:
    """`pmolens init` then `pmolens sync` without tokens, in a process of its own (pytest's log
    capture would hide a second print): each source's error once, naming its variable. Before,
    Python's last-resort log handler printed each a second time."""
    names = ("NORTHWIND_JIRA_TOKEN", "FABRIKAM_JIRA_PAT", "CONTOSO_ADO_PAT")
    env = {k: v for k, v in os.environ.items() if k not in names and k != "PMOLENS_LANG"}
    config = tmp_path / "pmolens.toml"
    assert runner.invoke(app, ["init", str(config)]).exit_code == 0
    result = subprocess.run(
        [sys.executable, "-m", "pmolens.api.cli", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    for name in names:
        assert output.count(name) == 1, output
    assert "northwind-jira failed: environment variable NORTHWIND_JIRA_TOKEN" in output
    assert "source 'northwind-jira'" not in output  # the source is said once per line


def test_progress_knows_each_trackers_total(tmp_path, monkeypatch) -> None:
    """Jira Cloud (the id listing), Jira DC (search total) and Azure DevOps (WIQL count) tell
    how many items the run reads; the last report of each source reaches it."""
    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)
    seen: dict[str, list[tuple[int, int | None]]] = {}
    with Simulator(seed=7, size=500) as sim:
        settings = settings_from_dict(demo_settings(sim.url), base_dir=tmp_path)
        with Warehouse(tmp_path / "w.duckdb") as warehouse:
            outcomes = asyncio.run(
                sync_all(
                    warehouse,
                    settings,
                    full=True,
                    progress=lambda s, n, total: seen.setdefault(s, []).append((n, total)),
                )
            )
    assert all(o.ok for o in outcomes)
    items = {o.source: o.result.items for o in outcomes if o.result}
    for source, reports in seen.items():
        done, total = reports[-1]
        assert total is not None and done == total == items[source], (source, reports)


def test_the_progress_column_shows_total_and_time_left_else_a_rate() -> None:
    column = ItemsColumn()
    with Progress(column, transient=True, disable=True) as progress:
        known = progress.add_task("nw", total=1000)
        progress.update(known, completed=200)
        task = progress.tasks[0]
        assert column.render(task).plain.startswith("200 of 1,000 items")
        unknown = progress.add_task("dc", total=None)
        progress.update(unknown, completed=50)
        assert column.render(progress.tasks[1]).plain.startswith("50 items")


def test_the_handed_off_summary_says_the_servers_environment_lacks_the_token() -> None:
    runs = [
        {
            "run_id": 3,
            "source": "northwind-jira",
            "outcome": "failed",
            "items": 0,
            "problems": 0,
            "error": "source 'northwind-jira': environment variable PMOLENS_DEMO_TOKEN "
            "(sources.token_env) is not set - export it with the API token or PAT",
        },
        {
            "run_id": 4,
            "source": "contoso-ado",
            "outcome": "partial",
            "items": 9,
            "problems": 2,
            "problem_text": "iterations of team 'Data': 2 without a path (x2)",
        },
    ]
    server = {"url": "http://127.0.0.1:8765", "pid": 4242}
    with cli_console.console.capture() as out, cli_console.err.capture() as errors:
        cli_console.print_remote_runs(runs, server)
    text = out.get() + errors.get()
    assert "complete" not in text and "partial" in text and "failed" in text
    assert "iterations of team 'Data'" in text
    assert (
        "PMOLENS_DEMO_TOKEN must be set where `pmolens serve` runs (http://127.0.0.1:8765" in text
    )
    assert "--with-simulator" in text
    assert text.count("environment variable PMOLENS_DEMO_TOKEN") == 1
    assert isinstance(httpx.URL(server["url"]), httpx.URL)
