"""Monte Carlo forecasts: when the first epics in backlog order land (P50/P85/P95 fan with the
driving dependency), initiatives, and how many items each team finishes in the coming weeks.
Definitions: docs/forecast.md."""

from __future__ import annotations

from datetime import date
from typing import Any

import plotly.graph_objects as go
import polars as pl

from pmolens.reports.blocks import Figure, ReportContext, Section, Table, esc, nowrap
from pmolens.reports.i18n import add_labels
from pmolens.reports.sentence import sentence
from pmolens.warehouse.analyses.forecast import forecast_params

MAX_FAN = 15  # epics in the fan chart
MAX_ROWS = 40
DRIVEN_MIN = 0.05  # a blocker that set the date in fewer trials is not shown as the driver

add_labels(
    {
        "fc_title": {"en": "Forecasts", "nl": "Prognoses"},
        "fc_lead": {
            "en": "When will the first epics in backlog order be done? {trials} simulated futures "
            "per team from its own daily throughput; an epic is never done before the work it "
            "waits on in other teams or organisations.",
            "nl": "Wanneer zijn de eerste epics in backlogvolgorde gereed? {trials} gesimuleerde "
            "toekomsten per team op basis van de eigen dagelijkse doorvoer; een epic is nooit "
            "gereed vóór het werk van andere teams of organisaties waarop het wacht.",
        },
        "fc_epics": {"en": "Epics forecast", "nl": "Epics met prognose"},
        "fc_driven": {"en": "Held up by a dependency", "nl": "Opgehouden door afhankelijkheid"},
        "fc_at_risk": {
            "en": "Target date below 50 % likely",
            "nl": "Streefdatum minder dan 50 % kans",
        },
        "fc_no_forecast": {"en": "No forecast possible", "nl": "Geen prognose mogelijk"},
        "fc_fan_q": {
            "en": "When will the first epics be done (bar P50 to P95, diamond P85, circle without "
            "waiting on others, line the target date)?",
            "nl": "Wanneer zijn de eerste epics gereed (balk P50 tot P95, ruit P85, cirkel zonder "
            "wachten op anderen, streep de streefdatum)?",
        },
        "fc_p50": {"en": "P50 (even odds)", "nl": "P50 (even kans)"},
        "fc_p85": {"en": "P85", "nl": "P85"},
        "fc_p95": {"en": "P95", "nl": "P95"},
        "fc_own": {"en": "Without dependencies (P85)", "nl": "Zonder afhankelijkheden (P85)"},
        "fc_target": {"en": "Target date", "nl": "Streefdatum"},
        "fc_on_time": {"en": "Chance on time", "nl": "Kans op tijd"},
        "fc_driver": {"en": "Driving dependency", "nl": "Bepalende afhankelijkheid"},
        "fc_delay": {
            "en": "Delay by dependencies (days, P85)",
            "nl": "Vertraging door afh. (dagen, P85)",
        },
        "fc_remaining": {"en": "Remaining items", "nl": "Resterende items"},
        "fc_teams": {"en": "Teams", "nl": "Teams"},
        "fc_epic_table": {
            "en": "Epic forecasts in backlog order (act on the driving dependency in the Scrum "
            "of Scrums)",
            "nl": "Epicprognoses in backlogvolgorde (pak de bepalende afhankelijkheid op in de "
            "Scrum of Scrums)",
        },
        "fc_initiative_table": {
            "en": "Initiatives: done with their last epic",
            "nl": "Initiatieven: gereed met hun laatste epic",
        },
        "fc_epic_count": {"en": "Epics", "nl": "Epics"},
        "fc_how_many_q": {
            "en": "How many items will each team finish by then (85 % sure at least)?",
            "nl": "Hoeveel items rondt elk team tot dan af (85 % zeker minstens)?",
        },
        "fc_how_many_table": {
            "en": "How many items by date per team (P50 / P85 / P95: at least, with that confidence)",
            "nl": "Hoeveel items per team tot de datum (P50 / P85 / P95: minstens, met die zekerheid)",
        },
        "fc_date": {"en": "By date", "nl": "Tot datum"},
        "fc_beyond": {"en": "beyond horizon", "nl": "na de horizon"},
        "fc_share": {"en": "of trials", "nl": "van de simulaties"},
        "fc_note": {"en": "Note", "nl": "Opmerking"},
        "fc_initiative": {"en": "Initiative", "nl": "Initiatief"},
        "fc_zero_days": {"en": "Days with 0 done", "nl": "Dagen met 0 af"},
        "fc_note_team_idle": {
            "en": "team {team} finished nothing in the window: no forecast possible",
            "nl": "team {team} rondde in de meetperiode niets af: geen prognose mogelijk",
        },
        "fc_note_no_open_work": {
            "en": "no open work left: close the epic?",
            "nl": "geen open werk meer: epic sluiten?",
        },
        "fc_note_beyond_horizon": {
            "en": "some trials do not finish within the horizon",
            "nl": "een deel van de simulaties is niet binnen de horizon gereed",
        },
    }
)


def _d(value: date | None, ctx: ReportContext) -> str:
    return ctx.day(value) if value else ctx.t("fc_beyond")


def _day_cell(value: date | None, ctx: ReportContext) -> object:
    return nowrap(_d(value, ctx))


def _note(r: dict[str, Any], ctx: ReportContext) -> str:
    """The forecast's notes in the reader's language (the English ``note`` for rows kept from
    before the keys)."""
    keys = r.get("note_keys")
    if keys is None:
        return r["note"] or ""
    params = r.get("note_params") or ["{}"] * len(keys)
    return "; ".join(sentence(k, v, ctx.t) for k, v in zip(keys, params, strict=True))


def build(ctx: ReportContext) -> Section:
    t = ctx.t
    epics = (
        ctx.scoped(ctx.result("forecast_epics"))
        .sort("backlog_position")
        .with_columns(
            *[
                pl.when(pl.col("driven_share") >= DRIVEN_MIN).then(pl.col(c)).alias(c)
                for c in ("driven_by", "driven_by_key", "driven_share")
            ]
        )
    )
    initiatives = ctx.scoped(ctx.result("forecast_initiatives"))
    how_many = ctx.result("forecast_teams")
    daily = ctx.scoped(ctx.result("forecast_daily_throughput"))
    how_many = how_many.join(daily.select("team").unique(), on="team", how="semi")
    headline = [
        (t("fc_epics"), ctx.num(epics.height)),
        (t("fc_driven"), ctx.num(epics.filter(pl.col("driven_by").is_not_null()).height)),
        (t("fc_at_risk"), ctx.num(epics.filter(pl.col("p_on_time") < 0.5).height)),
        (t("fc_no_forecast"), ctx.num(epics.filter(pl.col("p85").is_null()).height)),
    ]
    figures = []
    if epics.height:
        figures.append(Figure(t("fc_fan_q"), _fan(epics.head(MAX_FAN), ctx)))
    weeks = _default_days(how_many)
    if weeks is not None:
        figures.append(Figure(t("fc_how_many_q"), _how_many_bar(how_many, weeks, ctx)))
    return Section(
        key="forecast",
        title=t("fc_title"),
        lead=t("fc_lead").format(trials=ctx.num(_trials(ctx))),
        headline=headline,
        figures=figures,
        tables=[
            (t("fc_epic_table"), _epic_table(epics, ctx)),
            (t("fc_initiative_table"), _initiative_table(initiatives, ctx)),
            (t("fc_how_many_table"), _how_many_table(how_many, weeks, ctx)),
        ],
    )


def _fan(epics: pl.DataFrame, ctx: ReportContext) -> go.Figure:
    """One row per epic: a bar from P50 to P95, P85 marked, the P85 without waiting on others
    and the target date; hover names the driving dependency."""
    t = ctx.t
    rows = list(epics.iter_rows(named=True))
    labels = [
        esc(f"{ctx.item_label(r['key'], r['epic_id'])} {(r['title'] or '')[:40]}") for r in rows
    ]
    start = [r["p50"] for r in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            y=labels,
            x=[
                (r["p95"] - r["p50"]).days * 86_400_000 if r["p50"] and r["p95"] else None
                for r in rows
            ],
            base=[s.isoformat() if s else None for s in start],
            orientation="h",
            marker={"color": "rgba(31,95,191,0.35)"},
            name=esc(f"{t('fc_p50')} – {t('fc_p95')}"),
            hovertext=[
                esc(
                    f"P50 {_d(r['p50'], ctx)} · P85 {_d(r['p85'], ctx)} · P95 {_d(r['p95'], ctx)}"
                    + (
                        f" · {t('fc_driver')}: "
                        f"{ctx.item_label(r['driven_by_key'], r['driven_by'])}"
                        f" ({ctx.pct(r['driven_share'])} {t('fc_share')})"
                        if r["driven_by"]
                        else ""
                    )
                )
                for r in rows
            ],
            hoverinfo="text",
        )
    )
    for column, name, symbol, color in (
        ("p85", t("fc_p85"), "diamond", "#1f5fbf"),
        ("own_p85", t("fc_own"), "circle-open", "#555555"),
        ("target_date", t("fc_target"), "line-ns-open", "#c62828"),
    ):
        figure.add_trace(
            go.Scatter(
                y=labels,
                x=[r[column].isoformat() if r[column] else None for r in rows],
                mode="markers",
                marker={"symbol": symbol, "size": 12, "color": color, "line": {"width": 2}},
                name=esc(name),
                hovertext=[esc(_d(r[column], ctx)) for r in rows],
                hovertemplate="%{hovertext}<extra>" + esc(name) + "</extra>",
            )
        )
    figure.update_layout(
        barmode="overlay",
        xaxis=ctx.date_axis(),
        yaxis={"autorange": "reversed"},
        height=max(300, 28 * len(rows) + 120),
        margin={"l": 300, "r": 20, "t": 10, "b": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def _trials(ctx: ReportContext) -> int:
    """How many futures the forecast simulates (settings, 10,000 by default)."""
    return forecast_params(ctx.inputs).trials


def _default_days(how_many: pl.DataFrame) -> int | None:
    """The stored horizon closest to six weeks (the route's default)."""
    if how_many.height == 0:
        return None
    days = sorted(set(how_many["days"].to_list()))
    return min(days, key=lambda d: (abs(d - 42), d))


def _how_many_bar(how_many: pl.DataFrame, days: int, ctx: ReportContext) -> go.Figure:
    rows = how_many.filter(pl.col("days") == days).sort("items_p85", descending=True).head(40)
    figure = go.Figure(
        go.Bar(
            x=[esc(team) for team in rows["team"].to_list()],
            y=rows["items_p85"].to_list(),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (rows["items_p50"] - rows["items_p85"]).to_list(),
                "arrayminus": (rows["items_p85"] - rows["items_p95"]).to_list(),
            },
            marker_color=[ctx.team_style(team).colour for team in rows["team"].to_list()],
            hovertemplate="%{x}: %{y}<extra>P85</extra>",
        )
    )
    target = rows["target_date"][0] if rows.height else None
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 10, "b": 100},
        xaxis={"tickangle": -45},
        yaxis={
            "title": esc(f"{ctx.t('items')} ≤ {ctx.day(target) if target else ''}"),
            "rangemode": "tozero",
        },
    )
    return figure


def _epic_table(epics: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            ctx.link(r["key"], r["url"], r["epic_id"]),
            r["title"] or "",
            ", ".join(r["teams"] or []) or (r["team"] or ""),
            r["remaining_items"],
            _day_cell(r["p50"], ctx),
            _day_cell(r["p85"], ctx),
            _day_cell(r["p95"], ctx),
            nowrap(ctx.day(r["target_date"])) if r["target_date"] else "",
            ctx.pct(r["p_on_time"]) if r["p_on_time"] is not None else "",
            (
                nowrap(
                    f"{ctx.item_label(r['driven_by_key'], r['driven_by'])} "
                    f"({ctx.pct(r['driven_share'])})"
                )
                if r["driven_by"]
                else ""
            ),
            r["dependency_delay_days_p85"] if r["dependency_delay_days_p85"] else "",
            _note(r, ctx),
        ]
        for r in epics.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("epic"),
        t("title"),
        t("fc_teams"),
        t("fc_remaining"),
        "P50",
        "P85",
        "P95",
        t("fc_target"),
        t("fc_on_time"),
        t("fc_driver"),
        t("fc_delay"),
        t("fc_note"),
    ]
    return Table(columns, rows, more=max(0, epics.height - MAX_ROWS))


def _initiative_table(initiatives: pl.DataFrame, ctx: ReportContext) -> Table:
    t = ctx.t
    rows = [
        [
            ctx.link(r["key"], r["url"], r["initiative_id"]),
            r["title"] or "",
            r["epics"],
            r["remaining_items"],
            _day_cell(r["p50"], ctx),
            _day_cell(r["p85"], ctx),
            _day_cell(r["p95"], ctx),
            nowrap(ctx.day(r["target_date"])) if r["target_date"] else "",
            ctx.pct(r["p_on_time"]) if r["p_on_time"] is not None else "",
            nowrap(ctx.item_label(r["driven_by_key"], r.get("driven_by")))
            if r["driven_by_key"]
            else "",
        ]
        for r in initiatives.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("fc_initiative"),
        t("title"),
        t("fc_epic_count"),
        t("fc_remaining"),
        "P50",
        "P85",
        "P95",
        t("fc_target"),
        t("fc_on_time"),
        t("fc_driver"),
    ]
    return Table(columns, rows, more=max(0, initiatives.height - MAX_ROWS))


def _how_many_table(how_many: pl.DataFrame, days: int | None, ctx: ReportContext) -> Table:
    t = ctx.t
    rows_frame = (
        how_many.filter(pl.col("days") == days).sort("team") if days is not None else how_many
    )
    rows = [
        [
            r["team"],
            nowrap(ctx.day(r["target_date"])),
            r["items_p50"],
            r["items_p85"],
            r["items_p95"],
            ctx.pct(r["zero_day_share"]) if r["zero_day_share"] is not None else "",
        ]
        for r in rows_frame.head(MAX_ROWS).iter_rows(named=True)
    ]
    columns = [
        t("team"),
        t("fc_date"),
        "P50",
        "P85",
        "P95",
        t("fc_zero_days"),
    ]
    return Table(columns, rows, more=max(0, rows_frame.height - MAX_ROWS))
