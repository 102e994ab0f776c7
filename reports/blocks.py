"""The building blocks every report section returns and the report context it reads from:
``Section`` (title, lead, headline figures), ``Figure`` (one chart answering one question),
``Table`` (cells, links back to the tracker) and ``ReportContext`` (the analyses for the report's
as-of date, its language and organisation scope). Sections import these; the assembler
(``reports.steering``) imports the sections.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import plotly.graph_objects as go
import polars as pl

from pmolens.reports import i18n
from pmolens.reports.i18n import Lang, translator
from pmolens.warehouse.analyses import ANALYSES, Inputs


def esc(value: object) -> str:
    """Text for plotly labels and hover: HTML-escaped (plotly renders a subset of HTML)."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass
class Figure:
    question: str  # the one question this chart answers
    figure: go.Figure | None  # None: not drawn yet, ``note`` says why (e.g. a trend after one sync)
    note: str = ""

    def spec(self) -> str:
        if self.figure is None:
            return "{}"
        payload = self.figure.to_plotly_json()
        text = json.dumps(
            {"data": payload.get("data", []), "layout": payload.get("layout", {})},
            default=_json_default,
        )
        return text.replace("</", "<\\/")


def link_cell(key: str | None, url: str | None, fallback: str | None = None) -> object:
    """A table cell naming an item, linked back to its tracker when the item has a URL; kept on
    one line (a key broken over two lines reads as two keys)."""
    text = key or fallback or "?"
    return {"text": text, "href": url, "nowrap": True}


def nowrap(text: object) -> dict[str, Any]:
    """A cell kept on one line: dates, keys, "team · organisation"."""
    return {"text": "" if text is None else str(text), "href": None, "nowrap": True}


# ------------------------------------------------------------------ team styles

#: 16 colours that stay apart on white and in print (after Trubetskoy's "20 distinct colours",
#: the pale ones left out); each further round of 16 teams gets the next marker symbol and bar
#: pattern, so 64 teams before a (colour, symbol) pair repeats.
PALETTE: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    "#469990", "#800000", "#808000", "#000075", "#a9a9a9", "#bfef45", "#dcbeff", "#ffd700",
)  # fmt: skip
SYMBOLS: tuple[str, ...] = ("circle", "square", "diamond", "triangle-up")
PATTERNS: tuple[str, ...] = ("", "/", "x", ".")


@dataclass(frozen=True)
class Style:
    colour: str
    symbol: str  # for markers (lines, scatters)
    pattern: str  # for bars


def team_styles(teams: list[str]) -> dict[str, Style]:
    """One style per team, in the given order (the report's sorted team list, so a team looks
    the same in every chart); no two teams share colour and symbol (or colour and pattern)."""
    n = len(PALETTE)
    return {
        team: Style(
            PALETTE[i % n], SYMBOLS[(i // n) % len(SYMBOLS)], PATTERNS[(i // n) % len(PATTERNS)]
        )
        for i, team in enumerate(teams)
    }


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
        self._styles: dict[str, Style] | None = None
        self._ado: dict[str, str] | None = None

    # numbers and dates as the reader writes them (reports/i18n.py, Babel)
    def num(self, value: float | int | None, decimals: int = 1) -> str:
        return i18n.number(value, self.lang, decimals)

    def pct(self, share: float | None) -> str:
        return i18n.percent(share, self.lang)

    def day(self, value: date | datetime | None) -> str:
        return i18n.day(value, self.lang)

    def date_axis(self, **extra: Any) -> dict[str, Any]:
        """A date axis whose ticks and hover read as the reader writes days (plotly's month names
        are English, so Dutch gets 14-12-2026)."""
        if self.lang == "en":  # plotly's own adaptive English ticks
            return {"type": "date", "hoverformat": "%d %b %Y", **extra}
        return {"type": "date", "tickformat": "%d-%m-%Y", "hoverformat": "%d-%m-%Y", **extra}

    def team_style(self, team: str | None) -> Style:
        """The team's colour and symbol, the same in every chart of the report."""
        if self._styles is None:
            teams = self.inputs.work_items["team"].drop_nulls().unique().sort().to_list()
            self._styles = team_styles(teams)
        return self._styles.get(team or "", Style("#7f8c8d", "circle-open", ""))

    def item_label(self, key: str | None, item_id: str | None = None) -> str:
        """How a reader recognises an item: its key; an Azure DevOps item (whose key is a bare
        number) with its type and project, "User Story 53 · Payments"."""
        text = key or item_id or "?"
        if not text.isdigit():
            return text
        if self._ado is None:
            items = self.inputs.work_items.filter(pl.col("key").str.contains(r"^\d+$"))
            self._ado = {}
            for i, k, kind, project in items.select(
                "item_id", "key", "raw_type", "project"
            ).iter_rows():
                label = " ".join(p for p in (kind, k) if p) + (f" · {project}" if project else "")
                self._ado[i] = label
                self._ado.setdefault(f"key:{k}", label)
        return self._ado.get(item_id or "", self._ado.get(f"key:{text}", text))

    def link(self, key: str | None, url: str | None, item_id: str | None = None) -> object:
        """``link_cell`` with the item as ``item_label`` names it."""
        return link_cell(self.item_label(key, item_id), url)

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


def trend_note(ctx: ReportContext, moments: list[Any]) -> str:
    """The sentence shown instead of a trend chart until there are two syncs: when there was
    the one so far (a single point on a time axis answers nothing)."""
    if not moments:
        return ctx.t("trend_none")
    last = max(moments)
    when = i18n.moment(last, ctx.lang) if isinstance(last, datetime) else ctx.day(last)
    return ctx.t("trend_later").format(when=when)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
