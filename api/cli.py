"""The `pmolens` command line (Typer + Rich)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from pmolens.api.console import (
    ConfigOption,
    console,
    err,
    print_deliveries,
    print_outcomes,
    print_remote_runs,
    print_status,
    settings_or_exit,
)
from pmolens.warehouse.config import DEFAULT_CONFIG, ConfigError, Settings

# A source's failure is printed once, in the sync summary; pipeline.sync logs it too, which
# Python's last-resort handler would otherwise print a second time (before the summary).
logging.getLogger("pmolens.sync").addHandler(logging.NullHandler())

app = typer.Typer(
    help="pmolens: steering analytics across teams, organisations and trackers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `make demo | tee`) gets room for the tables instead of rich's 80 columns.


def _owner(settings: Settings) -> dict | None:
    """The running `pmolens serve` that owns the warehouse (its claim checked), else None.
    A lake has no owner: every process opens it itself."""
    from pmolens.api.handoff import HandoffError, running_server

    if settings.warehouse.kind == "ducklake":
        return None

    try:
        return running_server(settings)
    except HandoffError as exc:
        err.print(str(exc), soft_wrap=True, style="red", markup=False)
        raise typer.Exit(1) from None


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example config.")] = Path(
        DEFAULT_CONFIG
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example pmolens.toml (Jira Cloud, Jira Data Center, Azure DevOps)."""
    from pmolens.api.example_config import EXAMPLE

    if path.exists() and not force:
        err.print(f"{path} exists; use --force to overwrite")
        raise typer.Exit(1)
    path.write_text(EXAMPLE, encoding="utf-8")
    console.print(
        f"wrote {path}: fill in your sources, export the token variables, then `pmolens sync`"
    )


@app.command()
def sync(
    config: ConfigOption = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Ignore the cursor: read everything.")
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Let reconciliation mark more than the source's max_delete_share deleted.",
        ),
    ] = False,
) -> None:
    """Pull sources into the warehouse (incremental from the last cursor unless --full)."""
    settings = settings_or_exit(config)
    if not settings.sources:
        err.print("no [[sources]] in the config: add one (see `pmolens init`)")
        raise typer.Exit(2)
    server = _owner(settings)
    if server is not None:
        _sync_via_server(server, settings, source, full, allow_mass_delete)
        return
    ok = _sync_here(settings, source, full, allow_mass_delete)
    raise typer.Exit(0 if ok else 1)


def _sync_here(
    settings: Settings, sources: list[str] | None, full: bool, allow_mass_delete: bool = False
) -> bool:
    import duckdb

    from pmolens.pipeline.sync import sync_all
    from pmolens.warehouse.store import Warehouse

    try:
        chosen = [settings.source(n).name for n in sources] if sources else None
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    from pmolens.warehouse.lake import LakeError

    try:
        opened = Warehouse.open(settings)
    except LakeError as exc:
        err.print(str(exc), soft_wrap=True, style="red", markup=False)
        raise typer.Exit(1) from None
    except duckdb.IOException as exc:  # another process holds the file (not a pmolens serve)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(
            f"the warehouse is in use by another process: {first}", soft_wrap=True, style="red"
        )
        raise typer.Exit(1) from None
    with (
        opened as warehouse,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            ItemsColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
    ):
        tasks: dict[str, TaskID] = {}

        def progress(name: str, items: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=None)
            # the tracker's count may lag a change made while the run reads: never below read
            bar.update(
                tasks[name], completed=items, total=None if total is None else max(total, items)
            )

        outcomes = asyncio.run(
            sync_all(
                warehouse,
                settings,
                sources=chosen,
                full=full,
                progress=progress,
                allow_mass_delete=allow_mass_delete,
            )
        )
        if any(o.ok for o in outcomes):
            from pmolens.pipeline.refresh import refresh_after_sync

            # analytics computed once per sync, read many times (on the lake: by one process)
            refresh_after_sync(warehouse, settings)
        print_outcomes(outcomes, warehouse)
    return all(o.ok for o in outcomes)


class ItemsColumn(ProgressColumn):
    """Items read of the tracker's total with the time left ("1,200 of 5,000 items, 40 s
    left"), or, where the tracker gives no total, the rate ("1,200 items, 310 items/s")."""

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        speed = task.speed
        if task.total is None:
            rate = f", {speed:,.0f} items/s" if speed else ""
            return Text(f"{done:,} items{rate}")
        left = ""
        if speed and task.total > done:
            seconds = (task.total - done) / speed
            left = (
                f", {seconds:,.0f} s left" if seconds < 120 else f", {seconds / 60:,.0f} min left"
            )
        return Text(f"{done:,} of {int(task.total):,} items{left}")


def _sync_via_server(
    server: dict,
    settings: Settings,
    sources: list[str] | None,
    full: bool,
    allow_mass_delete: bool = False,
) -> None:
    """Another process (pmolens serve) owns the warehouse: ask it to run the sync."""
    from pmolens.api.handoff import trigger_remote_sync

    console.print(f"pmolens serve is running at {server['url']}: handing the sync to it")
    try:
        results = trigger_remote_sync(
            server, settings, sources, full, allow_mass_delete=allow_mass_delete
        )
    except RuntimeError as exc:
        err.print(str(exc), soft_wrap=True, style="red", markup=False)
        raise typer.Exit(1) from None
    print_remote_runs(results, server)
    if any(run["outcome"] == "failed" for run in results):
        raise typer.Exit(1)


@app.command()
def status(config: ConfigOption = None) -> None:
    """Sources, last runs, counts and cursors; the last delivery of each scheduled report."""
    settings = settings_or_exit(config)
    if _owner(settings) is not None:
        console.print("pmolens serve owns the warehouse: see its /health and /sync-runs")
        raise typer.Exit(0)
    if settings.warehouse.kind == "duckdb" and not settings.warehouse_path.exists():
        err.print(f"no warehouse at {settings.warehouse_path} yet: run `pmolens sync`")
        raise typer.Exit(1)
    from pmolens.warehouse.store import Warehouse

    with Warehouse.open(settings) as warehouse:
        print_status(warehouse)
        print_deliveries(warehouse, settings)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
    with_simulator: Annotated[
        bool,
        typer.Option(
            "--with-simulator",
            help="Also run the tracker simulator where the demo config's sources expect it "
            "(`pmolens demo` prints this command).",
        ),
    ] = False,
    simulator_size: Annotated[
        int, typer.Option(help="Work items in the simulated chain (as given to `pmolens demo`).")
    ] = 2000,
    simulator_seed: Annotated[int, typer.Option(help="Simulator seed (as given to the demo).")] = 7,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler",
            help="Serve only: never run the scheduled syncs and reports (a replica on a lake).",
        ),
    ] = False,
) -> None:
    """Serve the API and run the scheduled syncs; this process then owns the warehouse."""
    settings = settings_or_exit(config)
    from pmolens.api.app import serve as run_server

    if _owner(settings) is not None:
        err.print("another pmolens serve already owns this warehouse")
        raise typer.Exit(1)
    sim = None
    if with_simulator:
        from pmolens.api.demo import DemoError, start_simulator

        try:
            sim = start_simulator(settings, size=simulator_size, seed=simulator_seed)
        except DemoError as exc:
            err.print(str(exc), soft_wrap=True, style="red", markup=False)
            raise typer.Exit(2) from None
        console.print(f"tracker simulator at {sim.url} ({simulator_size:,} items)")
    try:
        run_server(settings, host=host, port=port, scheduler=not no_scheduler)
    except ConfigError as exc:
        err.print(f"[red]config error[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        if sim is not None:
            sim.stop()


@app.command()
def report(
    config: ConfigOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write (default steering.html, or .pdf)."),
    ] = None,
    lang: Annotated[str, typer.Option(help="nl or en.")] = "en",
    organisation: Annotated[str | None, typer.Option(help="Only this organisation.")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Report as of this date (YYYY-MM-DD).")
    ] = None,
    plotly: Annotated[
        str, typer.Option(help="inline (offline, default) or cdn (small file).")
    ] = "inline",
    pdf: Annotated[
        bool,
        typer.Option(
            "--pdf", help="Print the report to PDF (A4 landscape) with headless Chromium."
        ),
    ] = False,
) -> None:
    """Write the HTML steering report (self-contained, print-friendly), or with --pdf the PDF."""
    from datetime import UTC, date, datetime, time

    from pmolens.reports.i18n import Lang
    from pmolens.reports.steering import PlotlyMode, build_report
    from pmolens.warehouse.store import Warehouse

    langs: dict[str, Lang] = {"nl": "nl", "en": "en"}
    modes: dict[str, PlotlyMode] = {"inline": "inline", "cdn": "cdn"}
    settings = settings_or_exit(config)
    if lang not in langs or plotly not in modes:
        err.print("--lang must be nl or en; --plotly must be inline or cdn")
        raise typer.Exit(2)
    if pdf:
        from pmolens.reports.i18n import translator
        from pmolens.reports.pdf import chromium_path

        if chromium_path() is None:  # say so before the report is built
            err.print(translator(langs[lang])("pdf_no_chromium"), soft_wrap=True, markup=False)
            raise typer.Exit(2)
    target = out or Path("steering.pdf" if pdf else "steering.html")
    moment = None
    if as_of:
        try:
            moment = datetime.combine(date.fromisoformat(as_of), time(23, 59, 59), tzinfo=UTC)
        except ValueError:
            err.print(f"--as-of {as_of!r}: use YYYY-MM-DD")
            raise typer.Exit(2) from None
    if _owner(settings) is not None:
        path = "/reports/steering.pdf" if pdf else "/reports/steering"
        err.print(f"pmolens serve owns the warehouse: fetch GET {path} from it instead")
        raise typer.Exit(1)
    with Warehouse.open(settings) as warehouse:
        try:
            page = build_report(
                warehouse,
                settings,
                lang=langs[lang],
                organisation=organisation,
                as_of=moment,
                plotly="inline" if pdf else modes[plotly],
            )
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    if pdf:
        from pmolens.reports.pdf import NoChromium, PdfUnavailable, print_html

        try:
            printed = print_html(page, langs[lang])
        except PdfUnavailable as exc:
            err.print(str(exc), soft_wrap=True, markup=False)
            raise typer.Exit(2 if isinstance(exc, NoChromium) else 1) from None
        target.write_bytes(printed.pdf)
        console.print(
            f"wrote {target} ({printed.pages} pages, {len(printed.pdf) / 1e6:.1f} MB, {lang}, "
            f"printed in {printed.seconds:.1f} s)"
        )
        return
    target.write_text(page, encoding="utf-8")
    console.print(f"wrote {target} ({len(page) / 1e6:.1f} MB, {lang})")


@app.command()
def deliver(
    name: Annotated[str, typer.Argument(help="The [[reports]] entry to deliver now.")],
    config: ConfigOption = None,
) -> None:
    """Deliver one scheduled report now (mail and/or folder, as configured) and record it."""
    settings = settings_or_exit(config)
    try:
        report = settings.report(name)
    except ConfigError as exc:
        err.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if _owner(settings) is not None:
        err.print(
            "pmolens serve owns the warehouse and delivers this report on its cron "
            f"({report.cron}); stop it to deliver from here"
        )
        raise typer.Exit(1)
    if settings.warehouse.kind == "duckdb" and not settings.warehouse_path.exists():
        err.print(f"no warehouse at {settings.warehouse_path} yet: run `pmolens sync`")
        raise typer.Exit(1)
    from pmolens.reports.delivery import deliver as deliver_report
    from pmolens.warehouse.store import Warehouse

    with Warehouse.open(settings) as warehouse:
        done = deliver_report(warehouse, settings, report)
    if done.error:
        err.print(f"{name}: {done.error}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"delivered {name} to {done.target}", markup=False, soft_wrap=True)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option(help="Where the demo config and warehouse go.")] = Path(
        "demo"
    ),
    size: Annotated[int, typer.Option(help="Work items in the simulated chain.")] = 2000,
    seed: Annotated[int, typer.Option(help="Simulator seed (same seed, same portfolio).")] = 7,
    port: Annotated[int, typer.Option(help="Port the demo config gives `pmolens serve`.")] = 8765,
    simulator_port: Annotated[
        int,
        typer.Option(
            help="Port of the demo's simulator, kept in the demo config for "
            "`pmolens serve --with-simulator`."
        ),
    ] = 8901,
) -> None:
    """Start the tracker simulator, sync the demo chain into a fresh warehouse, show what landed."""
    from pmolens.api.demo import run_demo

    sys.exit(
        run_demo(
            directory,
            size=size,
            seed=seed,
            console=console,
            port=port,
            simulator_port=simulator_port,
        )
    )


@app.command()
def simulator(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8901,
    size: Annotated[int, typer.Option()] = 2000,
    seed: Annotated[int, typer.Option()] = 7,
    latency_ms: Annotated[float, typer.Option(help="Added to every response.")] = 0.0,
) -> None:
    """Run the tracker simulator (Jira Cloud, Jira DC, Azure DevOps) in the foreground."""
    from pmolens.simulator.server import serve_forever

    serve_forever(host=host, port=port, size=size, seed=seed, latency_ms=latency_ms)


def _register_warehouse_commands() -> None:
    from pmolens.api.warehouse_cli import register

    register(app)


_register_warehouse_commands()  # pmolens warehouse expire|copy, pmolens export --parquet


def main() -> None:
    """The ``pmolens`` command: a configuration problem found after the config was read (a
    warehouse file this pmolens cannot open) is one line and exit 2, like a config error."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app(standalone_mode=True)
    except ConfigError as exc:  # one line however wide: not wrapped at the console's width
        err.print(f"[red]config error[/red] {exc}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
