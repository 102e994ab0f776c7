"""Flow metrics: cycle-time scatter with percentile lines, throughput per week, cumulative flow,
aging WIP against each team's percentiles, and the per-team summary. Definitions: docs/flow.md.

Figures stay small at any size: the scatters are sampled to MAX_POINTS, throughput and CFD are
aggregated, tables are capped at MAX_ROWS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc
from pmolens.reports.i18n import add_labels
from pmolens.warehouse.analyses.flow import flow_params
from pmolens.warehouse.transforms.flow import NO_GROUP, cycle_time_percentiles

MAX_POINTS = 2000
MAX_ROWS = 40
MAX_TEAMS = 12  # stacked bars beyond this lump the rest into "other"

add_labels(
    {
        "flow_title": {"en": "Flow", "nl": "Doorstroming"},
        "flow_lead": {
            "en": "How work flows through the teams, from status history: cycle time (first in "
            "progress to done), throughput, work in progress and how old the open work is.",
            "nl": "Hoe werk door de teams stroomt, uit de statushistorie: doorlooptijd (eerste "
            "keer onderhanden tot gereed), doorvoer, onderhanden werk en hoe oud het open werk is.",
        },
        "flow_cycle_p85": {"en": "Cycle time P85 (days)", "nl": "Doorlooptijd P85 (dagen)"},
        "flow_throughput_week": {"en": "Done per week", "nl": "Gereed per week"},
        "flow_wip_now": {"en": "Work in progress", "nl": "Onderhanden werk"},
        "flow_aging_over": {
            "en": "In progress longer than P85",
            "nl": "Langer onderhanden dan P85",
        },
        "flow_efficiency": {"en": "Flow efficiency", "nl": "Flow-efficiëntie"},
        "flow_eff_no_waiting_states_configured": {
            "en": "not measurable: no waiting states configured",
            "nl": "niet meetbaar: geen wachtstatussen ingesteld",
        },
        "flow_eff_no_waiting_status_seen": {
            "en": "not measurable: no waiting status in the history",
            "nl": "niet meetbaar: nooit een wachtstatus in de historie",
        },
        "flow_eff_teams": {"en": "{n} of {m} teams", "nl": "{n} van {m} teams"},
        "flow_scatter_q": {
            "en": "How long did finished items take (dots), and within how many days do 50/85/95% "
            "finish (lines)?",
            "nl": "Hoe lang deden afgeronde items erover (punten), en binnen hoeveel dagen is "
            "50/85/95% klaar (lijnen)?",
        },
        "flow_throughput_q": {
            "en": "How many items does each team finish per week?",
            "nl": "Hoeveel items rondt elk team per week af?",
        },
        "flow_cfd_q": {
            "en": "Is work arriving faster than it finishes (cumulative flow, all teams in scope)?",
            "nl": "Komt er sneller werk bij dan er afgerond wordt (cumulatieve flow, alle teams)?",
        },
        "flow_aging_q": {
            "en": "Which open items are older than their team usually needs (dots above the "
            "P85 mark)?",
            "nl": "Welke open items zijn ouder dan hun team gewoonlijk nodig heeft (punten boven "
            "de P85-markering)?",
        },
        "flow_done_date": {"en": "Finished on", "nl": "Afgerond op"},
        "flow_days": {
            "en": "Cycle time (days, start and finish day counted)",
            "nl": "Doorlooptijd (dagen, start- en opleverdag meegeteld)",
        },
        "flow_week": {"en": "Week", "nl": "Week"},
        "flow_date": {"en": "Date", "nl": "Datum"},
        "flow_age": {
            "en": "Age (days, start day counted)",
            "nl": "Leeftijd (dagen, startdag meegeteld)",
        },
        "flow_other": {"en": "other teams", "nl": "overige teams"},
        "flow_sampled": {"en": "sample of", "nl": "steekproef van"},
        "flow_summary_table": {
            "en": "Flow per team over the last {n} days (who acts: the team, with its PO)",
            "nl": "Doorstroming per team over de laatste {n} dagen (actiehouder: het team, met "
            "zijn PO)",
        },
        "flow_aging_table": {
            "en": "Oldest work in progress (the team's P85 shows what is normal; act from the top)",
            "nl": "Oudste onderhanden werk (de P85 van het team laat zien wat normaal is; begin "
            "bovenaan)",
        },
        "flow_done": {"en": "Done", "nl": "Gereed"},
        "flow_p50": {"en": "P50 (days)", "nl": "P50 (dagen)"},
        "flow_p85": {"en": "P85 (days)", "nl": "P85 (dagen)"},
        "flow_p95": {"en": "P95 (days)", "nl": "P95 (dagen)"},
        "flow_lead_p85": {"en": "Lead time P85", "nl": "Levertijd P85"},
        "flow_littles": {
            "en": "Little's Law (WIP / predicted)",
            "nl": "Wet van Little (OHW / verwacht)",
        },
        "flow_item": {"en": "Item", "nl": "Item"},
        "flow_team_p85": {"en": "Team P85", "nl": "P85 team"},
        "flow_band": {"en": "Band", "nl": "Klasse"},
        "flow_band_above": {"en": "above P{p}", "nl": "boven P{p}"},
        "flow_band_within": {"en": "within P{p}", "nl": "binnen P{p}"},
        "flow_band_no_history": {"en": "no history", "nl": "geen historie"},
        "flow_no_data": {
            "en": "no finished work with status history yet",
            "nl": "nog geen afgerond werk met statushistorie",
        },
    }
)


def _teams_in_scope(ctx: ReportContext) -> pl.DataFrame:
    return ctx.scoped(ctx.result("flow_summary"))


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    p = flow_params(ctx.inputs)
    summary = _teams_in_scope(ctx)
    teams = summary["team"].to_list()
    cycles = ctx.scoped(ctx.result("flow_cycle_times"))
    aging = ctx.scoped(ctx.result("flow_aging"))
    throughput = ctx.result("flow_throughput").filter(pl.col("team").is_in(teams))
    cfd = ctx.result("flow_cfd").filter(pl.col("team").is_in(teams))
    overall = cycle_time_percentiles(
        cycles.with_columns(pl.lit("all").alias("team")), ctx.inputs.as_of, p
    )
    p85 = overall["cycle_p85"][0] if overall.height and "cycle_p85" in overall.columns else None
    headline = [
        (t("flow_cycle_p85"), ctx.num(p85)),
        (
            t("flow_throughput_week"),
            ctx.num(float(summary["throughput_per_week"].sum()) if summary.height else 0),
        ),
        (t("flow_wip_now"), ctx.num(int(summary["wip"].sum()) if summary.height else 0)),
        (
            t("flow_aging_over"),
            ctx.num(int(summary["aging_over_p85"].sum()) if summary.height else 0),
        ),
        (
            t("flow_efficiency"),
            _efficiency_headline(ctx.scoped(ctx.result("flow_efficiency")), ctx),
        ),
    ]
    figures = []
    recent = cycles.filter(
        pl.col("done_at") > ctx.inputs.as_of - timedelta(days=p.window_days)
    ).filter(pl.col("cycle_days").is_not_null())
    if recent.height:
        figures.append(Figure(t("flow_scatter_q"), _scatter(recent, overall, ctx)))
    if throughput.height:
        figures.append(Figure(t("flow_throughput_q"), _throughput(throughput, ctx)))
    if cfd.height:
        figures.append(Figure(t("flow_cfd_q"), _cfd(cfd, ctx)))
    if aging.height:
        figures.append(Figure(t("flow_aging_q"), _aging(aging, ctx)))
    return Section(
        key="flow",
        title=t("flow_title"),
        lead=t("flow_lead") if cycles.height else f"{t('flow_lead')} ({t('flow_no_data')})",
        headline=headline,
        figures=figures,
        tables=[
            (
                t("flow_summary_table").replace("{n}", str(p.window_days)),
                _summary_table(summary, ctx),
            ),
            (t("flow_aging_table"), _aging_table(aging, ctx)),
        ],
    )


def _sample(frame: pl.DataFrame) -> pl.DataFrame:
    """At most MAX_POINTS rows, the same ones every run (seeded)."""
    return frame if frame.height <= MAX_POINTS else frame.sample(MAX_POINTS, seed=7)


def _scatter(recent: pl.DataFrame, overall: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    t = ctx.t
    points = _sample(recent).sort("done_at")
    label = t("flow_days")
    if points.height < recent.height:
        label = f"{label} ({t('flow_sampled')} {ctx.num(points.height)}/{ctx.num(recent.height)})"
    figure = go.Figure(
        go.Scattergl(
            x=points["done_at"].to_list(),
            y=points["cycle_days"].to_list(),
            mode="markers",
            marker={"size": 5, "color": "rgba(31,95,191,0.55)"},
            text=[
                f"{esc(k)} · {esc(tm)}"
                for k, tm in zip(points["key"], points["team"].fill_null(""), strict=True)
            ],
            hovertemplate="%{text}<br>%{y} d<extra></extra>",
            showlegend=False,
        )
    )
    colours = {"50": "#2e7d32", "85": "#ef6c00", "95": "#c62828"}
    for q, colour in colours.items():
        column = f"cycle_p{q}"
        if overall.height and column in overall.columns and overall[column][0] is not None:
            value = float(overall[column][0])
            figure.add_hline(
                y=value,
                line={"color": colour, "dash": "dash", "width": 1},
                annotation_text=f"P{q}: {ctx.num(value)}",
                annotation_position="top left",
            )
    figure.update_layout(
        height=340,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis=ctx.date_axis(title=t("flow_done_date")),
        yaxis={"title": label, "rangemode": "tozero"},
    )
    return figure


def _top_teams(frame: pl.DataFrame, value: str, other: str) -> pl.DataFrame:
    """``team`` kept for the MAX_TEAMS biggest by ``value``, the rest relabelled ``other``."""
    biggest = (
        frame.group_by("team")
        .agg(pl.col(value).sum())
        .sort([value, "team"], descending=[True, False])
        .head(MAX_TEAMS)["team"]
    )
    return frame.with_columns(
        pl.when(pl.col("team").is_in(biggest.implode()))
        .then(pl.col("team"))
        .otherwise(pl.lit(other))
        .alias("team")
    )


def _throughput(weekly: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    rolled = (
        _top_teams(weekly, "items", ctx.t("flow_other"))
        .group_by("team", "week")
        .agg(pl.col("items").sum())
        .sort("team", "week")
    )
    figure = go.Figure()
    other = ctx.t("flow_other")
    for team in sorted(set(rolled["team"].to_list())):
        series = rolled.filter(pl.col("team") == team)
        style = ctx.team_style(team)
        figure.add_trace(
            go.Bar(
                x=series["week"].to_list(),
                y=series["items"].to_list(),
                name=esc(team),
                marker={
                    "color": "#b0bec5" if team == other else style.colour,
                    "pattern": {"shape": "" if team == other else style.pattern},
                },
            )
        )
    figure.update_layout(
        barmode="stack",
        height=320,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis=ctx.date_axis(title=ctx.t("flow_week")),
        yaxis={"title": ctx.t("items")},
    )
    return figure


def _cfd(cfd: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    daily = cfd.group_by("date").agg(pl.col("todo", "in_progress", "done").sum()).sort("date")
    figure = go.Figure()
    colours = {"done": "#2e7d32", "in_progress": "#1f5fbf", "todo": "#b0bec5"}
    for band, colour in colours.items():  # bottom-up: done, in progress, to do
        figure.add_trace(
            go.Scatter(
                x=daily["date"].to_list(),
                y=daily[band].to_list(),
                name=esc(ctx.t(band)),
                mode="lines",
                stackgroup="cfd",
                line={"width": 0.5, "color": colour},
            )
        )
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis=ctx.date_axis(title=ctx.t("flow_date")),
        yaxis={"title": ctx.t("items")},
    )
    return figure


def _aging(aging: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    t = ctx.t
    points = _sample(aging)
    figure = go.Figure(
        go.Scattergl(
            x=[esc(tm) for tm in points["team"].to_list()],
            y=points["wip_age_days"].to_list(),
            mode="markers",
            marker={
                "size": 6,
                "color": [
                    "#c62828" if over else "rgba(31,95,191,0.6)"
                    for over in points["over_p85"].fill_null(False).to_list()
                ],
            },
            text=[
                f"{esc(k)}: {esc(s)}"
                for k, s in zip(points["key"], points["raw_status"].fill_null(""), strict=True)
            ],
            hovertemplate="%{x} · %{text}<br>%{y} d<extra></extra>",
            showlegend=False,
        )
    )
    if "team_p85" in aging.columns:
        marks = aging.group_by("team").agg(pl.col("team_p85").first()).sort("team")
        marks = marks.filter(pl.col("team_p85").is_not_null())
        figure.add_trace(
            go.Scatter(
                x=[esc(tm) for tm in marks["team"].to_list()],
                y=marks["team_p85"].round(1).to_list(),
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 28, "color": "#ef6c00"},
                name="P85",
                hovertemplate="%{x} P85: %{y} d<extra></extra>",
            )
        )
    figure.update_layout(
        height=360,
        margin={"l": 50, "r": 20, "t": 10, "b": 100},
        xaxis={"title": t("team"), "tickangle": -45, "categoryorder": "category ascending"},
        yaxis={"title": t("flow_age"), "type": "log", **_log_ticks(aging, ctx)},
    )
    return figure


def _log_ticks(aging: pl.DataFrame, ctx: ReportContext) -> dict[str, Any]:
    """Ticks of the log age axis at 1-2-5 steps, only as many as fit: plotly's own minor labels
    on a log axis overlap."""
    top = aging["wip_age_days"].max()
    most = float(top) if isinstance(top, int | float) else 1.0
    ticks = [v * 10**e for e in range(0, 6) for v in (1, 2, 5) if v * 10**e <= most * 1.5]
    return {"tickvals": ticks, "ticktext": [ctx.num(v, 0) for v in ticks], "minor": {"ticks": ""}}


def _efficiency_headline(efficiency: pl.DataFrame, ctx: ReportContext) -> str:
    """Σ active / Σ cycle over the teams whose efficiency is measurable ("n of m teams" when
    some are not); the reason instead of a number when none is (docs/flow.md)."""
    t = ctx.t
    measurable = efficiency.filter(pl.col("efficiency_note").is_null())
    active = float(measurable["active_days"].sum() or 0.0)
    cycle = active + float(measurable["waiting_days"].sum() or 0.0)
    if cycle:
        value = ctx.pct(active / cycle)
        if measurable.height < efficiency.height:
            teams = t("flow_eff_teams").format(
                n=ctx.num(measurable.height), m=ctx.num(efficiency.height)
            )
            value = f"{value} ({teams})"
        return value
    notes = efficiency["efficiency_note"].drop_nulls().unique().sort().to_list()
    return t(f"flow_eff_{notes[0]}") if notes else "–"


def _efficiency_cell(value: float | None, note: str | None, ctx: ReportContext) -> str:
    """The team's flow efficiency, or why it is not measurable."""
    if value is None and note:
        return ctx.t(f"flow_eff_{note}")
    return ctx.pct(value)


def _summary_table(summary: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            r["team"] if r["team"] != NO_GROUP else t("no_team"),
            r["organisation"] or "",
            r["items_done"],
            ctx.num(r.get("cycle_p50")),
            ctx.num(r.get("cycle_p85")),
            ctx.num(r.get("cycle_p95")),
            ctx.num(r.get("lead_p85")),
            ctx.num(r["throughput_per_week"]),
            r["wip"],
            r["aging_over_p85"],
            _efficiency_cell(r["flow_efficiency"], r.get("efficiency_note"), ctx),
            ctx.num(r["littles_ratio"], 2),
        ]
        for r in summary.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("team"),
        t("organisation"),
        t("flow_done"),
        t("flow_p50"),
        t("flow_p85"),
        t("flow_p95"),
        t("flow_lead_p85"),
        t("flow_throughput_week"),
        t("flow_wip_now"),
        t("flow_aging_over"),
        t("flow_efficiency"),
        t("flow_littles"),
    ]
    return Table(columns, rows, more=max(0, summary.height - MAX_ROWS))


def _band(band: str | None, t: Any) -> str:
    """'above_p85' -> 'above P85' in the report's language."""
    if not band:
        return ""
    kind, _, pct = band.rpartition("_p")
    if not pct.isdigit():
        return t(f"flow_band_{band}")
    return t(f"flow_band_{kind}").format(p=pct)


def _aging_table(aging: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            ctx.link(r["key"], r["url"], r["item_id"]),
            r["title"] or "",
            r["team"] if r["team"] != NO_GROUP else t("no_team"),
            r["raw_status"] or "",
            r["wip_age_days"],
            ctx.num(r.get("team_p85")),
            _band(r["age_band"], t),
        ]
        for r in aging.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("flow_item"),
        t("title"),
        t("team"),
        t("status"),
        t("flow_age"),
        t("flow_team_p85"),
        t("flow_band"),
    ]
    return Table(columns, rows, more=max(0, aging.height - MAX_ROWS))
