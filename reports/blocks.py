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
from typing import Any

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.i18n import Lang, translator
from pmolens.warehouse.analyses import ANALYSES, Inputs


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


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
