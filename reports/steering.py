"""The HTML steering report: one self-contained file, Dutch or English, print-friendly.

A report is a list of sections (reports/sections/*.py); each takes the ``ReportContext`` and returns
a ``Section``: a title, the question it answers, figures and tables. Adding a section = one module
listed in SECTIONS.

Safety: every untrusted text (titles, names) reaches HTML through Jinja autoescaping and reaches
plotly already HTML-escaped (``esc``); figure JSON is embedded with ``</`` escaped so no string can
close the script element.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal

import jinja2

from pmolens.reports.blocks import ReportContext
from pmolens.reports.i18n import Lang
from pmolens.reports.sections import (
    alignment,
    backlog,
    cover,
    dependencies,
    flow,
    forecast,
    impediments,
    kpis,
    portfolio,
)
from pmolens.warehouse.analyses import ANALYSES, Inputs
from pmolens.warehouse.config import Settings
from pmolens.warehouse.store import Warehouse, utcnow

PlotlyMode = Literal["inline", "cdn"]


def _sections() -> list[Any]:
    """The report's sections, in reading order (each a module with ``build(ctx)``)."""
    return [cover, portfolio, backlog, dependencies, forecast, flow, kpis, alignment, impediments]


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
    import plotly as plotly_pkg

    return _template().render(
        t=ctx.t,
        lang=ctx.lang,
        sections=sections,
        generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        as_of=ctx.inputs.as_of.strftime("%Y-%m-%d"),
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
    current generation (computed once after the sync); with ``as_of`` it computes them for that
    moment.
    """
    stored: frozenset[str] = frozenset()
    if as_of is None:
        kept = warehouse.query(
            "SELECT name, as_of FROM results WHERE generation = ?", [warehouse.generation()]
        )
        last = kept["as_of"].max() if kept.height else None
        if isinstance(last, datetime):
            stored = frozenset(kept["name"].to_list()) & frozenset(ANALYSES)
            as_of = last
    inputs = Inputs(warehouse.frames(), settings, as_of or utcnow(), warehouse)
    if organisation and organisation not in inputs.work_items["organisation"].unique().to_list():
        known = sorted(inputs.frames["organisations"]["organisation"].to_list())
        raise ValueError(f"unknown organisation {organisation!r}; known: {known}")
    freshness = warehouse.query(
        """
        SELECT s.source, s.kind, s.organisation, r.finished, r.outcome,
               (SELECT count(*) FROM work_items w WHERE w.source = s.source AND NOT w.is_deleted)
                   AS items
        FROM sources s LEFT JOIN (
            SELECT * FROM sync_runs WHERE outcome IN ('success', 'partial', 'failed')
            QUALIFY row_number() OVER (PARTITION BY source ORDER BY run_id DESC) = 1
        ) r USING (source) ORDER BY s.source
        """
    )
    ctx = ReportContext(inputs, lang, organisation, freshness, stored=stored)
    return render(ctx, plotly=plotly)
