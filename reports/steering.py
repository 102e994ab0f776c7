"""The HTML steering report: one self-contained file, Dutch or English, print-friendly.

A report is a list of sections (reports/sections/*.py); each takes the ``ReportContext`` and returns
a ``Section``: a title, the question it answers, figures and tables. Adding a section = one module
listed in SECTIONS.

Safety: every untrusted text (titles, names) reaches HTML through Jinja autoescaping and reaches
plotly already HTML-escaped (``esc``); figure JSON is embedded with ``</`` escaped so no string can
close the script element.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal

import jinja2
import plotly.graph_objects as go
import polars as pl

from reports.i18n import Lang, translator
from warehouse.config import Settings
from warehouse.results import ANALYSES, Inputs
from warehouse.store import Warehouse, utcnow

PlotlyMode = Literal["inline", "cdn"]


def esc(value: object) -> str:
    """Text for plotly labels and hover: HTML-escaped (plotly renders a subset of HTML)."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass
class Figure:
    question: str  # the one question this chart answers
    figure: go.Figure

    def spec(self) -> str:
        payload = self.figure.to_plotly_json()
        text = json.dumps(
            {"data": payload.get("data", []), "layout": payload.get("layout", {})},
            default=_json_default,
        )
        return text.replace("</", "<\\/")


def link_cell(key: str | None, url: str | None, fallback: str | None = None) -> object:
    """A table cell naming an item, linked back to its tracker when the item has a URL."""
    text = key or fallback or "?"
    return {"text": text, "href": url} if url else text


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]  # cells: plain values, or {"text": ..., "href": ...} for links
    more: int = 0  # rows left out


@dataclass
class Section:
    key: str
    title: str
    lead: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[str, Table]] = field(default_factory=list)
    headline: list[tuple[str, str]] = field(default_factory=list)  # (label, value) summary figures


@dataclass
class ReportContext:
    inputs: Inputs
    lang: Lang
    organisation: str | None
    freshness: pl.DataFrame
    _results: dict[str, pl.DataFrame] = field(default_factory=dict)
    #: analyses kept for this generation (name -> table), used when the report is as of the sync
    stored: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.t = translator(self.lang)

    def result(self, name: str) -> pl.DataFrame:
        """An analysis for this report's as-of date, computed once per report."""
        if name not in self._results:
            if name in self.stored and self.inputs.warehouse is not None:
                self._results[name] = self.inputs.warehouse.query(f"SELECT * FROM result_{name}")
            else:
                self._results[name] = ANALYSES[name](self.inputs)
        return self._results[name]

    def scoped(self, frame: pl.DataFrame, column: str = "organisation") -> pl.DataFrame:
        if self.organisation and column in frame.columns:
            return frame.filter(pl.col(column) == self.organisation)
        return frame


def _sections() -> list[Any]:
    from reports.sections import (
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

    return [cover, portfolio, backlog, dependencies, forecast, flow, kpis, alignment, impediments]


SECTIONS = _sections


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
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
        if kept.height and kept["as_of"].max() is not None:
            stored = frozenset(kept["name"].to_list()) & frozenset(ANALYSES)
            as_of = kept["as_of"].max()
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


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
