"""What the CLI prints (sync outcomes, warehouse status, report deliveries), shared by the
commands and the demo."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pmolens.pipeline.sync import SyncOutcome
from pmolens.reports.i18n import Lang, add_labels, translator
from pmolens.warehouse.config import ConfigError, Settings, load_settings
from pmolens.warehouse.secrets import redact
from pmolens.warehouse.store import Warehouse
from pmolens.warehouse.transforms.dependencies.timing import RED_LINES, red_line_headline

console = Console(width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 132)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (default: $PMOLENS_CONFIG or ./pmolens.toml)."
    ),
]


def settings_or_exit(config: Path | None) -> Settings:
    """The settings of ``config``, or the config error in one line and exit code 2 (every
    command that reads a config file)."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]config error[/red] {exc}")
        raise typer.Exit(2) from None


add_labels(
    {
        "cli_complete": {"en": "complete", "nl": "volledig"},
        "cli_partial": {"en": "partial", "nl": "gedeeltelijk"},
        "cli_failed": {"en": "failed", "nl": "mislukt"},
        "cli_source_failed": {"en": "{source} failed: {error}", "nl": "{source} mislukt: {error}"},
        "cli_problems": {
            "en": "{source}: {n} problems, the data is in but these need a look:",
            "nl": "{source}: {n} meldingen, de gegevens staan erin maar kijk hier naar:",
        },
        "cli_one_problem": {
            "en": "{source}: 1 problem, the data is in but this needs a look:",
            "nl": "{source}: 1 melding, de gegevens staan erin maar kijk hier naar:",
        },
        "cli_more_problems": {
            "en": "and {n} more (all of them: pmolens status, or GET /sync-runs/{run})",
            "nl": "en nog {n} (alle: pmolens status, of GET /sync-runs/{run})",
        },
        "cli_server_env": {
            "en": "{env} must be set where `pmolens serve` runs ({url}, pid {pid}), not only in "
            "this shell: restart the server with it exported",
            "nl": "{env} moet gezet zijn waar `pmolens serve` draait ({url}, pid {pid}), niet "
            "alleen in deze shell: start de server opnieuw met die variabele geëxporteerd",
        },
        "cli_server_env_demo": {
            "en": "(the demo's token: `pmolens serve --with-simulator` sets it)",
            "nl": "(het token van de demo: `pmolens serve --with-simulator` zet het)",
        },
    }
)

PROBLEMS_SHOWN = 3  # a summary names this many problem lines per source, then "and N more"


def cli_lang() -> Lang:
    """The CLI's language: PMOLENS_LANG (nl or en), English by default."""
    chosen = os.environ.get("PMOLENS_LANG", "en").strip().lower()[:2]
    return "nl" if chosen == "nl" else "en"


def outcome_label(outcome: str | None, t: Callable[[str], str]) -> str:
    """A run's outcome as the CLI shows it: complete (green), partial (yellow), failed (red)."""
    style, key = {
        "success": ("green", "cli_complete"),
        "partial": ("yellow", "cli_partial"),
        "failed": ("red", "cli_failed"),
    }.get(outcome or "", ("", ""))
    if not key:
        return escape(outcome or "")
    return f"[{style}]{t(key)}[/{style}]"


def print_outcomes(outcomes: list[SyncOutcome], warehouse: Warehouse | None = None) -> None:
    """One row per source run; below it each failure once (its own words: the URL, the source,
    the environment variable) and each source's problems by name (the first few, then how many
    more), read from the run's record when the warehouse is given."""
    t = translator(cli_lang())
    table = Table(
        "source", "outcome", "items", "links", "history", "deleted", "problems", "seconds"
    )
    for o in outcomes:
        r = o.result
        if r is None:
            outcome = outcome_label("failed", t)
            table.add_row(o.source, outcome, "", "", "", "", "", f"{o.seconds:.1f}")
        else:
            table.add_row(
                o.source,
                outcome_label("partial" if r.problems else "success", t),
                f"{r.items:,}",
                f"{r.links:,}",
                f"{r.status_changes:,}",
                f"{r.deleted:,}",
                f"{r.problems:,}",
                f"{o.seconds:.1f}",
            )
    console.print(table)
    texts: dict[int, str | None] = {}
    runs = [o.result.run_id for o in outcomes if o.result is not None and o.result.problems]
    if warehouse is not None and runs:
        texts = dict(
            warehouse.query(
                "SELECT run_id, problem_text FROM sync_runs WHERE list_contains(?, run_id)",
                [runs],
            ).iter_rows()
        )
    for o in outcomes:
        if o.error:
            print_failure(o.source, o.error, t)
        elif o.result is not None and o.result.problems:
            print_problems(
                o.source, o.result.problems, texts.get(o.result.run_id), o.result.run_id, t
            )


def print_failure(source: str, error: str, t: Callable[[str], str]) -> None:
    """A failed run in one red line, without saying its source twice."""
    for prefix in (f"{source}: ", f"source {source!r}: "):
        error = error.removeprefix(prefix)
    err.print(
        t("cli_source_failed").format(source=source, error=error),
        style="red",
        markup=False,
        soft_wrap=True,
        highlight=False,
    )


def print_problems(
    source: str, count: int, text: str | None, run_id: int, t: Callable[[str], str]
) -> None:
    """A partial run's problems by name: the first PROBLEMS_SHOWN distinct lines (each with its
    count, "(x4)"), then "and N more"."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    head = t("cli_one_problem" if count == 1 else "cli_problems")
    console.print(
        head.format(source=source, n=f"{count:,}"), style="yellow", markup=False, soft_wrap=True
    )
    for line in lines[:PROBLEMS_SHOWN]:
        console.print(f"  - {line}", markup=False, soft_wrap=True, highlight=False)
    if len(lines) > PROBLEMS_SHOWN:
        more = t("cli_more_problems").format(n=len(lines) - PROBLEMS_SHOWN, run=run_id)
        console.print(f"  {more}", markup=False, soft_wrap=True, highlight=False)


def print_remote_runs(runs: list[dict], server: dict) -> None:
    """The runs a server did for `pmolens sync` (handed to it), printed like a local sync: a
    table, each failure once, each source's problems by name. A variable missing in the
    *server's* environment says so: exporting it in this shell does not reach the server."""
    t = translator(cli_lang())
    table = Table("source", "outcome", "items", "problems")
    for run in runs:
        table.add_row(
            run["source"],
            outcome_label(run["outcome"], t),
            f"{run.get('items') or 0:,}",
            f"{run.get('problems') or 0:,}",
        )
    console.print(table)
    missing: set[str] = set()
    for run in runs:
        if run.get("error"):
            print_failure(run["source"], str(run["error"]), t)
            found = _UNSET_ENV.search(str(run["error"]))
            if found:
                missing.add(found[1])
        elif run.get("problems"):
            print_problems(
                run["source"], int(run["problems"]), run.get("problem_text"), run["run_id"], t
            )
    for env in sorted(missing):
        hint = t("cli_server_env").format(env=env, url=server.get("url"), pid=server.get("pid"))
        if env == "PMOLENS_DEMO_TOKEN":
            hint += " " + t("cli_server_env_demo")
        err.print(hint, style="red", markup=False, soft_wrap=True, highlight=False)


_UNSET_ENV = re.compile(r"environment variable (\w+) .*is not set")


def print_status(warehouse: Warehouse) -> None:
    """What is in the warehouse, per source and per organisation; shared by status and demo."""
    sources = warehouse.query(
        """
        SELECT s.source, s.kind, s.organisation,
               count(w.item_id) FILTER (WHERE NOT w.is_deleted) AS items,
               count(w.item_id) FILTER (WHERE w.is_deleted) AS deleted,
               c.cursor, r.outcome, r.finished, r.problems, r.problem_text, r.error
        FROM sources s
        LEFT JOIN work_items w USING (source)
        LEFT JOIN cursors c USING (source)
        LEFT JOIN (SELECT * FROM sync_runs QUALIFY row_number() OVER
                   (PARTITION BY source ORDER BY run_id DESC) = 1) r USING (source)
        GROUP BY ALL ORDER BY s.source
        """
    )
    table = Table(
        "source", "kind", "organisation", "items", "deleted", "last run", "finished", "cursor"
    )
    for row in sources.iter_rows(named=True):
        table.add_row(
            row["source"],
            row["kind"],
            row["organisation"],
            f"{row['items']:,}",
            f"{row['deleted']:,}",
            str(row["outcome"] or "never"),
            _when(row["finished"]),
            _when(row["cursor"]),
        )
    console.print(table)
    for row in sources.iter_rows(named=True):
        if row["error"]:
            console.print(f"[red]{row['source']}[/red]: {row['error']}", markup=True)
        elif row["problem_text"]:
            console.print(f"[yellow]{row['source']}[/yellow]: {row['problem_text']}")
    links = warehouse.query(
        """
        SELECT l.kind,
               count(*) AS links,
               count(*) FILTER (WHERE NOT l.resolved) AS unresolved,
               count(*) FILTER (WHERE a.organisation <> b.organisation) AS cross_organisation,
               count(*) FILTER (WHERE a.team <> b.team) AS cross_team
        FROM links l
        LEFT JOIN work_items a ON a.item_id = l.from_item
        LEFT JOIN work_items b ON b.item_id = l.to_item
        GROUP BY ALL ORDER BY l.kind
        """
    )
    table = Table("link kind", "links", "unresolved", "cross-team", "cross-organisation")
    for row in links.iter_rows(named=True):
        table.add_row(
            row["kind"],
            f"{row['links']:,}",
            f"{row['unresolved']:,}",
            f"{row['cross_team']:,}",
            f"{row['cross_organisation']:,}",
        )
    console.print(table)


def print_deliveries(warehouse: Warehouse, settings: Settings) -> None:
    """The last delivery of each ``[[reports]]`` entry, then each failure as one red line
    (the error was redacted when it was recorded, and is redacted again here)."""
    if not settings.reports:
        return
    last = warehouse.last_deliveries([r.name for r in settings.reports])
    table = Table("report", "cron", "last delivery", "finished", "data as of", "to")
    for report, row in zip(settings.reports, last.iter_rows(named=True), strict=True):
        outcome = row["outcome"] or "never"
        colour = {"success": "green", "failed": "red"}.get(outcome)
        table.add_row(
            report.name,
            report.cron,
            f"[{colour}]{outcome}[/{colour}]" if colour else outcome,
            _when(row["finished"]),
            _when(row["as_of"]),
            row["target"] or "",
        )
    console.print(table)
    for row in last.iter_rows(named=True):
        if row["outcome"] == "failed" and row["error"]:
            console.print(
                f"{row['report']}: {redact(row['error'])}",
                style="red",
                markup=False,
                soft_wrap=True,
            )


def red_line_rows(warehouse: Warehouse, lang: Lang = "en") -> list[tuple[str, str]]:
    """The red-line headline as (label, value) rows, from the kept ``dependency_conflicts``
    result: the red lines, each timing state as "n of N red lines", and the waiting items they
    hold up. The same figures as GET /dependencies/red-lines, the steering report and the
    ``dependency_timing_conflict`` rule (docs/dependencies.md, "Timing and red lines")."""
    t = translator(lang)
    headline = red_line_headline(
        warehouse.query("SELECT open, timing, dependent_id FROM result_dependency_conflicts")
    )
    total = f"{headline['red_lines']:,}"
    return [
        (t("red_lines"), total),
        *(
            (
                f"  {t(f'red_line_{state}')}",
                t("red_lines_of").format(n=f"{headline[state]:,}", total=total),
            )
            for state in RED_LINES
        ),
        (f"  {t('red_line_items')}", f"{headline['waiting_items']:,}"),
    ]


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if hasattr(value, "strftime") else "-"
