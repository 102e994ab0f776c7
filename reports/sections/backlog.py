"""Backlog health: one card per programme (Chief PO) and per team (PO) backlog with its A-E grade
and the signals behind it, shown as a scorecard (green = meets the threshold, red = misses it),
plus net flow per sprint. Definitions and thresholds: docs/backlog-health.md."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc
from pmolens.reports.i18n import add_labels
from pmolens.warehouse.analyses.backlog import backlog_params
from pmolens.warehouse.transforms.backlog import BacklogParams

MAX_ROWS = 40
MAX_CARDS = 40  # rows of the scorecard (worst grades first)
GRADE_COLOURS = {"A": "#2e7d32", "B": "#7cb342", "C": "#f9a825", "D": "#ef6c00", "E": "#c62828"}

add_labels(
    {
        "backlog_title": {"en": "Backlog health", "nl": "Gezondheid van de backlogs"},
        "backlog_lead": {
            "en": "Is each backlog estimated, ordered and ready for the next sprints? One grade "
            "per backlog (A best, E worst) with the signals it is built from. Programme = an "
            "initiative (Chief PO), or an organisation's work under no initiative.",
            "nl": "Is elke backlog geschat, geordend en klaar voor de komende sprints? Eén "
            "cijfer per backlog (A best, E slechtst) met de signalen waaruit het bestaat. "
            "Programma = een initiatief (Chief PO), of het werk van een organisatie zonder "
            "initiatief.",
        },
        "backlog_graded_ab": {"en": "Backlogs graded A or B", "nl": "Backlogs met A of B"},
        "backlog_graded_de": {"en": "Backlogs graded D or E", "nl": "Backlogs met D of E"},
        "backlog_median_depth": {
            "en": "Median ready depth (sprints)",
            "nl": "Mediane ready-diepte (sprints)",
        },
        "backlog_top_ready": {"en": "Top items ready", "nl": "Topitems gereed voor sprint"},
        "backlog_cards_q": {
            "en": "Which backlogs are healthy, and which signal pulls each grade down (red)?",
            "nl": "Welke backlogs zijn gezond, en welk signaal trekt elk cijfer omlaag (rood)?",
        },
        "backlog_net_flow_q": {
            "en": "Does more work come in than the teams finish, sprint by sprint?",
            "nl": "Komt er per sprint meer werk bij dan de teams afronden?",
        },
        "backlog_programme_table": {
            "en": "Programme backlogs (Chief PO acts)",
            "nl": "Programmabacklogs (Chief PO handelt)",
        },
        "backlog_team_table": {
            "en": "Team backlogs (the team's PO acts)",
            "nl": "Teambacklogs (de PO van het team handelt)",
        },
        "backlog_org_table": {
            "en": "Organisation backlogs (PMO / portfolio manager)",
            "nl": "Organisatiebacklogs (PMO / portfoliomanager)",
        },
        "backlog_backlog": {"en": "Backlog", "nl": "Backlog"},
        "backlog_grade": {"en": "Grade", "nl": "Cijfer"},
        "backlog_estimated": {"en": "Estimated", "nl": "Geschat"},
        "backlog_ordered": {"en": "Ordered", "nl": "Geordend"},
        "backlog_depth": {"en": "Ready depth", "nl": "Ready-diepte"},
        "backlog_top_n": {"en": "Top {n} ready", "nl": "Top {n} gereed"},
        "backlog_stale": {"en": "Stale", "nl": "Verouderd"},
        "backlog_age_p85": {"en": "Age P85 (days)", "nl": "Leeftijd P85 (dagen)"},
        "backlog_net": {"en": "Net flow / sprint", "nl": "Netto instroom / sprint"},
        "backlog_decomposed": {"en": "Epics broken down", "nl": "Epics opgedeeld"},
        "backlog_epic_progress": {"en": "Epic progress", "nl": "Voortgang epics"},
        "backlog_scope_change": {
            "en": "Scope added to open epics, last {n} days (vs. their scope before)",
            "nl": "Scope toegevoegd aan open epics, laatste {n} dagen (t.o.v. de scope daarvoor)",
        },
        "backlog_why": {"en": "Why not an A", "nl": "Waarom geen A"},
        "backlog_yes": {"en": "yes", "nl": "ja"},
        "backlog_no": {"en": "no", "nl": "nee"},
        "backlog_intake": {"en": "In", "nl": "Erin"},
        "backlog_done": {"en": "Done", "nl": "Gereed"},
        "backlog_sprint_end": {"en": "Sprint end", "nl": "Einde sprint"},
    }
)


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    p = backlog_params(ctx.inputs)
    health = ctx.scoped(ctx.result("backlog_health"))
    teams = health.filter(pl.col("by") == "team")
    programmes = health.filter(pl.col("by") == "programme")
    orgs = health.filter(pl.col("by") == "organisation")
    graded = pl.concat([programmes, teams])
    depth: list[float] = sorted(teams["ready_depth_sprints"].drop_nulls().to_list())
    top_items = int(teams["top_n_items"].sum() or 0)
    top_ready = (
        float((teams["top_n_ready_share"] * teams["top_n_items"]).sum()) / top_items
        if top_items
        else None
    )
    headline = [
        (t("backlog_graded_ab"), f"{graded.filter(pl.col('grade').is_in(['A', 'B'])).height}"),
        (t("backlog_graded_de"), f"{graded.filter(pl.col('grade').is_in(['D', 'E'])).height}"),
        (t("backlog_median_depth"), f"{depth[(len(depth) - 1) // 2]:.1f}" if depth else "–"),
        (t("backlog_top_ready"), f"{top_ready:.0%}" if top_ready is not None else "–"),
    ]
    figures = []
    if graded.height:
        figures.append(Figure(t("backlog_cards_q"), _scorecard(graded, p, ctx)))
    net = ctx.scoped(ctx.result("backlog_net_flow")).filter(pl.col("closed"))
    if net.height:
        figures.append(Figure(t("backlog_net_flow_q"), _net_flow(net, ctx)))
    return Section(
        key="backlog",
        title=t("backlog_title"),
        lead=t("backlog_lead"),
        headline=headline,
        figures=figures,
        tables=[
            (t("backlog_programme_table"), _table(programmes, p, ctx)),
            (t("backlog_team_table"), _table(teams, p, ctx)),
            (t("backlog_org_table"), _table(orgs, p, ctx)),
        ],
    )


def _name(row: dict[str, Any], ctx: ReportContext) -> str:
    scope = str(row["scope"])
    if row["by"] == "programme" and row.get("scope_title"):
        return f"{scope} {row['scope_title']}"
    if row["by"] == "team" and row.get("organisation"):
        return f"{scope} · {row['organisation']}"
    return scope


def _pct(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "–"


def _num(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "–"


def _signals(r: dict[str, Any], p: BacklogParams) -> list[tuple[str, bool | None]]:
    """(shown value, meets the threshold) per scorecard column; None = no verdict (no data)."""

    def within(value: float | None, low: float | None, high: float | None) -> bool | None:
        if value is None:
            return None
        return (low is None or value >= low) and (high is None or value <= high)

    intake, done, net = r["intake_per_sprint"], r["throughput_per_sprint"], r["net_flow_per_sprint"]
    grows = intake is not None and intake > 0 and intake > (done or 0) * p.max_intake_ratio
    ordered = r["ordering_present"]
    return [
        (_pct(r["pct_estimated"]), within(r["pct_estimated"], p.min_estimated, None)),
        (_pct(r["ranked_share"]), None if ordered is None else bool(ordered)),
        (
            _num(r["ready_depth_sprints"]),
            within(r["ready_depth_sprints"], p.ready_depth_min, p.ready_depth_max),
        ),
        (_pct(r["top_n_ready_share"]), within(r["top_n_ready_share"], p.min_top_ready, None)),
        (_pct(r["stale_share"]), within(r["stale_share"], None, p.max_stale_share)),
        (_num(r["age_p85_days"]), within(r["age_p85_days"], None, p.max_age_p85_days)),
        (f"{net:+.1f}" if net is not None else "–", None if intake is None else not grows),
        (
            _pct(r["epics_with_stories_share"]),
            within(r["epics_with_stories_share"], p.min_epics_with_stories, None),
        ),
    ]


def _columns(p: BacklogParams, ctx: ReportContext) -> list[str]:
    t = ctx.t
    return [
        t("backlog_estimated"),
        t("backlog_ordered"),
        t("backlog_depth"),
        t("backlog_top_n").replace("{n}", str(p.top_n)),
        t("backlog_stale"),
        t("backlog_age_p85"),
        t("backlog_net"),
        t("backlog_decomposed"),
    ]


def _scorecard(graded: pl.DataFrame, p: BacklogParams, ctx: ReportContext) -> go.Figure:
    """A heatmap used as a card grid: one row per backlog (grade in the label), one column per
    signal; the cell text is the value, the colour whether it meets its threshold."""
    rows = graded.sort(["points", "by", "scope"], descending=[True, False, False]).head(MAX_CARDS)
    columns = _columns(p, ctx)
    labels, z, text = [], [], []
    for r in rows.iter_rows(named=True):
        signals = _signals(r, p)
        labels.append(f"[{r['grade']}] {esc(_name(r, ctx))}"[:60])
        z.append([None if verdict is None else (1 if verdict else 0) for _, verdict in signals])
        text.append([shown for shown, _ in signals])
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[esc(c) for c in columns],
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#ef9a9a"], [1, "#a5d6a7"]],
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    figure.update_layout(
        height=max(260, 24 * len(labels) + 90),
        margin={"l": 300, "r": 20, "t": 40, "b": 10},
        xaxis={"side": "top"},
        yaxis={"autorange": "reversed"},
    )
    return figure


def _net_flow(net: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    """Intake and done of all teams in scope per sprint end date (closed sprints)."""
    per = (
        net.with_columns(pl.col("end").dt.date().alias("end_date"))
        .group_by("end_date")
        .agg(pl.col("intake_items").sum(), pl.col("done_items").sum())
        .sort("end_date")
    )
    x = per["end_date"].to_list()
    figure = go.Figure(
        [
            go.Bar(x=x, y=per["intake_items"].to_list(), name=esc(ctx.t("backlog_intake"))),
            go.Bar(x=x, y=per["done_items"].to_list(), name=esc(ctx.t("backlog_done"))),
        ]
    )
    figure.update_layout(
        barmode="group",
        height=300,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis={"title": ctx.t("backlog_sprint_end")},
        yaxis={"title": ctx.t("items")},
    )
    return figure


def _table(frame: pl.DataFrame, p: BacklogParams, ctx: ReportContext) -> Table:
    t = ctx.t
    ordered = frame.sort(["points", "scope"], descending=[True, False])
    rows = []
    for r in ordered.head(MAX_ROWS).iter_rows(named=True):
        rows.append(
            [
                _name(r, ctx),
                r["grade"],
                r["items"],
                *[shown for shown, _ in _signals(r, p)],
                _pct(r["epic_progress_count"]),
                _pct(r["scope_change_share"]),
                "; ".join(r["grade_reasons"]) or "–",
            ]
        )
    columns = [
        t("backlog_backlog"),
        t("backlog_grade"),
        t("items"),
        *_columns(p, ctx),
        t("backlog_epic_progress"),
        t("backlog_scope_change").replace("{n}", str(p.scope_window_days)),
        t("backlog_why"),
    ]
    return Table(columns, rows, more=max(0, ordered.height - MAX_ROWS))
