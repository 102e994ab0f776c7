"""Backlog health: one card per programme (Chief PO) and per team (PO) backlog with its A-E grade
and the signals behind it, shown as a scorecard (green = meets the threshold, red = misses it),
plus net flow per sprint. Definitions and thresholds: docs/backlog-health.md."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc
from pmolens.reports.i18n import add_labels
from pmolens.reports.sentence import sentence
from pmolens.warehouse.analyses.backlog import backlog_params
from pmolens.warehouse.transforms.backlog import BacklogParams

MAX_ROWS = 40
MAX_CARDS = 40  # rows of the scorecard (worst grades first)
MAX_ORG_PANELS = 8  # net-flow panels (one per organisation)
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
            "en": "Does more work come in than the teams finish, sprint by sprint (per "
            "organisation, at its own sprint ends)?",
            "nl": "Komt er per sprint meer werk bij dan de teams afronden (per organisatie, op "
            "haar eigen sprinteinden)?",
        },
        "backlog_programme_table": {
            "en": "Programme backlogs (Chief PO acts)",
            "nl": "Programmabacklogs (actiehouder: Chief PO)",
        },
        "backlog_team_table": {
            "en": "Team backlogs (the team's PO acts)",
            "nl": "Teambacklogs (actiehouder: de PO van het team)",
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
        "backlog_intake": {"en": "Inflow", "nl": "Instroom"},
        "backlog_done": {"en": "Outflow", "nl": "Uitstroom"},
        "backlog_net_line": {"en": "Net flow", "nl": "Netto instroom"},
        "grade_empty": {
            "en": "empty backlog: nothing to pull",
            "nl": "lege backlog: niets om op te pakken",
        },
        "grade_estimated": {
            "en": "only {pct}% of items estimated (target {target}%)",
            "nl": "slechts {pct}% van de items geschat (doel {target}%)",
        },
        "grade_not_ordered": {
            "en": "not ordered: {pct}% ranked, {duplicates} duplicate ranks",
            "nl": "niet geordend: {pct}% heeft een plaats in de volgorde, {duplicates} dubbele "
            "plaatsen",
        },
        "grade_depth_unknown": {
            "en": "ready depth unknown: no velocity in the last {sprints} closed sprints",
            "nl": "ready-diepte onbekend: geen velocity in de laatste {sprints} afgesloten sprints",
        },
        "grade_depth_low": {
            "en": "ready depth {depth} sprints (healthy {low}-{high})",
            "nl": "ready-diepte {depth} sprints (gezond {low}-{high})",
        },
        "grade_depth_high": {
            "en": "ready depth {depth} sprints: refined too far ahead (healthy {low}-{high})",
            "nl": "ready-diepte {depth} sprints: te ver vooruit verfijnd (gezond {low}-{high})",
        },
        "grade_top_ready": {
            "en": "only {pct}% of the top {n} items ready (target {target}%)",
            "nl": "slechts {pct}% van de bovenste {n} items gereed voor een sprint (doel {target}%)",
        },
        "grade_stale": {
            "en": "{pct}% of items not updated in {days} days",
            "nl": "{pct}% van de items al {days} dagen niet bijgewerkt",
        },
        "grade_age": {
            "en": "85th percentile age {days} days (limit {limit})",
            "nl": "leeftijd (85e percentiel) {days} dagen (grens {limit})",
        },
        "grade_grows": {
            "en": "backlog grows: {intake} items in vs {done} done per sprint",
            "nl": "backlog groeit: per sprint {intake} items erbij tegen {done} afgerond",
        },
        "grade_epics_broken_down": {
            "en": "only {pct}% of open epics broken down into stories",
            "nl": "slechts {pct}% van de open epics opgedeeld in stories",
        },
        "grade_initiatives_broken_down": {
            "en": "only {pct}% of open initiatives broken down into epics",
            "nl": "slechts {pct}% van de open initiatieven opgedeeld in epics",
        },
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
        (t("backlog_graded_ab"), ctx.num(graded.filter(pl.col("grade").is_in(["A", "B"])).height)),
        (t("backlog_graded_de"), ctx.num(graded.filter(pl.col("grade").is_in(["D", "E"])).height)),
        (t("backlog_median_depth"), ctx.num(depth[(len(depth) - 1) // 2] if depth else None)),
        (t("backlog_top_ready"), ctx.pct(top_ready)),
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


def _reasons(r: dict[str, Any], ctx: ReportContext) -> str:
    """Why not an A, in the reader's language (the English ``grade_reasons`` for rows kept from
    before the keys)."""
    keys = r.get("grade_reason_keys")
    if keys is None:
        return "; ".join(r["grade_reasons"] or []) or "–"
    params = r.get("grade_reason_params") or ["{}"] * len(keys)
    return "; ".join(sentence(k, v, ctx.t) for k, v in zip(keys, params, strict=True)) or "–"


def _signals(
    r: dict[str, Any], p: BacklogParams, ctx: ReportContext
) -> list[tuple[str, bool | None]]:
    """(shown value, meets the threshold) per scorecard column; None = no verdict (no data)."""

    def within(value: float | None, low: float | None, high: float | None) -> bool | None:
        if value is None:
            return None
        return (low is None or value >= low) and (high is None or value <= high)

    _pct, _num = ctx.pct, ctx.num
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
        (
            ("+" if net is not None and net > 0 else "") + _num(net),
            None if intake is None else not grows,
        ),
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
        signals = _signals(r, p, ctx)
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
    """Inflow and outflow per closed sprint end, one panel per organisation: each organisation at
    its own cadence (several organisations' sprint ends on one axis would alternate a big and a
    small bar), the net flow as a line."""
    t = ctx.t
    per = (
        net.with_columns(
            pl.col("organisation").fill_null("?"), pl.col("end").dt.date().alias("end_date")
        )
        .group_by("organisation", "end_date")
        .agg(pl.col("intake_items").sum(), pl.col("done_items").sum())
        .sort("organisation", "end_date")
    )
    orgs = per["organisation"].unique().sort().to_list()[:MAX_ORG_PANELS]
    figure = make_subplots(
        rows=len(orgs),
        cols=1,
        subplot_titles=[esc(o) for o in orgs],
        vertical_spacing=min(0.12, 0.3 / max(1, len(orgs))),
    )
    series = (
        ("intake_items", t("backlog_intake"), "#1f5fbf"),
        ("done_items", t("backlog_done"), "#2e7d32"),
    )
    for row, org in enumerate(orgs, start=1):
        part = per.filter(pl.col("organisation") == org)
        x = part["end_date"].to_list()
        for column, name, colour in series:
            figure.add_trace(
                go.Bar(
                    x=x,
                    y=part[column].to_list(),
                    name=esc(name),
                    marker_color=colour,
                    legendgroup=column,
                    showlegend=row == 1,
                ),
                row=row,
                col=1,
            )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=(part["intake_items"] - part["done_items"]).to_list(),
                name=esc(t("backlog_net_line")),
                mode="lines+markers",
                line={"color": "#c62828"},
                legendgroup="net",
                showlegend=row == 1,
            ),
            row=row,
            col=1,
        )
        figure.update_xaxes(ctx.date_axis(), row=row, col=1)
        figure.update_yaxes(title_text=esc(t("items")), row=row, col=1)
    figure.update_layout(
        barmode="group",
        height=90 + 220 * len(orgs),
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
    )
    figure.update_xaxes(title_text=esc(t("backlog_sprint_end")), row=len(orgs), col=1)
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
                *[shown for shown, _ in _signals(r, p, ctx)],
                ctx.pct(r["epic_progress_count"]),
                ctx.pct(r["scope_change_share"]),
                _reasons(r, ctx),
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
