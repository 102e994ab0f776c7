"""What the CLI prints (sync outcomes, warehouse status), shared by the commands and the demo."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from pmolens.pipeline.sync import SyncOutcome
from pmolens.reports.i18n import Lang, translator
from pmolens.warehouse.store import Warehouse
from pmolens.warehouse.transforms.dependencies.timing import RED_LINES, red_line_headline

console = Console(width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 132)


def print_outcomes(outcomes: list[SyncOutcome]) -> None:
    """One row per source run, then each failure as one red line."""
    table = Table(
        "source", "outcome", "items", "links", "history", "deleted", "problems", "seconds"
    )
    for o in outcomes:
        r = o.result
        if r is None:
            table.add_row(o.source, "[red]failed[/red]", "", "", "", "", "", f"{o.seconds:.1f}")
        else:
            table.add_row(
                o.source,
                "[yellow]partial[/yellow]" if r.problems else "[green]ok[/green]",
                f"{r.items:,}",
                f"{r.links:,}",
                f"{r.status_changes:,}",
                f"{r.deleted:,}",
                f"{r.problems:,}",
                f"{o.seconds:.1f}",
            )
    console.print(table)
    for o in outcomes:
        if o.error:
            err.print(f"[red]{o.error}[/red]")


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
    for row in sources.iter_rows(named=True):
        if row["error"]:
            err.print(f"[red]{row['source']}: {row['error']}[/red]")


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
