"""The HTML steering report: one self-contained file, Dutch or English, print-friendly.

A report is a list of sections (reports/sections/*.py); each takes the ``ReportContext`` and returns
a ``Section``: a title, the question it answers, figures and tables. Adding a section = one module
listed in SECTIONS.

Safety: every untrusted text (titles, names) reaches HTML through Jinja autoescaping and reaches
plotly already HTML-escaped (``esc``); figure JSON is embedded with ``</`` escaped so no string can
close the script element.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import jinja2
import polars as pl

from pmolens.reports.blocks import ReportContext
from pmolens.reports.i18n import Lang, moment, number
from pmolens.reports.sections import (
    alignment,
    backlog,
    cover,
    decisions,
    dependencies,
    flow,
    forecast,
    impediments,
    kpis,
    portfolio,
)
from pmolens.warehouse.analyses import Inputs
from pmolens.warehouse.config import Settings
from pmolens.warehouse.results import kept_as_of, past_warehouse, same_moment
from pmolens.warehouse.store import Warehouse, utcnow

PlotlyMode = Literal["inline", "cdn"]
#: plotly's decimal and thousands separators per language (nl: 1.082 and 2,5)
SEPARATORS: dict[str, str] = {"en": ".,", "nl": ",."}


def _sections() -> list[Any]:
    """The report's sections, in reading order (each a module with ``build(ctx)``): what needs a
    decision today opens it (docs/decisions.md)."""
    return [
        decisions,
        cover,
        portfolio,
        backlog,
        dependencies,
        forecast,
        flow,
        kpis,
        alignment,
        impediments,
    ]


SECTIONS = _sections


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pmolens.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("steering.html.j2")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


def render(ctx: ReportContext, *, plotly: PlotlyMode = "inline") -> str:
    sections = [module.build(ctx) for module in SECTIONS()]
    for section in sections:  # plotly's own numbers (axes, hover) as the reader writes them
        for figure in section.figures:
            if figure.figure is not None:
                figure.figure.update_layout(separators=SEPARATORS[ctx.lang])
    import plotly as plotly_pkg

    return _template().render(
        t=ctx.t,
        lang=ctx.lang,
        sections=sections,
        generated=moment(utcnow(), ctx.lang),
        as_of=moment(ctx.inputs.as_of.astimezone(UTC), ctx.lang, seconds=True),
        num=lambda value: number(value, ctx.lang, 1),
        scope=ctx.organisation or ctx.t("all_organisations"),
        plotly_inline=_plotly_js() if plotly == "inline" else None,
        plotly_cdn=f"https://cdn.plot.ly/plotly-{_plotly_js_version(plotly_pkg)}.min.js",
    )


def _plotly_js_version(plotly_pkg: Any) -> str:
    try:
        from plotly.offline import get_plotlyjs_version

        return str(get_plotlyjs_version())
    except ImportError:  # pragma: no cover
        return str(plotly_pkg.__version__)


def build_report(
    warehouse: Warehouse,
    settings: Settings,
    *,
    lang: Lang = "en",
    organisation: str | None = None,
    as_of: datetime | None = None,
    plotly: PlotlyMode = "inline",
) -> str:
    """Everything from the warehouse to the HTML string.

    Without ``as_of`` the report is as of the last refresh and reads the results kept for the
    current generation (computed once after the sync); with ``as_of`` it is as of that moment:
    every section, the executive summary included, sees the warehouse as known then
    (``Inputs.known_at``, the same snapshot the API's ``as_of`` answers from), reading the kept
    results only when ``as_of`` is their moment.
    """
    if as_of is not None:  # on the lake: read it as it was then (its runs and kept results too)
        warehouse = past_warehouse(warehouse, as_of) or warehouse
    kept, names = kept_as_of(warehouse, warehouse.generation())
    if as_of is None or (kept is not None and same_moment(as_of, kept)):
        as_of = kept
    moment = as_of or utcnow()
    stored = names if as_of is not None and as_of == kept else frozenset()
    inputs = Inputs.known_at(warehouse.frames(), settings, moment, warehouse)
    if organisation and organisation not in inputs.work_items["organisation"].unique().to_list():
        known = sorted(inputs.frames["organisations"]["organisation"].to_list())
        raise ValueError(f"unknown organisation {organisation!r}; known: {known}")
    last_runs = warehouse.query(
        """
        SELECT s.source, s.kind, s.organisation, r.finished, r.outcome
        FROM sources s LEFT JOIN (
            SELECT * FROM sync_runs WHERE outcome IN ('success', 'partial', 'failed')
            QUALIFY row_number() OVER (PARTITION BY source ORDER BY run_id DESC) = 1
        ) r USING (source) ORDER BY s.source
        """
    )
    # items per source as of the report's moment, like every other figure
    items = inputs.work_items.group_by("source").agg(pl.len().cast(pl.Int64).alias("items"))
    freshness = last_runs.join(items, on="source", how="left").with_columns(
        pl.col("items").fill_null(0)
    )
    ctx = ReportContext(inputs, lang, organisation, freshness, stored=stored)
    return render(ctx, plotly=plotly)
