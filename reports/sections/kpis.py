"""Scrum@Scale KPIs per team sprint with their trend, and portfolio value: WSJF / value vs
cost scatter, the WSJF order and investment by theme. Definitions: docs/kpis.md."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc, nowrap, trend_note
from pmolens.reports.i18n import add_labels

MAX_ROWS = 40
MAX_TEAMS = 20  # lines per trend chart
MAX_POINTS = 2000  # scatter points

add_labels(
    {
        "kpi_title": {"en": "Scrum@Scale KPIs and value", "nl": "Scrum@Scale-KPI's en waarde"},
        "kpi_lead": {
            "en": "Per team sprint: productivity, value, quality, predictability and "
            "sustainability; per epic: value, cost and WSJF.",
            "nl": "Per teamsprint: productiviteit, waarde, kwaliteit, voorspelbaarheid en "
            "duurzaamheid; per epic: waarde, kosten en WSJF.",
        },
        "kpi_predictability": {"en": "Predictability", "nl": "Voorspelbaarheid"},
        "kpi_defect_share": {"en": "Defect share", "nl": "Aandeel defects"},
        "kpi_velocity": {
            "en": "Velocity (estimate / sprint)",
            "nl": "Velocity (schatting / sprint)",
        },
        "kpi_throughput": {"en": "Items done / sprint", "nl": "Items af / sprint"},
        "kpi_carry_over": {"en": "Carry-over / sprint", "nl": "Doorgeschoven / sprint"},
        "kpi_value": {"en": "Business value / sprint", "nl": "Bedrijfswaarde / sprint"},
        "kpi_sprints": {"en": "Sprints", "nl": "Sprints"},
        "kpi_predictability_q": {
            "en": "Do teams finish what they committed at sprint start (done / committed)?",
            "nl": "Maken teams af wat ze bij de sprintstart toezegden (af / toegezegd)?",
        },
        "kpi_throughput_q": {
            "en": "How much does each team finish per sprint?",
            "nl": "Hoeveel rondt elk team per sprint af?",
        },
        "kpi_trend_q": {
            "en": "Are the headline KPIs improving from sync to sync?",
            "nl": "Verbeteren de kern-KPI's van synchronisatie tot synchronisatie?",
        },
        "kpi_sprint_end": {"en": "Sprint end", "nl": "Einde sprint"},
        "kpi_sync": {"en": "Sync", "nl": "Synchronisatie"},
        "kpi_team_table": {
            "en": "Per team, over its last closed sprints",
            "nl": "Per team, over de laatste afgesloten sprints",
        },
        "kpi_wsjf_q": {
            "en": "Which epics bring the most value for their size (up and left = do first)?",
            "nl": "Welke epics leveren de meeste waarde voor hun omvang (linksboven = eerst doen)?",
        },
        "kpi_job_size": {"en": "Job size (effort or cost)", "nl": "Omvang (inspanning of kosten)"},
        "kpi_cost_of_delay": {
            "en": "Cost of delay (value + time criticality + risk reduction)",
            "nl": "Kosten van uitstel (waarde + tijdkritiek + risicoreductie)",
        },
        "kpi_wsjf_table": {
            "en": "Open epics by WSJF (Chief PO: compare with the backlog order)",
            "nl": "Open epics op WSJF (Chief PO: vergelijk met de backlogvolgorde)",
        },
        "kpi_investment_table": {
            "en": "Investment by theme (estimate of the work under each initiative)",
            "nl": "Investering per thema (schatting van het werk onder elk initiatief)",
        },
        "kpi_no_theme": {"en": "(no initiative above it)", "nl": "(geen initiatief erboven)"},
        "kpi_business_value": {"en": "Business value", "nl": "Bedrijfswaarde"},
        "kpi_cost": {"en": "Cost", "nl": "Kosten"},
        "kpi_effort": {"en": "Effort (estimate)", "nl": "Inspanning (schatting)"},
        "kpi_share": {"en": "Share", "nl": "Aandeel"},
        "kpi_open_estimate": {"en": "Open estimate", "nl": "Open schatting"},
        "kpi_wsjf_epics": {"en": "Epics with WSJF", "nl": "Epics met WSJF"},
        "kpi_theme": {"en": "Theme (initiative)", "nl": "Thema (initiatief)"},
    }
)


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    _pct = ctx.pct
    sprints = ctx.scoped(ctx.result("kpi_sprints"))
    teams = ctx.scoped(ctx.result("kpi_teams"))
    value = ctx.scoped(ctx.result("portfolio_value"))
    if ctx.organisation:
        investment = ctx.result("portfolio_investment_org").filter(
            pl.col("organisation") == ctx.organisation
        )
    else:
        investment = ctx.result("portfolio_investment")
    closed = sprints.filter(pl.col("closed"))
    committed = int(closed["committed_items"].sum())
    done = int(closed["throughput_items"].sum())
    open_epics = value.filter((pl.col("level") == "epic") & (pl.col("status_category") != "done"))
    headline = [
        (t("teams"), ctx.num(teams.height)),
        (
            t("kpi_predictability"),
            _pct(int(closed["committed_done_items"].sum()) / committed) if committed else "–",
        ),
        (t("kpi_defect_share"), _pct(int(closed["defects_done"].sum()) / done) if done else "–"),
        (t("kpi_wsjf_epics"), ctx.num(open_epics.filter(pl.col("wsjf").is_not_null()).height)),
    ]
    figures = []
    if closed.height:
        figures.append(
            Figure(t("kpi_predictability_q"), _per_sprint(closed, "predictability", ctx, True))
        )
        figures.append(
            Figure(t("kpi_throughput_q"), _per_sprint(closed, "throughput_items", ctx, False))
        )
    figures.append(_trend(ctx))
    scatter = open_epics.filter(
        pl.col("job_size").is_not_null() & pl.col("cost_of_delay").is_not_null()
    )
    if scatter.height:
        figures.append(Figure(t("kpi_wsjf_q"), _wsjf_scatter(scatter, ctx)))
    return Section(
        key="kpis",
        title=t("kpi_title"),
        lead=t("kpi_lead"),
        headline=headline,
        figures=figures,
        tables=[
            (t("kpi_team_table"), _team_table(teams, ctx)),
            (t("kpi_wsjf_table"), _wsjf_table(open_epics, ctx)),
            (t("kpi_investment_table"), _investment_table(investment, ctx)),
        ],
    )


def _busiest(closed: pl.DataFrame) -> list[str]:
    volume = (
        closed.group_by("team")
        .agg(pl.col("throughput_items").sum())
        .sort(["throughput_items", "team"], descending=[True, False])
    )
    return sorted(volume.head(MAX_TEAMS)["team"].to_list())


def _per_sprint(closed: pl.DataFrame, metric: str, ctx: ReportContext, share: bool) -> go.Figure:
    """One line per team (the busiest ``MAX_TEAMS``), one point per closed sprint."""
    figure = go.Figure()
    for team in _busiest(closed):
        series = closed.filter(pl.col("team") == team).sort("end")
        style = ctx.team_style(team)
        figure.add_trace(
            go.Scatter(
                x=[e.isoformat() for e in series["end"].to_list()],
                y=series[metric].to_list(),
                mode="lines+markers",
                name=esc(team),
                line={"color": style.colour},
                marker={"symbol": style.symbol, "size": 7},
                text=[esc(s) for s in series["sprint"].to_list()],
                hovertemplate="%{text}: %{y}<extra>" + esc(team) + "</extra>",
            )
        )
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis=ctx.date_axis(title=ctx.t("kpi_sprint_end")),
        yaxis={"tickformat": ".0%", "rangemode": "tozero"} if share else {"rangemode": "tozero"},
    )
    return figure


def _trend(ctx: ReportContext) -> Figure:
    """Headline KPIs per sync from metric_snapshots, from the second sync on; until then the
    sentence saying when the trend appears."""
    question = ctx.t("kpi_trend_q")
    wh = ctx.inputs.warehouse
    if wh is None:
        return Figure(question, None, trend_note(ctx, [ctx.inputs.as_of]))
    scope = f"organisation:{ctx.organisation}" if ctx.organisation else "all"
    points = wh.query(
        "SELECT as_of, metric, value FROM metric_snapshots WHERE family = 'kpis' AND scope = ? "
        "AND as_of <= ? AND metric IN ('predictability', 'defect_share') ORDER BY as_of",
        [scope, ctx.inputs.as_of],
    )
    moments = points["as_of"].unique().sort().to_list()
    if len(moments) < 2:
        return Figure(question, None, trend_note(ctx, moments or [ctx.inputs.as_of]))
    figure = go.Figure()
    for metric, label in (
        ("predictability", ctx.t("kpi_predictability")),
        ("defect_share", ctx.t("kpi_defect_share")),
    ):
        series = points.filter(pl.col("metric") == metric)
        figure.add_trace(
            go.Scatter(
                x=series["as_of"].to_list(),
                y=series["value"].to_list(),
                mode="lines+markers",
                name=esc(label),
            )
        )
    figure.update_layout(
        height=280,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis=ctx.date_axis(title=ctx.t("kpi_sync")),
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
    )
    return Figure(question, figure)


def _wsjf_scatter(epics: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    points = epics.sort("wsjf", descending=True, nulls_last=True).head(MAX_POINTS)
    figure = go.Figure(
        go.Scatter(
            x=points["job_size"].to_list(),
            y=points["cost_of_delay"].to_list(),
            mode="markers",
            marker={
                "size": 10,
                "color": points["wsjf"].to_list(),
                "colorscale": "Viridis",
                "colorbar": {"title": "WSJF"},
            },
            text=[
                esc(
                    f"{ctx.item_label(k, i)} {(title or '')[:50]} · {team or ''} · "
                    f"WSJF {ctx.num(w, 2)}"
                )
                for k, i, title, team, w in points.select(
                    "key", "item_id", "title", "team", "wsjf"
                ).iter_rows()
            ],
            hovertemplate="%{text}<extra></extra>",
        )
    )
    figure.update_layout(
        height=380,
        margin={"l": 60, "r": 20, "t": 10, "b": 50},
        xaxis={"title": ctx.t("kpi_job_size"), "rangemode": "tozero"},
        yaxis={"title": ctx.t("kpi_cost_of_delay"), "rangemode": "tozero"},
    )
    return figure


def _team_table(teams: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    _num, _pct = ctx.num, ctx.pct
    rows = [
        [
            nowrap(f"{r['team']} · {r['organisation'] or '?'}"),
            r["sprints"],
            _num(r["velocity"]),
            _num(r["throughput_per_sprint"]),
            _pct(r["predictability"]),
            _pct(r["defect_share"]),
            _num(r["carried_out_per_sprint"]),
            _num(r["business_value_per_sprint"]),
        ]
        for r in teams.sort("team").head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("team"),
        t("kpi_sprints"),
        t("kpi_velocity"),
        t("kpi_throughput"),
        t("kpi_predictability"),
        t("kpi_defect_share"),
        t("kpi_carry_over"),
        t("kpi_value"),
    ]
    return Table(columns, rows, more=max(0, teams.height - MAX_ROWS))


def _wsjf_table(epics: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    _num, _pct = ctx.num, ctx.pct
    ranked = epics.filter(pl.col("wsjf").is_not_null()).sort("wsjf_rank")
    rows = [
        [
            r["wsjf_rank"],
            ctx.link(r["key"], r["url"], r["item_id"]),
            r["title"] or "",
            r["team"] or "",
            _num(r["business_value"], 0),
            _num(r["cost_of_delay"], 0),
            _num(r["job_size"], 0),
            _num(r["wsjf"], 2),
            _num(r["cost"], 0),
            _pct(r["progress_estimate"]),
        ]
        for r in ranked.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        "#",
        t("epic"),
        t("title"),
        t("team"),
        t("kpi_business_value"),
        t("kpi_cost_of_delay"),
        t("kpi_job_size"),
        "WSJF",
        t("kpi_cost"),
        t("progress_estimate"),
    ]
    return Table(columns, rows, more=max(0, ranked.height - MAX_ROWS))


def _investment_table(investment: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    _num, _pct = ctx.num, ctx.pct
    rows = [
        [
            (r["theme_key"] or r["theme_id"]) if r["theme_id"] else t("kpi_no_theme"),
            r["theme_title"] or "",
            r["epics"],
            _num(r["estimate"], 0),
            _num(r["estimate_open"], 0),
            _pct(r["share_estimate"]),
            _num(r["business_value"], 0),
            _num(r["cost"], 0),
        ]
        for r in investment.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("kpi_theme"),
        t("title"),
        t("epics"),
        t("kpi_effort"),
        t("kpi_open_estimate"),
        t("kpi_share"),
        t("kpi_business_value"),
        t("kpi_cost"),
    ]
    return Table(columns, rows, more=max(0, investment.height - MAX_ROWS))
