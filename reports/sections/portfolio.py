"""Portfolio overview: epic progress per organisation and team, the hierarchy, the epic list."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc, nowrap

MAX_ROWS = 60
MAX_WEDGES = 1_500  # sunburst nodes before features are left out (see sunburst_nodes)


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    tree = ctx.scoped(ctx.result("portfolio"))
    epics = tree.filter(pl.col("level") == "epic")
    figures = []
    if epics.height:
        figures.append(Figure(t("portfolio_question"), _progress_bars(epics, ctx)))
        figures.append(Figure(t("hierarchy_question"), _sunburst(tree, ctx)))
    ordered = epics.sort(["progress_count", "key"], descending=[False, False], nulls_last=True)
    rows = [
        [
            ctx.link(r["key"], r["url"], r["item_id"]),
            r["title"],
            r["organisation"],
            r["team"] or t("no_team"),
            r["assignee"] or t("unassigned"),
            t(r["status_category"]) if r["status_category"] else "",
            ctx.pct(r["progress_count"] or 0),
            ctx.pct(r["progress_estimate"] or 0),
            nowrap(ctx.day(r["due_date"])) if r["due_date"] else "",
        ]
        for r in ordered.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("epic"),
        t("title"),
        t("organisation"),
        t("team"),
        t("owner"),
        t("status"),
        t("progress_count"),
        t("progress_estimate"),
        t("due"),
    ]
    return Section(
        key="portfolio",
        title=t("portfolio"),
        figures=figures,
        tables=[(t("epic_table"), Table(columns, rows, more=max(0, ordered.height - MAX_ROWS)))],
    )


def _progress_bars(epics: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    t = ctx.t
    rolled = (
        epics.with_columns(pl.col("team").fill_null(t("no_team")))
        .group_by("organisation", "team")
        .agg(pl.col("items_done").sum(), pl.col("items_total").sum(), pl.len().alias("epics"))
        .with_columns(
            (pl.col("items_done") / pl.col("items_total").clip(lower_bound=1)).alias("progress")
        )
        .sort("organisation", "team")
    )
    labels = [
        f"{esc(o)} · {esc(tm)}"
        for o, tm in zip(rolled["organisation"], rolled["team"], strict=True)
    ]
    figure = go.Figure(
        go.Bar(
            x=rolled["progress"].to_list(),
            y=labels,
            orientation="h",
            marker_color="#1f5fbf",
            customdata=list(
                zip(rolled["items_done"], rolled["items_total"], rolled["epics"], strict=True)
            ),
            hovertemplate="%{y}<br>%{x:.0%} (%{customdata[0]}/%{customdata[1]}), "
            + esc(t("epics"))
            + ": %{customdata[2]}<extra></extra>",
        )
    )
    figure.update_layout(
        xaxis={"tickformat": ".0%", "range": [0, 1], "title": t("progress_count")},
        yaxis={"autorange": "reversed"},
        height=max(260, 26 * len(labels) + 80),
        margin={"l": 220, "r": 20, "t": 10, "b": 40},
    )
    return figure


def sunburst_nodes(tree: pl.DataFrame) -> pl.DataFrame:
    """Initiatives, epics and features; features only while that stays under MAX_WEDGES.

    Why: at 100,000 items there are some 6,000 features, half a megabyte of wedges nobody can
    read; their work still counts, in their epic's wedge (``items_total`` rolls it up).
    """
    nodes = tree.filter(pl.col("level").is_in(["initiative", "epic", "feature"]))
    if nodes.height > MAX_WEDGES:
        nodes = nodes.filter(pl.col("level") != "feature")
    return nodes


def _short(title: str | None, n: int = 28) -> str:
    """A wedge label's title part: short enough to fit a wedge."""
    text = (title or "").strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _sunburst(tree: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    """Initiatives, epics (and features) with their work counts, one root per organisation."""
    nodes = sunburst_nodes(tree)
    known = set(nodes["item_id"].to_list())
    ids, labels, parents, values, hover = [], [], [], [], []
    for org in sorted(nodes["organisation"].drop_nulls().unique().to_list()):
        ids.append(f"org:{org}")
        labels.append(esc(org))
        parents.append("")
        values.append(0)
        hover.append(esc(org))
    for r in nodes.iter_rows(named=True):
        parent = r["parent_id"] if r["parent_id"] in known else f"org:{r['organisation']}"
        ids.append(r["item_id"])
        name = ctx.item_label(r["key"], r["item_id"])
        labels.append(esc(f"{name} {_short(r['title'])}".strip()))
        parents.append(parent)
        values.append(0)
        hover.append(
            f"{esc(name)}: {esc(r['title'])}<br>{esc(r['team'] or '')} · "
            f"{ctx.pct(r['progress_count'] or 0)} "
            f"({ctx.num(r['items_done'])}/{ctx.num(r['items_total'])})"
        )
    # leaf size = its own work count, so each wedge is proportional to the work under it
    child_of = set(parents)
    sizes = dict(zip(nodes["item_id"], nodes["items_total"], strict=True))
    values = [
        max(1, int(sizes.get(node, 0)))
        if node not in child_of and not node.startswith("org:")
        else 0
        for node in ids
    ]
    figure = go.Figure(
        go.Sunburst(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            hovertext=hover,
            hoverinfo="text",
            branchvalues="remainder",
            maxdepth=3,
            insidetextorientation="radial",
        )
    )
    figure.update_layout(height=520, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure
